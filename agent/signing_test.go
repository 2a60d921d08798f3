package agent

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestSignatureFetchFailureIsNotARefusal: a registry that fails while the
// signature is fetched (a 503 for the .minisig only) is a failed download,
// tried again with backoff; the version is not marked bad. Once the registry
// answers, the signed release is deployed.
func TestSignatureFetchFailureIsNotARefusal(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := pub.MarshalText()
	fake := newS3Fake(t)
	p := testkit.NewFaultProxy(t, fake.url)
	p.Only = func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, ".minisig") }
	p.Set(testkit.Fault5xx)

	data := site("v1.0.0")
	r := minisign.NewReader(bytes.NewReader(data))
	_, _ = r.Read(make([]byte, len(data)+1))
	sig := r.SignWithComments(priv, "site v1.0.0", "test")
	for name, b := range map[string][]byte{"site.tar.gz.minisig": sig, "site.tar.gz": data} {
		if _, err := fake.backend.PutObject("releases", "site/v1.0.0/"+name, map[string]string{}, bytes.NewReader(b), int64(len(b)), nil); err != nil {
			t.Fatal(err)
		}
	}

	e := newEnv(t)
	e.write(fmt.Sprintf(`
agent {
  state_dir = %q
  admin     = ""
}
app "site" {
  registry = "s3://us-east-1/releases/site?artifact=site.tar.gz&endpoint=%s"
  interval = "1s"
  verify {
    minisign_public_keys = [%q]
  }
  runner "assets" {}
}
`, e.state, p.URL, pubText))
	_, w, clk := e.startPolledWith(Options{HTTPClient: DefaultHTTPClient()})
	waitFor(t, "a failed signature fetch", func() bool { return p.Faulted() > 0 && w.snapshot().LastError != "" })
	s := w.snapshot()
	if len(s.Bad) != 0 || s.Deployed != "" {
		t.Fatalf("a registry failure refused the release: bad %+v, deployed %q", s.Bad, s.Deployed)
	}
	if strings.Contains(s.LastError, "signature rejected") {
		t.Fatalf("last error %q calls a registry failure a refusal", s.LastError)
	}
	p.Set(testkit.FaultNone)
	pollNow(t, clk, w)
	if s := w.snapshot(); s.Deployed != "v1.0.0" || !strings.Contains(s.Verified, "site v1.0.0") {
		t.Fatalf("after the registry recovered: deployed %q, verified %q", s.Deployed, s.Verified)
	}
}
