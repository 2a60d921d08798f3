package agent

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// faultRig is one registry, started for one case of TestRegistryFaults with
// v1.0.0 published, and the means to fault it.
type faultRig struct {
	// registry is the app's registry URL; extra are more lines of the app
	// block (artifact = ...).
	registry, extra string
	// client is the agent's registry client (one that trusts the TLS fault
	// proxy's first certificate, for FaultTLS).
	client *http.Client
	// publish publishes a version.
	publish func(v string)
	// set turns the fault on; FaultNone turns it off.
	set func(f testkit.Fault)
	// requests counts the requests the registry received (nil: not
	// counted, as for a folder); faulted counts those that met the fault.
	requests, faulted func() int64
	// secrets must never appear in status.
	secrets []string
	// proxies are the fault proxies in front of the registry.
	proxies []*testkit.FaultProxy
}

// faultSource is a registry kind for TestRegistryFaults: the faults it is
// tried with and how to start its fake (which speaks the real protocol).
type faultSource struct {
	name   string
	faults []testkit.Fault
	start  func(t *testing.T, e *env, f testkit.Fault) *faultRig
	// rateLimited: the faults whose Retry-After the app must honour.
	rateLimited map[testkit.Fault]time.Duration
}

// httpRateLimits are the Retry-After waits every HTTP registry honours: the
// 429's delta-seconds (capped at an hour) and the 503's HTTP date.
var httpRateLimits = map[testkit.Fault]time.Duration{
	testkit.Fault429:           min(testkit.RetryAfter*time.Second, maxRateLimitWait),
	testkit.Fault503RetryAfter: testkit.RetryAfterDate,
}

// Faults of a folder registry (file://).
const (
	// faultVanish: the registry folder disappears (an unmounted share).
	faultVanish testkit.Fault = "vanish"
	// faultBeingWritten: the new version's archive is half copied in place
	// and still being written to.
	faultBeingWritten testkit.Fault = "being-written"
	// faultUnreadable: the new version's folder may not be read.
	faultUnreadable testkit.Fault = "unreadable"
)

// gRPC registry faults, answered by the registry server itself (the
// testkit faults hit the artifact downloads behind it).
const (
	faultUnavailable       testkit.Fault = "grpc-unavailable"
	faultResourceExhausted testkit.Fault = "grpc-resource-exhausted"
	faultPermissionDenied  testkit.Fault = "grpc-permission-denied"
)

// faultProxy starts a fault proxy in front of target (a TLS one for FaultTLS)
// and the agent client to use with it. Stall and truncate hit the downloads
// of archives only.
func faultProxy(t *testing.T, target string, f testkit.Fault) (*testkit.FaultProxy, *http.Client) {
	var p *testkit.FaultProxy
	var client *http.Client
	if f == testkit.FaultTLS {
		p = testkit.NewTLSFaultProxy(t, target)
		client = p.Client()
	} else {
		p = testkit.NewFaultProxy(t, target)
		client = DefaultHTTPClient()
	}
	client.Transport.(*http.Transport).ResponseHeaderTimeout = time.Second
	if f == testkit.FaultStall || f == testkit.FaultTruncate {
		p.Only = testkit.IsArtifact
	}
	return p, client
}

// proxiedRig is the rig of a registry behind the proxies ps.
func proxiedRig(registry string, client *http.Client, publish func(string), ps ...*testkit.FaultProxy) *faultRig {
	sum := func(n func(*testkit.FaultProxy) int64) func() int64 {
		return func() int64 {
			var s int64
			for _, p := range ps {
				s += n(p)
			}
			return s
		}
	}
	return &faultRig{
		registry: registry,
		client:   client,
		publish:  publish,
		set: func(f testkit.Fault) {
			for _, p := range ps {
				p.Set(f)
			}
		},
		requests: sum((*testkit.FaultProxy).Requests),
		faulted:  sum((*testkit.FaultProxy).Faulted),
		proxies:  ps,
	}
}

