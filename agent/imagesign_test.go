package agent

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	dto "github.com/prometheus/client_model/go"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/internal/testimage"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// TestImagePipelineCosign: with a cosign key, prepare hands on only an image
// whose pinned digest (or the index its tag names) the key signed; a refusal
// is a *signing.Rejected and the pipeline remembers the signature images it
// saw; a registry failure is no refusal.
func TestImagePipelineCosign(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := testimage.NewRegistry(t)
	key, stranger := testimage.NewCosignKey(t), testimage.NewCosignKey(t)
	verifier, err := (&signing.Settings{CosignPublicKey: &signing.KeyFile{Path: "cosign.pub", Data: key.PublicPEM()}}).New()
	if err != nil {
		t.Fatal(err)
	}
	plat := "linux/" + runtime.GOARCH
	img := testimage.Build(t, "v1.0.0", testimage.Options{Platform: plat})
	digestOf := func(ref string) string { return ref[strings.LastIndex(ref, "@")+1:] }
	digest := digestOf(reg.MustPush(t, "app", "v1.0.0", img))
	idx := digestOf(reg.MustPushIndex(t, "multi", "v1.0.0", testimage.Index(
		testimage.Platformed{Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, Image: img})))

	prepare := func(t *testing.T, repo string) (*imagePipeline, *staged, error) {
		t.Helper()
		src, err := oci.New(oci.Config{Repository: reg.Repository(repo)}, sources.Options{HTTPClient: &http.Client{}})
		if err != nil {
			t.Fatal(err)
		}
		p := newPipeline(runners.Image, src, nil, nil, t.TempDir(), slog.New(slog.DiscardHandler)).(*imagePipeline)
		p.verify = verifier
		cand := &version.Candidate{Version: version.FromSemver(semver.MustParse("v1.0.0")),
			Release: version.Release{Tag: "v1.0.0", Image: reg.Repository(repo) + ":v1.0.0"}}
		s, err := p.prepare(t.Context(), cand)
		return p, s, err
	}
	refused := func(t *testing.T, err error, why string) {
		t.Helper()
		var de *deployError
		var rej *signing.Rejected
		if !errors.As(err, &de) || de.step != "verify" || !errors.As(err, &rej) {
			t.Fatalf("err = %v, want a verify step's *signing.Rejected", err)
		}
		if !strings.Contains(err.Error(), why) {
			t.Fatalf("err = %v, want %q", err, why)
		}
	}

	p, _, err := prepare(t, "app")
	refused(t, err, "no cosign signature for "+digest)
	if p.checked != " signatures=none" {
		t.Errorf("checked = %q", p.checked)
	}

	sigImage := reg.MustSign(t, "app", digest, stranger)
	p, _, err = prepare(t, "app")
	refused(t, err, "signed by another key")
	if p.checked != " signatures="+sigImage {
		t.Errorf("checked = %q, want the signature image %s", p.checked, sigImage)
	}

	reg.MustSign(t, "app", digest, key)
	if _, s, err := prepare(t, "app"); err != nil || s.d.Image != reg.Repository("app")+"@"+digest {
		t.Fatalf("signed: %+v, %v", s, err)
	}

	// The index the tag names is signed, not the platform's manifest.
	p, _, err = prepare(t, "multi")
	refused(t, err, "no cosign signature for "+digest)
	if p.checked != " signatures=none,none" {
		t.Errorf("checked = %q, want the manifest's and the index's", p.checked)
	}
	reg.MustAttach(t, "multi", idx, key.Sign(testimage.CosignPayload(reg.Repository("multi"), digest)))
	_, _, err = prepare(t, "multi")
	refused(t, err, "signature is for "+digest+", not the pinned "+idx)
	reg.MustSign(t, "multi", idx, key)
	if _, s, err := prepare(t, "multi"); err != nil || s.d.Image != reg.Repository("multi")+"@"+digest {
		t.Fatalf("index signed: %+v, %v", s, err)
	}

	// A registry that does not answer is no refusal.
	reg.Close()
	if _, _, err := prepare(t, "app"); err == nil || errors.Is(err, runners.ErrBadRelease) || errors.Is(err, signing.ErrRejected) {
		t.Fatalf("registry down: err = %v, want a registry error", err)
	}
}

// TestImageIdentity: an image app that checks signatures names the signature
// images in a bad version's identity, asking the registry only while the
// version is recorded as bad, so that signing it afterwards retries it.
func TestImageIdentity(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := testimage.NewRegistry(t)
	key := testimage.NewCosignKey(t)
	settings := &signing.Settings{CosignPublicKey: &signing.KeyFile{Path: "cosign.pub", Data: key.PublicPEM()}}
	verifier, err := settings.New()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.MustPush(t, "app", "v1.0.0", testimage.Build(t, "v1.0.0", testimage.Options{}))
	digest := ref[strings.LastIndex(ref, "@")+1:]
	m := newMetrics()
	requests := func() float64 { // answered ones: the registry answers 200 or 404 here
		n := 0.0
		for _, code := range []string{"200", "404"} {
			var d dto.Metric
			if err := m.registryRequests.WithLabelValues("app", code).Write(&d); err != nil {
				t.Fatal(err)
			}
			n += d.GetCounter().GetValue()
		}
		return n
	}
	src, err := oci.New(oci.Config{Repository: reg.Repository("app")}, sources.Options{HTTPClient: m.appClient(&http.Client{}, "app")})
	if err != nil {
		t.Fatal(err)
	}
	p := newPipeline(runners.Image, src, nil, nil, t.TempDir(), slog.New(slog.DiscardHandler)).(*imagePipeline)
	p.verify = verifier
	w := &worker{pipe: p, src: src, app: config.App{Verify: settings}}
	cand := &version.Candidate{Version: version.FromSemver(semver.MustParse("v1.0.0")),
		Release: version.Release{Tag: "v1.0.0", Image: reg.Repository("app") + ":v1.0.0"}}

	if got := w.identity(t.Context(), cand); got != cand.Release.Image || requests() != 0 {
		t.Fatalf("not bad: identity %q after %v requests, want %q and none", got, requests(), cand.Release.Image)
	}
	if _, err := p.prepare(t.Context(), cand); !errors.Is(err, signing.ErrRejected) {
		t.Fatalf("prepare = %v, want a refusal", err)
	}
	marked := w.checkedIdentity(cand)
	if marked != cand.Release.Image+" signatures=none" {
		t.Fatalf("marked identity %q", marked)
	}
	w.st.Bad = []BadVersion{{Version: "v1.0.0", Artifact: marked}}
	before := requests()
	if got := w.identity(t.Context(), cand); got != marked || requests() == before {
		t.Fatalf("bad and still unsigned: identity %q after %v requests, want %q from the registry", got, requests()-before, marked)
	}
	sig := reg.MustSign(t, "app", digest, key)
	if got := w.identity(t.Context(), cand); got != cand.Release.Image+" signatures="+sig {
		t.Fatalf("signed since: identity %q, want it to name the signature image %s", got, sig)
	}
	// A registry that does not answer shows no change: the mark stands.
	reg.Close()
	if got := w.identity(t.Context(), cand); got != marked {
		t.Fatalf("registry down: identity %q, want the marked %q", got, marked)
	}
}
