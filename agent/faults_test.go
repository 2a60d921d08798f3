package agent

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// faultSource is a registry fake for TestRegistryFaults: start returns the
// URL to put the fault proxy in front of; registry builds the app's
// registry URL with the proxy's URL; put publishes a version.
type faultSource struct {
	name     string
	start    func(t *testing.T) (target string, put func(v string))
	registry func(t *testing.T, target, proxy string) string
	// artifactsProxied: downloads go through the proxy (else stall and
	// truncate are injected into the listing).
	artifactsProxied bool
	secrets          []string
}

// faultSources are the registries TestRegistryFaults runs against; the
// table takes any source whose fake is an HTTP server.
var faultSources = []faultSource{
	{
		name: "s3",
		start: func(t *testing.T) (string, func(string)) {
			f := newS3Fake(t)
			return f.url, func(v string) { f.put(t, v) }
		},
		registry: func(t *testing.T, _, proxy string) string {
			return "s3://us-east-1/releases/site?artifact=site.tar.gz&endpoint=" + proxy
		},
		artifactsProxied: true,
		secrets:          []string{"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AKIDEXAMPLE"},
	},
	{
		// fake-gcs-server: the listing goes through the proxy (downloads go
		// to its public host), so stall and truncate hit the listing.
		name: "gs",
		start: func(t *testing.T) (string, func(string)) {
			f := newGCSFake(t)
			return "http://" + os.Getenv("STORAGE_EMULATOR_HOST"), f.put
		},
		registry: func(t *testing.T, _, proxy string) string {
			t.Setenv("STORAGE_EMULATOR_HOST", proxy)
			return "gs://releases/site?artifact=site.tar.gz"
		},
	},
}

// TestRegistryFaults deploys v1.0.0 from each registry (a fake that speaks
// its protocol, behind a testkit.FaultProxy), publishes v1.1.0, turns a
// fault on, and polls three times. Each fault ends the same way: v1.0.0 still serving, a status line
// that says what went wrong without a secret in it, and a bounded number of
// requests per poll (the client's own retries and nothing more: no storm).
func TestRegistryFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end fault test; skipped with -short")
	}
	const polls = 3
	// Requests one poll may make: a listing and a download, each retried by
	// the S3 client (3 attempts), and a redirect loop followed to Go's limit
	// of 10 per attempt.
	perPoll := map[testkit.Fault]int64{testkit.FaultRedirectLoop: 2 * 3 * 11}
	const defaultPerPoll = 2 * 3 * 2
	for _, src := range faultSources {
		for _, fault := range testkit.Faults {
			t.Run(src.name+"/"+string(fault), func(t *testing.T) {
				testRegistryFault(t, src, fault, polls, perPoll, defaultPerPoll)
			})
		}
	}
}

func testRegistryFault(t *testing.T, src faultSource, fault testkit.Fault, polls int, perPoll map[testkit.Fault]int64, defaultPerPoll int) {
	{
		{
			target, put := src.start(t)
			put("v1.0.0")
			var proxy *testkit.FaultProxy
			var client *http.Client
			if fault == testkit.FaultTLS {
				proxy = testkit.NewTLSFaultProxy(t, target)
				client = proxy.Client()
			} else {
				proxy = testkit.NewFaultProxy(t, target)
				client = DefaultHTTPClient()
			}
			client.Transport.(*http.Transport).ResponseHeaderTimeout = time.Second
			if src.artifactsProxied && (fault == testkit.FaultStall || fault == testkit.FaultTruncate) {
				proxy.Only = testkit.IsArtifact
			}
			e := newEnv(t)
			e.write(fmt.Sprintf(`agent {
  state_dir = %q
  admin     = ""
}
app "site" {
  registry = %q
  interval = "1m"
  runner "assets" {}
}
`, e.state, src.registry(t, target, proxy.URL)))
			clk := newFakeClock()
			a := e.start(Options{Clock: clk, HTTPClient: client, StallTimeout: 500 * time.Millisecond})
			waitFor(t, "v1.0.0 deployed", deployed(a, "site"))
			w := a.worker("site")

			put("v1.1.0")
			proxy.Set(fault)
			before := proxy.Requests()
			for range polls {
				pollNow(t, clk, w)
			}
			made := proxy.Requests() - before

			body, err := os.ReadFile(filepath.Join(w.dir, "current", "index.html"))
			if err != nil || string(body) != "v1.0.0\n" {
				t.Fatalf("current serves %q, %v; want v1.0.0", body, err)
			}
			s := w.snapshot()
			t.Logf("status after %s: state=%s deployed=%s requests=%d in %d polls; last error: %s", fault, s.State, s.Deployed, made, polls, s.LastError)
			if s.Deployed != "v1.0.0" || s.LastError == "" {
				t.Errorf("status = %+v; want v1.0.0 deployed and the fault in last error", s)
			}
			for _, secret := range src.secrets {
				if strings.Contains(s.LastError, secret) {
					t.Errorf("last error holds a credential: %s", s.LastError)
				}
			}
			limit := defaultPerPoll
			if n, ok := perPoll[fault]; ok {
				limit = int(n)
			}
			if made > int64(polls*limit) {
				t.Errorf("%d requests in %d polls, want at most %d per poll", made, polls, limit)
			}
			if fault == testkit.FaultTLS && (made != 0 || !strings.Contains(s.LastError, "certificate")) {
				t.Errorf("TLS fault: %d requests reached the registry, last error %q; want none and a certificate error", made, s.LastError)
			}
			if proxy.Faulted() == 0 && fault != testkit.FaultTLS {
				t.Errorf("no request met the fault")
			}

			// The registry recovers: the next poll deploys v1.1.0.
			proxy.Set(testkit.FaultNone)
			testkit.Eventually(t, 30*time.Second, "v1.1.0 deployed after the fault", func() bool {
				if w.snapshot().Deployed == "v1.1.0" {
					return true
				}
				if clk.pendingOver(0) > 0 {
					clk.Advance(2 * time.Hour)
				}
				return false
			})
		}
	}
}
