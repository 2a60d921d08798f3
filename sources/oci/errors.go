package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/dewy-agent/dewy-agent/sources"
)

// defaultRateLimitWait is how long the agent waits after a 429 that does not say.
const defaultRateLimitWait = time.Minute

// wrap turns a registry error into one that says what to do.
func (r *Registry) wrap(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("img %s: %s: %w", r.display, op, cerr)
	}
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return fmt.Errorf("img %s: %s: %w", r.display, op, err)
	}
	switch {
	case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
		r.forget()
		return fmt.Errorf("img %s: %s: access denied (HTTP %d): the repository does not exist or needs credentials; "+
			"run `docker login %s` as a user that can pull it (credentials are read from Docker's config.json and credential helpers): %w",
			r.display, op, terr.StatusCode, loginHost(r.repo.Registry), err)
	case terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode):
		return fmt.Errorf("img %s: %s: %w: %w", r.display, op, sources.ErrNotFound, err)
	case terr.StatusCode == http.StatusTooManyRequests || hasCode(terr, transport.TooManyRequestsErrorCode):
		return &sources.RateLimitedError{
			Until:  r.limits.until(r.now()),
			Reason: fmt.Sprintf("img %s: %s: the registry answered 429 Too Many Requests (Docker Hub limits anonymous requests more; `docker login` raises the limit)", r.display, op),
		}
	}
	return fmt.Errorf("img %s: %s: %w", r.display, op, err)
}

// hasCode reports whether the registry's error body carries one of the codes.
func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// loginHost is the host to give `docker login`: Docker Hub is "docker.io".
func loginHost(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return "docker.io"
	}
	return reg.RegistryStr()
}

// rateLimits is a RoundTripper that remembers the Retry-After of the last 429, which
// go-containerregistry's errors do not carry.
type rateLimits struct {
	next http.RoundTripper
	now  func() time.Time

	mu    sync.Mutex
	after time.Time // zero when the last 429 said nothing
}

// RoundTrip implements http.RoundTripper.
func (l *rateLimits) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		at, _ := sources.ParseRetryAfter(resp.Header.Get("Retry-After"), l.now())
		l.mu.Lock()
		l.after = at
		l.mu.Unlock()
	}
	return resp, err
}

// until is when the next request may be sent after a 429.
func (l *rateLimits) until(now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.after.After(now) {
		return l.after
	}
	return now.Add(defaultRateLimitWait)
}

// goarm is the ARM version the agent was built for ("7" when unknown).
func goarm() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				return s.Value[:1] // "7" or "7,softfloat"
			}
		}
	}
	return "7"
}
