package agent

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
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
	reg, key, settings, verifier, digest := cosignRegistry(t)
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
	p, w, cand := imageWorker(t, reg.Repository("app"), m.appClient(&http.Client{}, "app"), settings, verifier)

	if got := w.identity(t.Context(), cand); got != cand.Release.Image || requests() != 0 {
		t.Fatalf("not bad: identity %q after %v requests, want %q and none", got, requests(), cand.Release.Image)
	}
	if _, err := p.prepare(t.Context(), cand); !errors.Is(err, signing.ErrRejected) {
		t.Fatalf("prepare = %v, want a refusal", err)
	}
	marked := w.checkedIdentity(cand, nil)
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

// TestImagePipelineCosignBundles: signatures in cosign 3's default layout,
// Sigstore bundles in artifacts that refer to the image, are checked as the
// legacy ones: only the key's, only over the pinned digest; and the bad
// mark's identity names them, so a bundle added later retries the version.
func TestImagePipelineCosignBundles(t *testing.T) {
	reg, key, settings, verifier, digest := cosignRegistry(t)
	stranger := testimage.NewCosignKey(t)
	otherRef := reg.MustPush(t, "app", "v2.0.0", testimage.Build(t, "v2.0.0", testimage.Options{}))
	other := otherRef[strings.LastIndex(otherRef, "@")+1:]

	p, w, cand := imageWorker(t, reg.Repository("app"), &http.Client{}, settings, verifier)
	refused := func(t *testing.T, why string) {
		t.Helper()
		_, err := p.prepare(t.Context(), cand)
		var rej *signing.Rejected
		if !errors.As(err, &rej) || !strings.Contains(err.Error(), why) {
			t.Fatalf("err = %v, want a refusal saying %q", err, why)
		}
		// The bad mark names what was checked; the identity read from the
		// registry now is the same until a signature is added.
		w.st.Bad = []BadVersion{{Version: "v1.0.0", Artifact: w.checkedIdentity(cand, nil)}}
		if got := w.identity(t.Context(), cand); got != w.checkedIdentity(cand, nil) {
			t.Fatalf("identity %q, marked %q", got, w.checkedIdentity(cand, nil))
		}
	}

	refused(t, "no cosign signature for "+digest)
	if p.checked != " signatures=none" {
		t.Errorf("checked = %q", p.checked)
	}

	byStranger := reg.MustSignBundle(t, "app", digest, stranger)
	if got, want := w.identity(t.Context(), cand), cand.Release.Image+" signatures=none+"+byStranger; got != want {
		t.Fatalf("after a bundle was added: identity %q, want %q", got, want)
	}
	refused(t, "(key "+fingerprint(t, key)+"): signed by another key")

	// The key's signature of another image, attached to this one.
	reg.MustAttachBundle(t, "app", digest, key.Bundle(other), testimage.CosignSignPredicate)
	refused(t, "signature is for "+other+", not the pinned "+digest)

	good := reg.MustSignBundle(t, "app", digest, key)
	if got := w.identity(t.Context(), cand); !strings.Contains(got, "+"+good) {
		t.Fatalf("after the good bundle: identity %q does not name %s", got, good)
	}
	v, err := p.verifyImage(t.Context(), cand, reg.Repository("app")+"@"+digest)
	if err != nil || v.Method != signing.Cosign || v.Key != fingerprint(t, key) {
		t.Fatalf("signed: %+v, %v", v, err)
	}
	if s, err := p.prepare(t.Context(), cand); err != nil || s.d.Image != reg.Repository("app")+"@"+digest {
		t.Fatalf("signed: %+v, %v", s, err)
	}
}

// fingerprint is how status names k: "SHA256:" and the unpadded base64 of
// the SHA-256 of its DER encoding.
func fingerprint(t *testing.T, k *testimage.CosignKey) string {
	t.Helper()
	block, _ := pem.Decode(k.PublicPEM())
	if block == nil {
		t.Fatal("cosign.pub is not PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// imageWorker is a worker with the image pipeline on repo, checking
// signatures with verifier, and the candidate v1.0.0 of repo.
func imageWorker(t *testing.T, repo string, client *http.Client, settings *signing.Settings, verifier *signing.Verifier) (*imagePipeline, *worker, *version.Candidate) {
	t.Helper()
	src, err := oci.New(oci.Config{Repository: repo}, sources.Options{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	p := newPipeline(runners.Image, src, nil, nil, t.TempDir(), slog.New(slog.DiscardHandler)).(*imagePipeline)
	p.verify = verifier
	w := &worker{pipe: p, src: src, app: config.App{Verify: settings}}
	cand := &version.Candidate{Version: version.FromSemver(semver.MustParse("v1.0.0")),
		Release: version.Release{Tag: "v1.0.0", Image: repo + ":v1.0.0"}}
	return p, w, cand
}

// cosignRegistry is an in-process registry holding app:v1.0.0 (digest), a
// cosign key, and the verify settings and verifier that trust it.
func cosignRegistry(t *testing.T) (*testimage.Registry, *testimage.CosignKey, *signing.Settings, *signing.Verifier, string) {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := testimage.NewRegistry(t)
	key := testimage.NewCosignKey(t)
	settings := &signing.Settings{CosignPublicKey: &signing.KeyFile{Path: "cosign.pub", Data: key.PublicPEM()}}
	verifier, err := settings.New()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.MustPush(t, "app", "v1.0.0", testimage.Build(t, "v1.0.0", testimage.Options{}))
	return reg, key, settings, verifier, ref[strings.LastIndex(ref, "@")+1:]
}
