package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultStallTimeout is how long a registry response body may send nothing
// before the agent gives up on it.
const DefaultStallTimeout = 60 * time.Second

// errStalled is the cause a stalled body's Read reports.
var errStalled = errors.New("the registry stopped sending")

// stallGuard wraps a transport so that a response body that sends nothing
// for idle is closed and its Read fails, instead of holding a deploy
// forever. The client's overall timeout is not used because an artifact
// download may rightly take long; only silence is bounded.
type stallGuard struct {
	next http.RoundTripper
	idle time.Duration
}

// withStallGuard returns a client like c whose response bodies fail after
// idle without data. c itself is not changed.
func withStallGuard(c *http.Client, idle time.Duration) *http.Client {
	if c == nil || idle <= 0 {
		return c
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out := *c
	out.Transport = &stallGuard{next: next, idle: idle}
	return &out
}

func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(req)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	resp.Body = newStallReader(resp.Body, g.idle)
	return resp, nil
}

// stallReader closes its body when one Read waits idle for data. Only time
// spent inside Read counts: a reader that is slow to ask (a slow disk) is
// not the registry's stall.
type stallReader struct {
	body io.ReadCloser
	idle time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	stalled bool
}

func newStallReader(body io.ReadCloser, idle time.Duration) *stallReader {
	r := &stallReader{body: body, idle: idle}
	r.timer = time.AfterFunc(time.Hour, r.fire)
	r.timer.Stop()
	return r
}

func (r *stallReader) fire() {
	r.mu.Lock()
	r.stalled = true
	r.mu.Unlock()
	r.body.Close()
}

func (r *stallReader) Read(p []byte) (int, error) {
	r.timer.Reset(r.idle)
	n, err := r.body.Read(p)
	r.timer.Stop()
	r.mu.Lock()
	stalled := r.stalled
	r.mu.Unlock()
	if stalled {
		return n, fmt.Errorf("%w for %s", errStalled, r.idle)
	}
	return n, err
}

func (r *stallReader) Close() error {
	r.timer.Stop()
	return r.body.Close()
}
