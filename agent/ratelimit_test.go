package agent

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
)

// TestRateLimitedWait: the wait after a failed poll is the backoff, or what
// the registry asked for (its own RateLimitedError, or a Retry-After on a 429
// or 503 the app's client received), never over maxRateLimitWait, and the
// error then says until when.
func TestRateLimitedWait(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", r.URL.Query().Get("after"))
		code := http.StatusTooManyRequests
		if r.URL.Query().Has("503") {
			code = http.StatusServiceUnavailable
		}
		if r.URL.Query().Has("500") {
			code = http.StatusInternalServerError
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	failed := errors.New("list: 429")
	tests := []struct {
		name     string
		query    string // a request the app's client makes first; "" none
		err      error
		want     time.Duration
		wantText string
	}{
		{name: "no limit", err: failed, want: 4 * time.Second},
		{name: "429 seconds", query: "after=600", err: failed, want: 10 * time.Minute, wantText: "rate limited until 2026-12-06T12:10:00Z: list: 429"},
		{name: "503 date", query: "503&after=Sun,+06+Dec+2026+12:20:00+GMT", err: failed, want: 20 * time.Minute, wantText: "rate limited until 2026-12-06T12:20:00Z"},
		{name: "500 is not asked to wait", query: "500&after=600", err: failed, want: 4 * time.Second},
		{name: "shorter than backoff", query: "after=1", err: failed, want: 4 * time.Second, wantText: "rate limited until 2026-12-06T12:00:04Z: list: 429"},
		{name: "capped", query: "after=86400", err: failed, want: maxRateLimitWait, wantText: "rate limited until 2026-12-06T13:00:00Z"},
		{name: "source's own, capped", err: &sources.RateLimitedError{Until: now.Add(5 * time.Hour), Reason: "GitHub"}, want: maxRateLimitWait,
			wantText: "rate limited until 2026-12-06T13:00:00Z: GitHub (the registry asked to wait until 2026-12-06T17:00:00Z"},
	}
	t.Run("a note does not outlive its poll", func(t *testing.T) {
		client, limits := noteRetryAfters(srv.Client(), func() time.Time { return now })
		w := &worker{limits: limits, now: func() time.Time { return now }}
		for _, first := range []error{nil, &sources.RateLimitedError{Until: now.Add(time.Minute), Reason: "GitHub"}} {
			resp, err := client.Get(srv.URL + "/?after=600")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if first == nil {
				w.limits.take() // what the loop does after a poll that succeeded
			} else {
				w.rateLimited(first, 4*time.Second)
			}
			if err, wait := w.rateLimited(failed, 4*time.Second); wait != 4*time.Second || err != failed {
				t.Errorf("after %v: the next failure waits %s with %v, want the backoff (4s) and the error unchanged", first, wait, err)
			}
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, limits := noteRetryAfters(srv.Client(), func() time.Time { return now })
			if tt.query != "" {
				resp, err := client.Get(srv.URL + "/?" + tt.query)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			w := &worker{limits: limits, now: func() time.Time { return now }}
			err, wait := w.rateLimited(tt.err, 4*time.Second)
			if wait != tt.want {
				t.Errorf("wait = %s, want %s", wait, tt.want)
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if tt.wantText == "" && err != tt.err {
				t.Errorf("error = %v, want %v unchanged", err, tt.err)
			}
			if !errors.Is(err, tt.err) && tt.err == failed {
				t.Errorf("error %v does not wrap the poll's", err)
			}
		})
	}
}
