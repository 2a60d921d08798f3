package agent

import (
	"bytes"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"aead.dev/minisign"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/releasestore"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources"
	grpcsrc "github.com/dewy-agent/dewy-agent/sources/grpc"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// sigFiles is the file server a grpc registry's artifact URLs point at: it
// serves files by path, counts the requests for each, and answers 503 while
// down.
type sigFiles struct {
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	down  bool
}

func (f *sigFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits[r.URL.Path]++
	if f.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	b, ok := f.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func (f *sigFiles) put(path string, b []byte) { f.mu.Lock(); f.files[path] = b; f.mu.Unlock() }
func (f *sigFiles) setDown(d bool)            { f.mu.Lock(); f.down = d; f.mu.Unlock() }
func (f *sigFiles) requests(path string) int  { f.mu.Lock(); defer f.mu.Unlock(); return f.hits[path] }

// minisignFile signs data as `minisign -S` does, with comment trusted.
func minisignFile(priv minisign.PrivateKey, data []byte, comment string) []byte {
	r := minisign.NewReader(bytes.NewReader(data))
	_, _ = r.Read(make([]byte, len(data)+1))
	return r.SignWithComments(priv, comment, "test")
}

// TestGRPCSignatureIdentity: a grpc registry lists no signature files, so a
// refusal records what its fetches found in the bad mark, and while the
// version is marked bad each identity check fetches the signature URL again:
// a signature uploaded or replaced later changes the identity (the version
// is tried again, with the same created_at and no retry), a file server that
// is down keeps the mark, and a version not marked bad, or marked bad for
// another reason, costs no request.
func TestGRPCSignatureIdentity(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := pub.MarshalText()
	settings := &signing.Settings{MinisignPublicKeys: []string{string(pubText)}}
	verifier, err := settings.New()
	if err != nil {
		t.Fatal(err)
	}

	files := &sigFiles{files: map[string][]byte{}, hits: map[string]int{}}
	srv := httptest.NewServer(files)
	defer srv.Close()
	reg := &grpcRegistry{base: srv.URL, tag: "v1.0.0"}
	addr := reg.serve(t)
	src, err := grpcsrc.New(grpcsrc.Config{Target: addr, NoTLS: true}, sources.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cand, err := src.Decide(t.Context(), version.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	artPath := "/v1.0.0/" + cand.Artifact.Name
	sigPath := artPath + ".minisig"
	data := site("v1.0.0")
	files.put(artPath, data)

	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	p := newPipeline(runners.Files, src, nil, releasestore.NewStore(dir, 2, logger), dir, logger).(*filePipeline)
	p.verifier = verifier
	w := &worker{pipe: p, src: src, app: config.App{Verify: settings}}
	plain := artifactIdentity(cand, sigSuffixes(w.app))

	if got := w.identity(t.Context(), cand); got != plain || files.requests(sigPath) != 0 {
		t.Fatalf("not bad: identity %q after %d signature requests, want %q and none", got, files.requests(sigPath), plain)
	}
	// Marked bad for something else (a failed health check): no request.
	w.st.Bad = []BadVersion{{Version: "v1.0.0", Artifact: plain}}
	if got := w.identity(t.Context(), cand); got != plain || files.requests(sigPath) != 0 {
		t.Fatalf("bad for another reason: identity %q after %d signature requests, want %q and none", got, files.requests(sigPath), plain)
	}

	refuse := func(t *testing.T) string {
		t.Helper()
		_, err := p.prepare(t.Context(), cand)
		if !errors.Is(err, signing.ErrRejected) {
			t.Fatalf("prepare = %v, want a refusal", err)
		}
		marked := w.checkedIdentity(cand, err)
		w.st.Bad = []BadVersion{{Version: "v1.0.0", Artifact: marked}}
		before := files.requests(sigPath)
		if got := w.identity(t.Context(), cand); got != marked || files.requests(sigPath) != before+1 {
			t.Fatalf("nothing changed: identity %q after %d signature requests, want the marked %q from one", got, files.requests(sigPath)-before, marked)
		}
		return marked
	}

	marked := refuse(t)
	if want := plain + " fetched=.minisig:none"; marked != want {
		t.Fatalf("marked identity %q, want %q", marked, want)
	}
	// The file server is down: nothing shows a change, the mark stands.
	files.setDown(true)
	if got := w.identity(t.Context(), cand); got != marked {
		t.Fatalf("file server down: identity %q, want the marked %q", got, marked)
	}
	files.setDown(false)

	// A signature by another key is uploaded: tried again, refused again.
	files.put(sigPath, minisignFile(otherPriv, data, "not ours"))
	if got := w.identity(t.Context(), cand); got == marked {
		t.Fatalf("a signature uploaded since: identity %q is still the marked one", got)
	}
	marked2 := refuse(t)
	if !strings.HasPrefix(marked2, plain+" fetched=.minisig:sha256:") {
		t.Fatalf("marked identity %q does not name the signature's hash", marked2)
	}

	// Replaced by the trusted key's: tried again and deployed.
	files.put(sigPath, minisignFile(priv, data, "site v1.0.0"))
	if got := w.identity(t.Context(), cand); got == marked2 {
		t.Fatalf("signature replaced: identity %q is still the marked one", got)
	}
	s, err := p.prepare(t.Context(), cand)
	if err != nil {
		t.Fatalf("prepare with the trusted signature: %v", err)
	}
	if !strings.Contains(s.verified, "site v1.0.0") {
		t.Errorf("verified %q", s.verified)
	}
	reg.mu.Lock()
	calls := reg.calls
	reg.mu.Unlock()
	if calls != 1 {
		t.Errorf("%d Current calls, want the one Decide: the checks read the signature URL only", calls)
	}
}