// faultSources are the registries TestRegistryFaults runs against.
var faultSources = []faultSource{
	{
		name:        "s3",
		faults:      testkit.Faults,
		rateLimited: httpRateLimits,
		start: func(t *testing.T, _ *env, f testkit.Fault) *faultRig {
			fake := newS3Fake(t)
			p, client := faultProxy(t, fake.url, f)
			r := proxiedRig("s3://us-east-1/releases/site?artifact=site.tar.gz&endpoint="+p.URL, client, func(v string) { fake.put(t, v) }, p)
			r.secrets = []string{"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AKIDEXAMPLE"}
			return r
		},
	},
	{
		// fake-gcs-server: the listing goes through the proxy (downloads go
		// to its public host), so stall and truncate hit the listing.
		name:        "gs",
		faults:      testkit.Faults,
		rateLimited: httpRateLimits,
		start: func(t *testing.T, _ *env, f testkit.Fault) *faultRig {
			fake := newGCSFake(t)
			p, client := faultProxy(t, "http://"+os.Getenv("STORAGE_EMULATOR_HOST"), f)
			p.Only = nil
			t.Setenv("STORAGE_EMULATOR_HOST", p.URL) // the client takes a scheme too
			return proxiedRig("gs://releases/site?artifact=site.tar.gz", client, fake.put, p)
		},
	},
	{
		// fakegithub behind two proxies, one for the API and one for the
		// storage host downloads are redirected to, with a token required:
		// the fake names the proxies in the URLs it hands out.
		// GitHub's 403 with Retry-After is its secondary rate limit.
		name:        "ghr",
		faults:      testkit.Faults,
		rateLimited: merge(httpRateLimits, map[testkit.Fault]time.Duration{testkit.Fault403: maxRateLimitWait}),
		start: func(t *testing.T, _ *env, f testkit.Fault) *faultRig {
			gh := fakegithub.New(t)
			api, storage := gh.Origins()
			pa, client := faultProxy(t, api, f)
			ps, _ := faultProxy(t, storage, f) // httptest's servers share one certificate
			gh.SetPublicURLs(pa.URL, ps.URL)
			const token = "ghp_faultsTokenNeverShown"
			gh.RequireToken(token)
			t.Setenv("GITHUB_TOKEN", token)
			t.Setenv("GITHUB_API_URL", gh.URL())
			publish := func(v string) {
				gh.AddRelease("acme", "site", fakegithub.Release{Tag: v, Published: time.Now().Add(-time.Hour),
					Assets: map[string][]byte{"site.tar.gz": site(v)}})
			}
			r := proxiedRig("ghr://acme/site", client, publish, pa, ps)
			r.extra = `artifact = "site.tar.gz"`
			r.secrets = []string{token}
			return r
		},
	},
	{
		// An in-process gRPC registry whose artifact URLs name a fault proxy
		// in front of an HTTP file server: the testkit faults hit the
		// downloads, the grpc-* faults are the registry's own answers.
		name:        "grpc",
		faults:      append([]testkit.Fault{faultUnavailable, faultResourceExhausted, faultPermissionDenied}, testkit.Faults...),
		rateLimited: httpRateLimits,
		start: func(t *testing.T, _ *env, f testkit.Fault) *faultRig {
			files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				v, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
				w.Write(site(v))
			}))
			t.Cleanup(files.Close)
			p, client := faultProxy(t, files.URL, f)
			reg := &grpcRegistry{base: p.URL}
			addr := reg.serve(t)
			publish := func(v string) { reg.mu.Lock(); reg.tag = v; reg.mu.Unlock() }
			r := proxiedRig("grpc://"+addr+"?no-tls=true", client, publish, p)
			calls := func() int64 { reg.mu.Lock(); defer reg.mu.Unlock(); return int64(reg.calls) }
			proxied, proxiedFaulted := r.requests, r.faulted
			codeOf := map[testkit.Fault]codes.Code{faultUnavailable: codes.Unavailable, faultResourceExhausted: codes.ResourceExhausted, faultPermissionDenied: codes.PermissionDenied}
			if _, ok := codeOf[f]; ok {
				r.requests = func() int64 { return proxied() + calls() }
			}
			r.faulted = func() int64 { reg.mu.Lock(); defer reg.mu.Unlock(); return proxiedFaulted() + int64(reg.failed) }
			r.set = func(f testkit.Fault) {
				reg.mu.Lock()
				defer reg.mu.Unlock()
				reg.fail = nil
				if c, ok := codeOf[f]; ok {
					reg.fail = status.Error(c, "injected "+c.String())
					f = testkit.FaultNone
				}
				p.Set(f)
			}
			return r
		},
	},
	{
		// A folder: no requests to count; the faults are the file system's.
		name:   "file",
		faults: []testkit.Fault{faultVanish, faultBeingWritten, faultUnreadable},
		start: func(t *testing.T, e *env, f testkit.Fault) *faultRig {
			if f == faultUnreadable && os.Geteuid() == 0 {
				t.Skip("skipped as root: file modes do not stop root from reading (CI runs it as a user)")
			}
			var mu sync.Mutex
			faulted := int64(0)
			stop := func() {}
			artifact := filepath.Join(e.reg, "v1.1.0", "site.tar.gz")
			return &faultRig{
				registry: "file://" + e.reg,
				extra:    `artifact = "site.tar.gz"`,
				client:   DefaultHTTPClient(),
				publish:  e.publish,
				faulted:  func() int64 { mu.Lock(); defer mu.Unlock(); return faulted },
				set: func(f testkit.Fault) {
					mu.Lock()
					defer mu.Unlock()
					switch f {
					case faultVanish:
						must(t, os.Rename(e.reg, e.reg+".gone"))
					case faultBeingWritten:
						// Half the archive, its modification time moved on
						// as a writer that is still copying moves it.
						must(t, os.WriteFile(artifact, site("v1.1.0")[:40], 0o644))
						done := make(chan struct{})
						var wg sync.WaitGroup
						wg.Add(1)
						go func() {
							defer wg.Done()
							tick := time.NewTicker(20 * time.Millisecond)
							defer tick.Stop()
							for {
								select {
								case <-done:
									return
								case now := <-tick.C:
									os.Chtimes(artifact, now, now)
								}
							}
						}()
						stop = func() { close(done); wg.Wait() }
						t.Cleanup(func() { stop() })
					case faultUnreadable:
						must(t, os.Chmod(filepath.Dir(artifact), 0))
					case testkit.FaultNone:
						stop()
						stop = func() {}
						os.Rename(e.reg+".gone", e.reg)
						os.Chmod(filepath.Dir(artifact), 0o755)
						must(t, os.WriteFile(artifact, site("v1.1.0"), 0o644))
						old := time.Now().Add(-time.Hour)
						must(t, os.Chtimes(artifact, old, old))
						return
					}
					faulted++
				},
			}
		},
	},
}

