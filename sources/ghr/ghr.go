// Package ghr is the GitHub Releases source (scheme "ghr"). Its words:
//
//   - Repository: owner/repo on github.com or on a GitHub Enterprise Server.
//   - Page: one page of the repository's releases list (up to 100 releases),
//     with the ETag GitHub sent for it.
//   - Cache: the pages of the last complete listing, already mapped to
//     version.Release. A "304 Not Modified" page is taken from the cache; the
//     cache is what SaveState persists, so polls after an agent restart are
//     still answered 304.
//
// Environment: the token is GITHUB_TOKEN, else GH_TOKEN. GITHUB_API_URL (or
// Dewy's name for it, GITHUB_ENDPOINT, when GITHUB_API_URL is unset) is the
// API root for GitHub Enterprise ("https://ghe.example.com/api/v3") and tests;
// it is used as given (nothing is appended but a trailing slash). The token is
// sent only to the API's scheme, host and port, so a redirect to the storage
// host (asset downloads) never carries it; it never appears in errors or logs.
//
// Conditional polling: every poll walks all pages, page 1 first, sending each
// cached page's ETag in If-None-Match. A 304 page is reused from the cache and
// its successor is the cached one (a 304 has no Link header to follow). A
// page that changed is decoded again and the walk follows its Link header.
// When page 1 is 304 the later pages are still re-validated, because an old
// release can change (an asset uploaded late, a flag edited) without page 1
// changing; with a token, 304 answers do not count against GitHub's rate limit.
// The cache is replaced only when a walk completes.
package ghr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

const (
	// DefaultAPIURL is the API root used when GITHUB_API_URL is not set.
	DefaultAPIURL = "https://api.github.com/"

	perPage = 100
	// maxPages bounds a walk (100 000 releases) against a server that never
	// stops answering with a next page.
	maxPages = 1000
	// lowRateRemaining is the X-RateLimit-Remaining below which a warning is
	// logged, once per reset window.
	lowRateRemaining = 10
	// defaultRateWait is GitHub's advice when a rate-limit answer says nothing
	// about when to retry: wait at least a minute.
	defaultRateWait = time.Minute
	userAgent       = "dewy-agent"
)

// ErrBadCredentials is wrapped by errors for an HTTP 401: GitHub rejected the token.
var ErrBadCredentials = errors.New("bad credentials")

// Stats are the source's counters, for tests and metrics.
type Stats struct {
	// Requests is the number of HTTP requests sent to the API host (list pages
	// and asset downloads; not the storage host a download is redirected to,
	// and not requests go-github refused itself because of a known rate limit).
	Requests int64
	// NotModified is the number of list pages answered 304 Not Modified.
	NotModified int64
	// RateLimited is the number of calls that returned a *sources.RateLimitedError.
	RateLimited int64
}

// GitHub is the source for one GitHub repository's releases.
type GitHub struct {
	owner, repo string
	client      *github.Client
	apiURL      *url.URL
	token       string
	tokenVar    string      // the environment variable the token came from; "" when none
	app         tokenSource // GitHub App installation tokens (app.go); nil when not an app
	log         *slog.Logger
	now         func() time.Time

	requests, notModified, rateLimited atomic.Int64

	mu          sync.Mutex
	pages       []page    // the cache: the last complete walk
	warnedReset time.Time // the rate-limit window already warned about
}

// page is one cached page of the releases list.
type page struct {
	Number int    `json:"page"`
	ETag   string `json:"etag,omitempty"`
	// Next is the next page's number; 0 on the last page.
	Next     int               `json:"next,omitempty"`
	Releases []version.Release `json:"releases,omitempty"`
}

// New returns the source for owner/repo, configured from the process
// environment (GITHUB_TOKEN, GH_TOKEN, GITHUB_API_URL). It does no I/O.
func New(owner, repo string, opts sources.Options) (*GitHub, error) {
	return NewWithEnv(owner, repo, opts, os.Getenv)
}

