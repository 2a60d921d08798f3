package oci_test

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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

// TestImageSignatureBundles reads signatures as cosign 3 stores them by
// default: Sigstore bundles in artifacts that refer to the image, found
// through the referrers API or, on a registry without it, the sha256-<hex>
// fallback tag.
func TestImageSignatureBundles(t *testing.T) {
	isolate(t)
	for _, api := range []bool{true, false} {
		where := "referrers API"
		if !api {
			where = "fallback tag"
		}
		t.Run(where, func(t *testing.T) {
			f := newFake(t, registry.WithReferrersSupport(api))
			reg := &testimage.Registry{Host: f.host}
			key, stranger := testimage.NewCosignKey(t), testimage.NewCosignKey(t)
			plat := "linux/" + runtime.GOARCH
			img := testimage.Build(t, "v1", testimage.Options{Platform: plat})
			digest := f.push(t, "app", "v1.0.0", img).String()
			idx := strings.TrimPrefix(reg.MustPushIndex(t, "multi", "v1.0.0", testimage.Index(
				testimage.Platformed{Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, Image: img})), reg.Repository("multi")+"@")

			read := func(t *testing.T, repo string) []sources.SignatureImage {
				t.Helper()
				src := newSource(t, f.host+"/"+repo, nil)
				rel := version.Release{Tag: "v1.0.0", Image: f.host + "/" + repo + ":v1.0.0"}
				got, err := src.ImageSignatures(t.Context(), rel, f.host+"/"+repo+"@"+digest)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}

			if got := read(t, "app"); len(got) != 1 || got[0].Signed() {
				t.Fatalf("unsigned: %+v", got)
			}

			first := reg.MustSignBundle(t, "app", digest, stranger)
			// Where the bundle is listed: by the registry, or in the
			// fallback tag go-containerregistry keeps for the subject.
			repo, err := name.NewRepository(f.host+"/app", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			tags, err := remote.List(repo, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			if fallback := strings.Replace(digest, ":", "-", 1); slices.Contains(tags, fallback) == api {
				t.Fatalf("tags %v: the fallback tag %s is there: %v, want %v", tags, fallback, !api, !api)
			}
			got := read(t, "app")
			if len(got) != 1 || got[0].Manifest != "" || len(got[0].Bundles) != 1 || got[0].Bundles[0].Manifest != first {
				t.Fatalf("after one bundle: %+v, want the artifact %s", got, first)
			}
			second := reg.MustSignBundle(t, "app", digest, key)
			// An attestation made with the key is no signature: skipped
			// from what its descriptor or manifest says.
			reg.MustAttachBundle(t, "app", digest, key.SignStatement(testimage.CosignStatement(digest, "https://slsa.dev/provenance/v1")), "https://slsa.dev/provenance/v1")
			legacy := reg.MustSign(t, "app", digest, key)
			got = read(t, "app")
			want := []string{first, second}
			slices.Sort(want)
			if len(got) != 1 || got[0].Manifest != legacy || len(got[0].Layers) != 1 || len(got[0].Bundles) != 2 ||
				got[0].Bundles[0].Manifest != want[0] || got[0].Bundles[1].Manifest != want[1] {
				t.Fatalf("after two bundles, an attestation and a legacy signature: %+v, want bundles %v", got, want)
			}
			for _, b := range got[0].Bundles {
				if b.Manifest == second && !bytes.Contains(b.Bundle, []byte(`"dsseEnvelope"`)) {
					t.Errorf("bundle of %s: %s", second, b.Bundle)
				}
			}

			// A bundle on the index the tag names.
			signed := reg.MustSignBundle(t, "multi", idx, key)
			got = read(t, "multi")
			if len(got) != 2 || got[0].Signed() || got[1].Digest != idx || len(got[1].Bundles) != 1 || got[1].Bundles[0].Manifest != signed {
				t.Fatalf("index signed: %+v, want the bundle %s on %s", got, signed, idx)
			}
		})
	}
}
