package testkit

import (
	cryptotls "crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testcert"
)

// Fault is one way a registry misbehaves.
type Fault string

// The faults FaultProxy injects.
const (
	// FaultNone passes requests through.
	FaultNone Fault = ""
	// Fault5xx answers 503 Service Unavailable.
	Fault5xx Fault = "5xx"
	// FaultTimeout sends no response at all until the client gives up.
	FaultTimeout Fault = "timeout"
	// FaultStall sends the headers and the first bytes of the body, then
	// nothing more until the client gives up.
	FaultStall Fault = "stall"
	// FaultTruncate sends the headers (with the full Content-Length) and half
	// the body, then closes the connection.
	FaultTruncate Fault = "truncate"
	// Fault429 answers 429 Too Many Requests with Retry-After.
	Fault429 Fault = "429"
	// Fault503RetryAfter answers 503 Service Unavailable with Retry-After
	// as an HTTP date, RetryAfterDate from the time of the request.
	Fault503RetryAfter Fault = "503-retry-after-date"
	// Fault403 answers 403 Forbidden with Retry-After.
	Fault403 Fault = "403"
	// FaultRedirectLoop redirects every request to itself.
	FaultRedirectLoop Fault = "redirect-loop"
	// FaultTLS makes a proxy from NewTLSFaultProxy present a certificate its
	// Client does not trust, so every handshake fails.
	FaultTLS Fault = "tls"
)

// Faults lists every fault but FaultNone, for table tests. FaultTLS needs a
// proxy from NewTLSFaultProxy.
var Faults = []Fault{Fault5xx, FaultTimeout, FaultStall, FaultTruncate, Fault429, Fault503RetryAfter, Fault403, FaultRedirectLoop, FaultTLS}

// RetryAfter is the Retry-After FaultProxy sends with 429 and 403, in seconds.
const RetryAfter = 3600

// RetryAfterDate is how far ahead the HTTP date in Fault503RetryAfter's
// Retry-After lies.
const RetryAfterDate = 30 * time.Minute

// FaultProxy is a reverse proxy in front of a registry (a fake that speaks the
// real protocol) that injects a Fault into the requests Only matches, and
// counts requests. Faults end when the test ends: stalled and timed-out
// requests are released.
type FaultProxy struct {
	// URL is the proxy's base URL, used in place of the registry's.
	URL string
	// Only picks the requests the fault applies to; nil means all.
	Only func(*http.Request) bool
	// Now is the clock of Fault503RetryAfter's date (the client's fake
	// clock, say); nil means time.Now. Set it before the first request.
	Now func() time.Time

	fault    atomic.Value // Fault
	requests atomic.Int64
	faulted  atomic.Int64
	release  chan struct{}
	once     sync.Once
	srv      *httptest.Server
}

// NewFaultProxy starts a FaultProxy in front of target (a base URL) on
// 127.0.0.1, passing requests through until Set is called.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	return newFaultProxy(t, target, false)
}

// NewTLSFaultProxy is NewFaultProxy served over HTTPS. Client trusts its
// certificate; after Set(FaultTLS) it presents another one, which no
// client trusts, and every handshake fails.
func NewTLSFaultProxy(t testing.TB, target string) *FaultProxy {
	return newFaultProxy(t, target, true)
}

// Client returns a client that trusts the proxy's own certificate (for a
// proxy from NewTLSFaultProxy) and keeps no idle connections, so each
// request makes a new handshake.
func (p *FaultProxy) Client() *http.Client {
	c := p.srv.Client()
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.DisableKeepAlives = true
	}
	return c
}

func newFaultProxy(t testing.TB, target string, tls bool) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("fault proxy target %q: %v", target, err)
	}
	p := &FaultProxy{release: make(chan struct{})}
	p.fault.Store(FaultNone)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		f := p.fault.Load().(Fault)
		if f == FaultNone || (p.Only != nil && !p.Only(r)) {
			rp.ServeHTTP(w, r)
			return
		}
		p.faulted.Add(1)
		p.inject(f, w, r, rp)
	})
	if tls {
		p.srv = httptest.NewUnstartedServer(h)
		p.srv.StartTLS()
		good := p.srv.TLS.Certificates[0]
		bad, _ := testcert.New(t) // self-signed: trusted by the pool we drop
		p.srv.TLS.Certificates = nil
		p.srv.TLS.GetCertificate = func(*cryptotls.ClientHelloInfo) (*cryptotls.Certificate, error) {
			if p.fault.Load().(Fault) == FaultTLS {
				return &bad, nil
			}
			return &good, nil
		}
	} else {
		p.srv = httptest.NewServer(h)
	}
	p.URL = p.srv.URL
	t.Cleanup(func() {
		p.once.Do(func() { close(p.release) })
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

// Set makes the proxy inject f from now on (FaultNone: pass through).
// Open connections are closed, so the next request sees the fault.
func (p *FaultProxy) Set(f Fault) {
	p.fault.Store(f)
	p.srv.CloseClientConnections()
}

// Requests returns how many requests the proxy has received.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Faulted returns how many requests got a fault.
func (p *FaultProxy) Faulted() int64 { return p.faulted.Load() }

func (p *FaultProxy) inject(f Fault, w http.ResponseWriter, r *http.Request, next http.Handler) {
	switch f {
	case FaultTLS:
		next.ServeHTTP(w, r) // the handshake already failed for clients that check
	case Fault5xx:
		http.Error(w, "service unavailable (injected)", http.StatusServiceUnavailable)
	case Fault503RetryAfter:
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		w.Header().Set("Retry-After", now().Add(RetryAfterDate).UTC().Format(http.TimeFormat))
		http.Error(w, "service unavailable (injected)", http.StatusServiceUnavailable)
	case Fault429, Fault403:
		code := http.StatusTooManyRequests
		if f == Fault403 {
			code = http.StatusForbidden
		}
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
		http.Error(w, http.StatusText(code)+" (injected)", code)
	case FaultRedirectLoop:
		http.Redirect(w, r, r.URL.RequestURI(), http.StatusFound)
	case FaultTimeout:
		p.wait(r)
	case FaultStall, FaultTruncate:
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		half := body[:len(body)/2]
		w.Write(half)
		w.(http.Flusher).Flush()
		if f == FaultStall {
			p.wait(r)
			return
		}
		// Truncate: drop the connection with the body half sent.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	default:
		panic(fmt.Sprintf("testkit: unknown fault %q", f))
	}
}

// wait holds a request until its client gives up or the test ends.
func (p *FaultProxy) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.release:
	case <-time.After(5 * time.Minute):
	}
}

// IsArtifact matches requests for archives (.tar.gz, .tgz, .zip): the
// downloads, not the listings. Use it as Only for FaultStall and
// FaultTruncate to fault the download of a release.
func IsArtifact(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz") || strings.HasSuffix(p, ".zip")
}