// NewWithEnv is New with the environment read through getenv instead of the
// process environment. It does no I/O.
func NewWithEnv(owner, repo string, opts sources.Options, getenv func(string) string) (*GitHub, error) {
	if err := checkName("owner", owner); err != nil {
		return nil, fmt.Errorf("ghr %s/%s: %w", owner, repo, err)
	}
	if err := checkName("repository", repo); err != nil {
		return nil, fmt.Errorf("ghr %s/%s: %w", owner, repo, err)
	}
	apiVar := "GITHUB_API_URL"
	if getenv(apiVar) == "" && getenv("GITHUB_ENDPOINT") != "" {
		apiVar = "GITHUB_ENDPOINT" // Dewy's name for it
	}
	apiURL, err := parseAPIURL(apiVar, getenv(apiVar))
	if err != nil {
		return nil, fmt.Errorf("ghr %s/%s: %w", owner, repo, err)
	}
	g := &GitHub{owner: owner, repo: repo, apiURL: apiURL, log: opts.Logger, now: opts.Now}
	for _, name := range []string{"GITHUB_TOKEN", "GH_TOKEN"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			g.token, g.tokenVar = v, name
			break
		}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}

	hc := http.Client{}
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if g.app, err = appTokens(getenv, base, apiURL.String()); err != nil {
		return nil, fmt.Errorf("ghr %s/%s: %w", owner, repo, err)
	}
	if g.app != nil {
		// The app's installation tokens win over a personal token.
		g.token, g.tokenVar = "", envAppID+" (GitHub App installation token)"
	}
	hc.Transport = &apiTransport{base: base, origin: origin(apiURL), token: g.token, app: g.app, sent: &g.requests}
	g.client = github.NewClient(&hc)
	g.client.BaseURL = apiURL
	g.client.UserAgent = userAgent
	return g, nil
}

// checkName accepts a GitHub owner or repository name: one path element.
func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", what)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q is not a name", what, name)
	case strings.ContainsAny(name, "/\\?#%@: \t\r\n"):
		return fmt.Errorf("%s %q contains a character GitHub names do not have", what, name)
	}
	return nil
}

// parseAPIURL returns the API root with a trailing slash; name is the
// variable it came from, for messages.
func parseAPIURL(name, raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		raw = DefaultAPIURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", name, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want an http or https URL such as https://ghe.example.com/api/v3", name, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s %q: want a URL without user info, query or fragment; put the token in GITHUB_TOKEN", name, u.Redacted())
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	return u, nil
}

// Stats returns the counters. Safe to call from any goroutine.
func (g *GitHub) Stats() Stats {
	return Stats{
		Requests:    g.requests.Load(),
		NotModified: g.notModified.Load(),
		RateLimited: g.rateLimited.Load(),
	}
}

// Releases lists every published release; drafts are left out. Pages answered
// 304 come from the cache (see the package doc).
func (g *GitHub) Releases(ctx context.Context) ([]version.Release, error) {
	g.mu.Lock()
	cached := make(map[int]*page, len(g.pages))
	for i := range g.pages {
		cached[g.pages[i].Number] = &g.pages[i]
	}
	g.mu.Unlock()

	var walk []page
	notModified := g.notModified.Load()
	for n := 1; n != 0; {
		if n > maxPages {
			return nil, fmt.Errorf("ghr %s/%s: list releases: more than %d pages; giving up", g.owner, g.repo, maxPages)
		}
		p, err := g.fetchPage(ctx, n, cached[n])
		if err != nil {
			return nil, g.redact(err)
		}
		if p.Next <= n {
			p.Next = 0 // a next page must move forward
		}
		walk = append(walk, p)
		n = p.Next
	}

	g.mu.Lock()
	g.pages = walk
	g.mu.Unlock()
	rels := flatten(walk)
	g.log.Debug("listed releases", "releases", len(rels), "pages", len(walk), "not_modified", g.notModified.Load()-notModified)
	return rels, nil
}

// fetchPage fetches page n, conditionally when it is cached.
func (g *GitHub) fetchPage(ctx context.Context, n int, cached *page) (page, error) {
	what := fmt.Sprintf("list releases (page %d)", n)
	u := fmt.Sprintf("repos/%s/%s/releases?per_page=%d&page=%d", url.PathEscape(g.owner), url.PathEscape(g.repo), perPage, n)
	req, err := g.client.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return page{}, fmt.Errorf("ghr %s/%s: %s: %w", g.owner, g.repo, what, err)
	}
	if cached != nil && cached.ETag != "" {
		req.Header.Set("If-None-Match", cached.ETag)
	}
	var rels []*github.RepositoryRelease
	resp, err := g.client.Do(ctx, req, &rels)
	// A 304 comes back as an *ErrorResponse together with the response: look
	// at the status before treating err as a failure.
	if resp != nil && resp.Response != nil && resp.StatusCode == http.StatusNotModified {
		if cached == nil {
			return page{}, fmt.Errorf("ghr %s/%s: %s: 304 Not Modified to an unconditional request", g.owner, g.repo, what)
		}
		g.notModified.Add(1)
		g.watchRate(resp)
		return *cached, nil
	}
	if err != nil {
		return page{}, g.apiError(ctx, what, "repository not found", resp, err)
	}
	g.watchRate(resp)
	p := page{Number: n, ETag: resp.Header.Get("ETag"), Next: resp.NextPage}
	for _, r := range rels {
		if r == nil || r.GetDraft() {
			continue
		}
		p.Releases = append(p.Releases, mapRelease(r))
	}
	return p, nil
}

