package agent

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
)

// maxRateLimitWait caps how long a registry's Retry-After (or rate limit
// reset) may hold an app's next poll: a registry that asks for a day is
// asked again within the hour.
const maxRateLimitWait = time.Hour

// retryAfters is a RoundTripper in each app's registry client that notes
// the Retry-After of 429 and 503 answers, whichever source's client library
// received them (the S3 and GCS clients retry and then drop the header), so
// a poll that failed after one waits as long as the registry asked.
type retryAfters struct {
	next http.RoundTripper
	now  func() time.Time

	mu    sync.Mutex
	until time.Time // the latest time asked for since take; zero: none
}

// noteRetryAfters returns a client like c whose 429 and 503 answers with a
// Retry-After are noted in the returned retryAfters. c is not changed.
func noteRetryAfters(c *http.Client, now func() time.Time) (*http.Client, *retryAfters) {
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	n := &retryAfters{next: next, now: now}
	out := *c
	out.Transport = n
	return &out, n
}

// RoundTrip implements http.RoundTripper.
func (n *retryAfters) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := n.next.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
	}
	if until, ok := sources.ParseRetryAfter(resp.Header.Get("Retry-After"), n.now()); ok {
		n.mu.Lock()
		if until.After(n.until) {
			n.until = until
		}
		n.mu.Unlock()
	}
	return resp, nil
}

// take returns the time noted since the last take, and forgets it.
func (n *retryAfters) take() time.Time {
	if n == nil {
		return time.Time{}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	until := n.until
	n.until = time.Time{}
	return until
}

// rateLimited is the wait after a poll that failed with err: wait (the
// backoff), or longer when the registry asked for more, by a
// *sources.RateLimitedError or a Retry-After on a 429 or 503 this app's
// client received, up to maxRateLimitWait. The error returned is then a
// *sources.RateLimitedError whose Until is when the next poll is, so status
// says "rate limited until <time>".
func (w *worker) rateLimited(err error, wait time.Duration) (error, time.Duration) {
	now := w.now()
	// Taken whatever err is: a note belongs to this poll alone, and must not
	// make a later, unrelated failure wait.
	until := w.limits.take()
	var rl *sources.RateLimitedError
	if !errors.As(err, &rl) {
		if !until.After(now) {
			return err, wait
		}
		rl = &sources.RateLimitedError{Until: until, Reason: err.Error(), Err: err}
		err = rl
	}
	if rl.Until.Sub(now) > maxRateLimitWait {
		capped := *rl
		capped.Until = now.Add(maxRateLimitWait)
		capped.Reason += fmt.Sprintf(" (the registry asked to wait until %s; the agent asks again after %s)", rl.Until.UTC().Format(time.RFC3339), maxRateLimitWait)
		err, rl = &capped, &capped
	}
	if next := now.Add(wait); next.After(rl.Until) {
		// The backoff outlasts what the registry asked for: status says
		// when the next poll really is.
		later := *rl
		later.Until = next
		err, rl = &later, &later
	}
	return err, rl.Until.Sub(now)
}
