package ghr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/dewy-agent/dewy-agent/sources"
)

// apiError turns a failed request into the source's error: rate limits into
// *sources.RateLimitedError, 404 into sources.ErrNotFound, 401 into
// ErrBadCredentials. notFound says what a 404 means for this request.
func (g *GitHub) apiError(ctx context.Context, what, notFound string, resp *github.Response, err error) error {
	prefix := fmt.Sprintf("ghr %s/%s: %s", g.owner, g.repo, what)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	if rl := g.rateLimit(resp, err); rl != nil {
		g.rateLimited.Add(1)
		return fmt.Errorf("%s: %w", prefix, rl)
	}
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	switch status {
	case 0:
		return fmt.Errorf("%s: %w", prefix, stripQuery(err))
	case http.StatusNotFound:
		return fmt.Errorf("%s: %s (HTTP 404): %s: %w", prefix, notFound, g.accessHint(), sources.ErrNotFound)
	case http.StatusUnauthorized:
		return fmt.Errorf("%s: GitHub rejected the token from %s (HTTP 401); check that it is valid and not expired: %w", prefix, g.tokenName(), ErrBadCredentials)
	}
	msg := http.StatusText(status)
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Message != "" {
		msg = er.Message
	}
	if status == http.StatusForbidden {
		return fmt.Errorf("%s: forbidden (HTTP 403): %s; check that the token may read %s/%s (scopes, fine-grained permissions, organization SSO)", prefix, msg, g.owner, g.repo)
	}
	return fmt.Errorf("%s: HTTP %d: %s", prefix, status, msg)
}

// accessHint explains a 404: GitHub answers 404, not 403, for a private
// repository the caller may not read.
func (g *GitHub) accessHint() string {
	if g.token == "" && g.app == nil {
		return fmt.Sprintf("check that %s/%s exists at %s; a private repository needs a token in GITHUB_TOKEN or GH_TOKEN", g.owner, g.repo, g.apiURL.Redacted())
	}
	return fmt.Sprintf("check that %s/%s exists at %s and that the token in %s can read it (repo scope, or contents:read for a fine-grained token)", g.owner, g.repo, g.apiURL.Redacted(), g.tokenVar)
}

func (g *GitHub) tokenName() string {
	if g.tokenVar == "" {
		return "the environment (no GITHUB_TOKEN or GH_TOKEN is set)"
	}
	return g.tokenVar
}

// rateLimit recognises a rate-limit answer and says until when to wait,
// following GitHub's advice: Retry-After first, then X-RateLimit-Reset when
// X-RateLimit-Remaining is 0, else at least a minute. It also maps the errors
// go-github returns without a request when it remembers a limit (their
// responses are made up and have no headers). nil when err is no rate limit.
func (g *GitHub) rateLimit(resp *github.Response, err error) *sources.RateLimitedError {
	now := g.now()
	var hdr http.Header
	status := 0
	if resp != nil && resp.Response != nil {
		hdr, status = resp.Header, resp.StatusCode
	}
	var primary *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	isPrimary, isSecondary := errors.As(err, &primary), errors.As(err, &secondary)
	exhausted := hdr.Get("X-RateLimit-Remaining") == "0"
	retryAfter := hdr.Get("Retry-After")
	if !isPrimary && !isSecondary && status != http.StatusTooManyRequests &&
		!(status == http.StatusForbidden && (exhausted || retryAfter != "")) {
		return nil
	}

	if until, ok := sources.ParseRetryAfter(retryAfter, now); ok {
		return &sources.RateLimitedError{Until: until, Reason: fmt.Sprintf("GitHub answered HTTP %d with Retry-After: %s", status, retryAfter)}
	}
	if exhausted {
		if reset, err := strconv.ParseInt(hdr.Get("X-RateLimit-Reset"), 10, 64); err == nil && reset > 0 {
			return &sources.RateLimitedError{Until: notBefore(time.Unix(reset, 0), now), Reason: fmt.Sprintf("GitHub API rate limit exhausted (HTTP %d, limit %s per hour)%s", status, hdr.Get("X-RateLimit-Limit"), g.limitHint())}
		}
	}
	switch {
	case isPrimary && !primary.Rate.Reset.IsZero():
		return &sources.RateLimitedError{Until: notBefore(primary.Rate.Reset.Time, now), Reason: fmt.Sprintf("GitHub API rate limit of %d per hour still exhausted; no request sent%s", primary.Rate.Limit, g.limitHint())}
	case isSecondary && secondary.RetryAfter != nil:
		return &sources.RateLimitedError{Until: now.Add(max(*secondary.RetryAfter, 0)), Reason: "GitHub secondary rate limit"}
	}
	return &sources.RateLimitedError{Until: now.Add(defaultRateWait), Reason: fmt.Sprintf("GitHub rate limit (HTTP %d) without a retry time; waiting %s", status, defaultRateWait)}
}

func (g *GitHub) limitHint() string {
	if g.token == "" && g.app == nil {
		return "; set GITHUB_TOKEN to raise the limit"
	}
	return ""
}

func notBefore(t, now time.Time) time.Time {
	if t.Before(now) {
		return now
	}
	return t
}

// watchRate logs a warning when a successful answer shows the rate limit
// nearly used up, once per reset window.
func (g *GitHub) watchRate(resp *github.Response) {
	if resp == nil || resp.Response == nil || resp.Header.Get("X-RateLimit-Remaining") == "" {
		return
	}
	rate := resp.Rate
	if rate.Remaining >= lowRateRemaining {
		return
	}
	reset := rate.Reset.Time
	g.mu.Lock()
	warned := g.warnedReset.Equal(reset)
	g.warnedReset = reset
	g.mu.Unlock()
	if warned {
		return
	}
	attrs := []any{"remaining", rate.Remaining, "limit", rate.Limit, "reset", reset.UTC()}
	if g.token == "" && g.app == nil {
		attrs = append(attrs, "hint", "set GITHUB_TOKEN to raise the limit")
	}
	g.log.Warn("GitHub API rate limit nearly used up", attrs...)
}

// stripQuery removes the query from the URL of a transport error: a storage
// URL's query is a signature.
func stripQuery(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.RawQuery != "" {
			u.RawQuery = ""
			ue.URL = u.String()
		}
	}
	return err
}

// redact makes sure the token never shows in an error's text, whatever a
// server or proxy echoed into it.
func (g *GitHub) redact(err error) error {
	if err == nil || g.token == "" || !strings.Contains(err.Error(), g.token) {
		return err
	}
	return &redactedError{err: err, secret: g.token}
}

type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "[REDACTED]")
}

func (e *redactedError) Unwrap() error { return e.err }