// mapRelease keeps what version.Release has.
func mapRelease(r *github.RepositoryRelease) version.Release {
	created := r.GetPublishedAt().Time
	if created.IsZero() {
		created = r.GetCreatedAt().Time
	}
	rel := version.Release{Tag: r.GetTagName(), PreRelease: r.GetPrerelease(), Created: created.UTC()}
	for _, a := range r.Assets {
		if a == nil {
			continue
		}
		size := int64(-1)
		if a.Size != nil {
			size = int64(*a.Size)
		}
		rel.Assets = append(rel.Assets, version.Asset{
			Name:    a.GetName(),
			Ref:     a.GetURL(),
			Size:    size,
			Created: a.GetCreatedAt().Time.UTC(),
		})
	}
	return rel
}

// flatten joins the pages into one list. A release that moved to the next
// page while the walk was under way is listed once.
func flatten(pages []page) []version.Release {
	n := 0
	for _, p := range pages {
		n += len(p.Releases)
	}
	out := make([]version.Release, 0, n)
	seen := make(map[string]bool, n)
	for _, p := range pages {
		for _, r := range p.Releases {
			if seen[r.Tag] {
				continue
			}
			seen[r.Tag] = true
			r.Assets = slices.Clone(r.Assets) // callers may not edit the cache
			out = append(out, r)
		}
	}
	return out
}

// Open streams an asset: a GET of its API URL with "Accept:
// application/octet-stream", following GitHub's redirect to the storage host
// (which gets no Authorization header). The caller closes the reader.
func (g *GitHub) Open(ctx context.Context, rel version.Release, asset version.Asset) (io.ReadCloser, error) {
	what := fmt.Sprintf("download %s of %s", asset.Name, rel.Tag)
	u, err := url.Parse(asset.Ref)
	if err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("ghr %s/%s: %s: asset ref %q is not an API URL", g.owner, g.repo, what, asset.Ref)
	}
	req, err := g.client.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("ghr %s/%s: %s: %w", g.owner, g.repo, what, err)
	}
	req.Header.Set("Accept", "application/octet-stream")
	resp, err := g.client.BareDo(ctx, req)
	if err != nil {
		return nil, g.redact(g.apiError(ctx, what, "asset not found (deleted, or not readable with this token)", resp, err))
	}
	return resp.Body, nil
}

// apiTransport counts the requests sent to the API origin and adds the token
// to them, and only to them: a redirect to another host or port (the storage
// host of asset downloads) goes out without it. (go-github's WithAuthToken
// sets the header on every request, redirects included, and Go's redirect rule
// compares host names without ports.)
type apiTransport struct {
	base   http.RoundTripper
	origin string
	token  string
	app    tokenSource // when set, each request asks it for the token
	sent   *atomic.Int64
}

// RoundTrip implements http.RoundTripper.
func (t *apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if origin(req.URL) == t.origin {
		t.sent.Add(1)
		if t.app != nil {
			tok, err := t.app.Token(req.Context())
			if err != nil {
				return nil, fmt.Errorf("GitHub App installation token: %w", err)
			}
			req = req.Clone(req.Context())
			req.Header.Set("Authorization", "Bearer "+tok)
		} else if t.token != "" {
			req = req.Clone(req.Context())
			req.Header.Set("Authorization", "Bearer "+t.token)
		}
	}
	return t.base.RoundTrip(req)
}

// origin is scheme://host:port with the default port made explicit.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

var (
	_ sources.Source   = (*GitHub)(nil)
	_ sources.Stateful = (*GitHub)(nil)
)
