package oci_test

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dewy-agent/dewy-agent/internal/testimage"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// TestImageSignatures reads signature images as `cosign sign --key` stores
// them: for the pinned manifest and for the index its tag names.
func TestImageSignatures(t *testing.T) {
	isolate(t)
	f := newFake(t)
	reg := &testimage.Registry{Host: f.host}
	key := testimage.NewCosignKey(t)
	plat := "linux/" + runtime.GOARCH
	other := "amd64"
	if runtime.GOARCH == "amd64" {
		other = "arm64"
	}
	one := testimage.Build(t, "v1", testimage.Options{Platform: plat})
	two := testimage.Build(t, "v2", testimage.Options{Platform: plat})
	foreign := testimage.Build(t, "v1", testimage.Options{Platform: "linux/" + other})
	oneDigest := f.push(t, "app", "v1.0.0", one).String()
	f.push(t, "app", "v2.0.0", two)
	index := func(img v1.Image) v1.ImageIndex {
		return testimage.Index(
			testimage.Platformed{Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, Image: img},
			testimage.Platformed{Platform: v1.Platform{OS: "linux", Architecture: other}, Image: foreign},
		)
	}
	idxDigest := strings.TrimPrefix(reg.MustPushIndex(t, "multi", "v1.0.0", index(one)), reg.Repository("multi")+"@")

	read := func(t *testing.T, repo, tag string) (string, []sources.SignatureImage) {
		t.Helper()
		src := newSource(t, f.host+"/"+repo, nil)
		rel := version.Release{Tag: tag, Image: f.host + "/" + repo + ":" + tag}
		pinned, err := src.Pin(t.Context(), rel, plat)
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.ImageSignatures(t.Context(), rel, pinned)
		if err != nil {
			t.Fatal(err)
		}
		return pinned, got
	}

	t.Run("unsigned", func(t *testing.T) {
		pinned, got := read(t, "app", "v2.0.0")
		if len(got) != 1 || pinned != f.host+"/app@"+got[0].Digest || got[0].Manifest != "" || len(got[0].Layers) != 0 {
			t.Fatalf("got %+v for %s, want one entry without signatures", got, pinned)
		}
	})

	t.Run("signed twice", func(t *testing.T) {
		stranger := testimage.NewCosignKey(t)
		first := reg.MustSign(t, "app", oneDigest, stranger)
		_, got := read(t, "app", "v1.0.0")
		if len(got) != 1 || got[0].Manifest != first || len(got[0].Layers) != 1 {
			t.Fatalf("after one signature: %+v", got)
		}
		second := reg.MustSign(t, "app", oneDigest, key)
		if second == first {
			t.Fatal("a second signature left the signature image's digest as it was")
		}
		_, got = read(t, "app", "v1.0.0")
		if len(got) != 1 || got[0].Digest != oneDigest || got[0].Manifest != second || len(got[0].Layers) != 2 {
			t.Fatalf("after two signatures: %+v", got)
		}
		want := key.Sign(testimage.CosignPayload(reg.Repository("app"), oneDigest))
		l := got[0].Layers[1]
		if !bytes.Equal(l.Payload, want.Payload) || l.Signature == "" {
			t.Errorf("second layer: payload %q signature %q, want payload %q", l.Payload, l.Signature, want.Payload)
		}
	})

	t.Run("index", func(t *testing.T) {
		signed := reg.MustSign(t, "multi", idxDigest, key)
		pinned, got := read(t, "multi", "v1.0.0")
		if pinned != f.host+"/multi@"+oneDigest {
			t.Fatalf("pinned %s, want the platform's manifest %s", pinned, oneDigest)
		}
		if len(got) != 2 || got[0].Digest != oneDigest || len(got[0].Layers) != 0 ||
			got[1].Digest != idxDigest || got[1].Manifest != signed || len(got[1].Layers) != 1 {
			t.Fatalf("got %+v, want the pinned manifest unsigned and the index %s signed", got, idxDigest)
		}
	})

	t.Run("index moved away from the pinned manifest", func(t *testing.T) {
		src := newSource(t, f.host+"/moved", nil)
		reg.MustPushIndex(t, "moved", "v1.0.0", index(one))
		rel := version.Release{Tag: "v1.0.0", Image: f.host + "/moved:v1.0.0"}
		pinned, err := src.Pin(t.Context(), rel, plat)
		if err != nil {
			t.Fatal(err)
		}
		moved := strings.TrimPrefix(reg.MustPushIndex(t, "moved", "v1.0.0", index(two)), reg.Repository("moved")+"@")
		reg.MustSign(t, "moved", moved, key)
		got, err := src.ImageSignatures(t.Context(), rel, pinned)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || f.host+"/moved@"+got[0].Digest != pinned {
			t.Fatalf("got %+v: the signature of an index that does not list %s was offered", got, pinned)
		}
	})

	t.Run("not pinned", func(t *testing.T) {
		src := newSource(t, f.host+"/app", nil)
		if _, err := src.ImageSignatures(t.Context(), version.Release{Tag: "v1.0.0"}, f.host+"/app:v1.0.0"); err == nil || !strings.Contains(err.Error(), "not pinned by digest") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		src := newSource(t, f.host+"/app", nil)
		f.limited.Store(true)
		defer f.limited.Store(false)
		_, err := src.ImageSignatures(t.Context(), version.Release{Tag: "v1.0.0"}, f.host+"/app@"+oneDigest)
		var rl *sources.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("err = %v, want a RateLimitedError", err)
		}
	})
}

var _ sources.ImageSigner = (*oci.Registry)(nil)