func merge[K comparable, V any](a, b map[K]V) map[K]V {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRegistryFaults deploys v1.0.0 from each registry (a fake that speaks
// its protocol, behind a testkit.FaultProxy, or a folder), publishes v1.1.0,
// turns a fault on, and polls three times. Each fault ends the same way:
// v1.0.0 still serving, a status line that says what went wrong without a
// secret in it, no bad mark (the fault is the registry's, not the
// release's), a bounded number of requests per poll (the client's own
// retries and nothing more: no storm), the next poll no sooner than a
// Retry-After asked, and v1.1.0 deployed once the fault clears.
func TestRegistryFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end fault test; skipped with -short")
	}
	for _, src := range faultSources {
		for _, fault := range src.faults {
			t.Run(src.name+"/"+string(fault), func(t *testing.T) {
				testRegistryFault(t, src, fault)
			})
		}
	}
}

func testRegistryFault(t *testing.T, src faultSource, fault testkit.Fault) {
	const polls = 3
	// Requests one poll may make: a listing and a download (two for a
	// redirected one), each tried 3 times by the clients that retry, and a
	// redirect loop followed to Go's limit of 10 per attempt.
	perPoll := int64(3 * 3)
	if fault == testkit.FaultRedirectLoop {
		perPoll = 3 * 3 * 11
	}

	e := newEnv(t)
	clk := newFakeClock()
	rig := src.start(t, e, fault)
	for _, p := range rig.proxies {
		p.Now = clk.Now
	}
	rig.publish("v1.0.0")
	e.write(fmt.Sprintf(`agent {
  state_dir = %q
  admin     = ""
}
app "site" {
  registry = %q
  interval = "1m"
  %s
  runner "assets" {}
}
`, e.state, rig.registry, rig.extra))
	a := e.start(Options{Clock: clk, HTTPClient: rig.client, StallTimeout: 500 * time.Millisecond})
	waitFor(t, "v1.0.0 deployed", deployed(a, "site"))
	w := a.worker("site")

	// poll lets the app's wait end, however long, and waits for the poll
	// this starts to end; it returns the wait the loop then asked for.
	poll := func() time.Duration {
		t.Helper()
		waitFor(t, "the app waiting for its next poll", func() bool { return clk.pendingOver(0) > 0 })
		before := w.polled.Load()
		clk.Advance(2 * maxRateLimitWait) // beyond any backoff, jitter or Retry-After
		waitFor(t, "the poll to end", func() bool { return w.polled.Load() > before })
		waitFor(t, "the app waiting for its next poll", func() bool { return clk.pendingOver(0) > 0 })
		return clk.longest()
	}

	rig.publish("v1.1.0")
	rig.set(fault)
	var before int64
	if rig.requests != nil {
		before = rig.requests()
	}
	for i := range polls {
		wait := poll()
		s := w.snapshot()
		if want, ok := src.rateLimited[fault]; ok {
			// The next poll waits as long as the registry asked (the
			// date's whole seconds, less a second), not the 1 s backoff.
			if wait < want-2*time.Second || wait > maxRateLimitWait {
				t.Errorf("poll %d: next poll in %s, want %s as Retry-After asked (capped at %s)", i+1, wait, want, maxRateLimitWait)
			}
			if !strings.Contains(s.LastError, "rate limited until ") {
				t.Errorf("poll %d: last error %q does not say until when it is rate limited", i+1, s.LastError)
			}
		} else if wait > w.app.Interval+w.app.Interval/10 {
			t.Errorf("poll %d: next poll in %s, more than the interval", i+1, wait)
		}
	}

	body, err := os.ReadFile(filepath.Join(w.dir, "current", "index.html"))
	if err != nil || string(body) != "v1.0.0\n" {
		t.Fatalf("current serves %q, %v; want v1.0.0", body, err)
	}
	s := w.snapshot()
	t.Logf("status after %s: state=%s deployed=%s in %d polls; last error: %s", fault, s.State, s.Deployed, polls, s.LastError)
	if s.Deployed != "v1.0.0" || s.LastError == "" || s.State != StateFailed {
		t.Errorf("status = %+v; want v1.0.0 deployed, state failed and the fault in last error", s)
	}
	if len(s.Bad) != 0 {
		t.Errorf("bad marks %+v after a registry fault; want none", s.Bad)
	}
	for _, secret := range rig.secrets {
		if strings.Contains(s.LastError, secret) {
			t.Errorf("last error holds a credential: %s", s.LastError)
		}
	}
	if rig.requests != nil {
		made := rig.requests() - before
		t.Logf("%d requests in %d polls", made, polls)
		if made > polls*perPoll {
			t.Errorf("%d requests in %d polls, want at most %d per poll", made, polls, perPoll)
		}
		if fault == testkit.FaultTLS && (made != 0 || !strings.Contains(s.LastError, "certificate")) {
			t.Errorf("TLS fault: %d requests reached the registry, last error %q; want none and a certificate error", made, s.LastError)
		}
	}
	if rig.faulted() == 0 && fault != testkit.FaultTLS {
		t.Errorf("no request met the fault")
	}

	// The registry recovers: the next poll deploys v1.1.0.
	rig.set(testkit.FaultNone)
	testkit.Eventually(t, 30*time.Second, "v1.1.0 deployed after the fault", func() bool {
		if w.snapshot().Deployed == "v1.1.0" {
			return true
		}
		if clk.pendingOver(0) > 0 {
			clk.Advance(2 * maxRateLimitWait)
		}
		return false
	})
	if body, err := os.ReadFile(filepath.Join(w.dir, "current", "index.html")); err != nil || string(body) != "v1.1.0\n" {
		t.Fatalf("after recovery current serves %q, %v; want v1.1.0", body, err)
	}
	if s := w.snapshot(); len(s.Bad) != 0 || s.LastError != "" {
		t.Errorf("after recovery status = %+v; want no bad mark and no error", s)
	}
}
