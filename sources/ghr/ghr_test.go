package ghr_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

const (
	owner = "acme"
	repo  = "app"
)

// fixedNow is the source's clock in these tests. go-github's own rate-limit
// memory uses the real clock, so resets are set relative to time.Now.
var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type setup struct {
	env    map[string]string
	logger *slog.Logger
	client *http.Client
}

// newSource returns a source for owner/repo on srv; env adds to (or, with an
// empty value, removes) GITHUB_API_URL=srv.URL().
func newSource(t *testing.T, srv *fakegithub.Server, s setup) *ghr.GitHub {
	t.Helper()
	return newSourceFor(t, srv, owner, repo, s)
}

func newSourceFor(t *testing.T, srv *fakegithub.Server, owner, repo string, s setup) *ghr.GitHub {
	t.Helper()
	env := map[string]string{}
	if srv != nil {
		env["GITHUB_API_URL"] = srv.URL()
	}
	for k, v := range s.env {
		env[k] = v
	}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	g, err := ghr.NewWithEnv(owner, repo, sources.Options{
		Logger:     s.logger,
		HTTPClient: s.client,
		Now:        func() time.Time { return fixedNow },
	}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("NewWithEnv: %v", err)
	}
	return g
}

// addReleases publishes v1.0.0 ... v1.(n-1).0, oldest first, each with one asset.
func addReleases(srv *fakegithub.Server, n int) {
	for i := range n {
		tag := fmt.Sprintf("v1.%d.0", i)
		srv.AddRelease(owner, repo, fakegithub.Release{
			Tag:       tag,
			Published: fixedNow.Add(time.Duration(i-n) * time.Hour),
			Assets:    map[string][]byte{"app_linux_amd64.tar.gz": []byte(tag)},
		})
	}
}

// mustReleases returns src's releases, failing the test when it fails.
func mustReleases(t *testing.T, src sources.Source) []version.Release {
	t.Helper()
	rels, err := src.Releases(t.Context())
	if err != nil {
		t.Fatalf("Releases: %v", err)
	}
	return rels
}

func tags(rels []version.Release) []string {
	out := make([]string, len(rels))
	for i, r := range rels {
		out[i] = r.Tag
	}
	return out
}

func TestReleases(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(srv *fakegithub.Server)
		wantTags     []string
		wantPre      []string // tags flagged PreRelease
		wantRequests int
	}{
		{
			name:         "empty repository",
			setup:        func(srv *fakegithub.Server) { srv.AddRepo(owner, repo) },
			wantTags:     []string{},
			wantRequests: 1,
		},
		{
			name: "drafts are left out, pre-release flags kept",
			setup: func(srv *fakegithub.Server) {
				srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.0.0"})
				srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.1.0", Draft: true})
				srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.2.0", Prerelease: true})
				srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.3.0", Draft: true, Prerelease: true})
			},
			wantTags:     []string{"v1.2.0", "v1.0.0"},
			wantPre:      []string{"v1.2.0"},
			wantRequests: 1,
		},
		{
			name:         "exactly one full page",
			setup:        func(srv *fakegithub.Server) { addReleases(srv, 100) },
			wantTags:     wantTags(100),
			wantRequests: 1,
		},
		{
			name:         "250 releases over 3 pages",
			setup:        func(srv *fakegithub.Server) { addReleases(srv, 250) },
			wantTags:     wantTags(250),
			wantRequests: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			tt.setup(srv)
			g := newSource(t, srv, setup{})
			rels := mustReleases(t, g)
			if got := tags(rels); !reflect.DeepEqual(got, tt.wantTags) {
				t.Errorf("tags = %v, want %v", got, tt.wantTags)
			}
			var pre []string
			for _, r := range rels {
				if r.PreRelease {
					pre = append(pre, r.Tag)
				}
			}
			if !reflect.DeepEqual(pre, tt.wantPre) {
				t.Errorf("pre-releases = %v, want %v", pre, tt.wantPre)
			}
			if got := srv.Stats(owner, repo).Requests; got != tt.wantRequests {
				t.Errorf("server saw %d requests, want %d", got, tt.wantRequests)
			}
			if got := g.Stats().Requests; got != int64(tt.wantRequests) {
				t.Errorf("Stats().Requests = %d, want %d", got, tt.wantRequests)
			}
			for _, r := range srv.Requests(owner, repo) {
				if !strings.Contains(r.RawQuery, "per_page=100") {
					t.Errorf("request %s?%s does not ask for 100 per page", r.Path, r.RawQuery)
				}
			}
		})
	}
}

// wantTags is addReleases' tags, newest first.
func wantTags(n int) []string {
	out := make([]string, 0, n)
	for i := n - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("v1.%d.0", i))
	}
	return out
}

func TestReleasesMapping(t *testing.T) {
	srv := fakegithub.New(t)
	published := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	const sums = "abc  app_linux_amd64.tar.gz\n"
	srv.AddRelease(owner, repo, fakegithub.Release{
		Tag:        "v2.0.0-rc.1",
		Prerelease: true,
		Published:  published,
		Assets: map[string][]byte{
			"app_linux_amd64.tar.gz": bytes.Repeat([]byte("x"), 1234),
			"checksums.txt":          []byte(sums),
		},
	})
	g := newSource(t, srv, setup{})
	rels := mustReleases(t, g)
	assetURL := func(name string) string {
		return srv.URL() + "/repos/acme/app/releases/assets/" + strconv.FormatInt(srv.AssetID(owner, repo, "v2.0.0-rc.1", name), 10)
	}
	want := []version.Release{{
		Tag:        "v2.0.0-rc.1",
		PreRelease: true,
		Created:    published,
		Assets: []version.Asset{
			{Name: "app_linux_amd64.tar.gz", Ref: assetURL("app_linux_amd64.tar.gz"), Size: 1234, Created: published},
			{Name: "checksums.txt", Ref: assetURL("checksums.txt"), Size: int64(len(sums)), Created: published},
		},
	}}
	if !reflect.DeepEqual(rels, want) {
		t.Errorf("Releases =\n%+v\nwant\n%+v", rels, want)
	}
}

func TestReleasesConditional(t *testing.T) {
	srv := fakegithub.New(t)
	addReleases(srv, 250)
	g := newSource(t, srv, setup{})

	type counts struct{ requests, notModified int }
	steps := []struct {
		name   string
		change func()
		check  func(t *testing.T, rels []version.Release)
		want   counts // this step's server traffic
	}{
		{
			name: "first poll fetches every page",
			want: counts{requests: 3},
		},
		{
			name: "second poll is all 304",
			want: counts{requests: 3, notModified: 3},
		},
		{
			name:   "a change on the last page is seen, the others are 304",
			change: func() { srv.SetPrerelease(owner, repo, "v1.0.0", true) },
			check: func(t *testing.T, rels []version.Release) {
				if last := rels[len(rels)-1]; last.Tag != "v1.0.0" || !last.PreRelease {
					t.Errorf("last release = %+v, want v1.0.0 flagged pre-release", last)
				}
			},
			want: counts{requests: 3, notModified: 2},
		},
		{
			name:   "an asset uploaded late to an old release is seen",
			change: func() { srv.AddAsset(owner, repo, "v1.120.0", "SHA256SUMS", []byte("sums")) },
			check: func(t *testing.T, rels []version.Release) {
				for _, r := range rels {
					if r.Tag == "v1.120.0" {
						if len(r.Assets) != 2 || r.Assets[0].Name != "SHA256SUMS" {
							t.Errorf("v1.120.0 assets = %+v, want SHA256SUMS added", r.Assets)
						}
						return
					}
				}
				t.Errorf("v1.120.0 missing")
			},
			want: counts{requests: 3, notModified: 2},
		},
		{
			name:   "a new release shifts every page",
			change: func() { srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v2.0.0"}) },
			check: func(t *testing.T, rels []version.Release) {
				if len(rels) != 251 || rels[0].Tag != "v2.0.0" {
					t.Errorf("got %d releases starting %q, want 251 starting v2.0.0", len(rels), rels[0].Tag)
				}
			},
			want: counts{requests: 3},
		},
		{
			name: "then all 304 again",
			want: counts{requests: 3, notModified: 3},
		},
	}
	var prev []version.Release
	var before fakegithub.Stats
	for _, st := range steps {
		if st.change != nil {
			st.change()
		}
		rels, err := g.Releases(t.Context())
		if err != nil {
			t.Fatalf("%s: Releases: %v", st.name, err)
		}
		after := srv.Stats(owner, repo)
		got := counts{after.Requests - before.Requests, after.NotModified - before.NotModified}
		if got != st.want {
			t.Errorf("%s: server traffic %+v, want %+v", st.name, got, st.want)
		}
		if st.change == nil && prev != nil && !reflect.DeepEqual(rels, prev) {
			t.Errorf("%s: releases changed without a change on the server", st.name)
		}
		if st.check != nil {
			st.check(t, rels)
		}
		prev, before = rels, after
	}
	if got, want := g.Stats(), (ghr.Stats{Requests: 18, NotModified: 10}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	for _, r := range srv.Requests(owner, repo)[3:6] {
		if r.Header.Get("If-None-Match") == "" {
			t.Errorf("second poll request %s?%s sent no If-None-Match", r.Path, r.RawQuery)
		}
	}
}

func TestReleasesResultIsACopy(t *testing.T) {
	srv := fakegithub.New(t)
	addReleases(srv, 3)
	g := newSource(t, srv, setup{})
	first := mustReleases(t, g)
	first[0].Tag = "edited"
	first[1].Assets[0].Name = "edited"
	second := mustReleases(t, g)
	if second[0].Tag != "v1.2.0" || second[1].Assets[0].Name != "app_linux_amd64.tar.gz" {
		t.Errorf("editing a result changed the cache: %+v", second[:2])
	}
}

func TestState(t *testing.T) {
	srv := fakegithub.New(t)
	addReleases(srv, 250)
	first := newSource(t, srv, setup{})
	want := mustReleases(t, first)
	saved, err := first.SaveState()
	if err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	for _, field := range []string{"browser_download_url", "node_id", "draft", "upload_url"} {
		if bytes.Contains(saved, []byte(field)) {
			t.Errorf("saved state holds GitHub's %q; want only version.Release's fields", field)
		}
	}

	// An agent restart: a fresh source with the saved state.
	second := newSource(t, srv, setup{})
	if err := second.LoadState(saved); err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	before := srv.Stats(owner, repo)
	got, err := second.Releases(t.Context())
	if err != nil {
		t.Fatalf("Releases after LoadState: %v", err)
	}
	if after := srv.Stats(owner, repo); after.NotModified-before.NotModified != 3 || after.Requests-before.Requests != 3 {
		t.Errorf("first poll after LoadState: %d requests, %d 304s; want 3 and 3",
			after.Requests-before.Requests, after.NotModified-before.NotModified)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("releases from the loaded state differ from the saved ones")
	}
}

func TestLoadState(t *testing.T) {
	srv := fakegithub.New(t)
	addReleases(srv, 150)
	srv.AddRelease("acme", "other", fakegithub.Release{Tag: "v9.0.0"})
	savedOf := func(t *testing.T, owner, repo string) []byte {
		g := newSourceFor(t, srv, owner, repo, setup{})
		if _, err := g.Releases(t.Context()); err != nil {
			t.Fatalf("Releases: %v", err)
		}
		b, err := g.SaveState()
		if err != nil {
			t.Fatalf("SaveState: %v", err)
		}
		return b
	}
	tests := []struct {
		name            string
		state           func(t *testing.T) []byte
		wantErr         string
		wantNotModified int // on the first poll after LoadState
	}{
		{name: "nil is no state", state: func(*testing.T) []byte { return nil }},
		{
			name: "state saved before any poll",
			state: func(t *testing.T) []byte {
				b, err := newSource(t, srv, setup{}).SaveState()
				if err != nil {
					t.Fatalf("SaveState: %v", err)
				}
				return b
			},
		},
		{name: "this repository's state", state: func(t *testing.T) []byte { return savedOf(t, owner, repo) }, wantNotModified: 2},
		{name: "another repository's state is ignored", state: func(t *testing.T) []byte { return savedOf(t, "acme", "other") }},
		{name: "not JSON", state: func(*testing.T) []byte { return []byte("{") }, wantErr: "load state"},
		{name: "unknown version", state: func(*testing.T) []byte { return []byte(`{"version":7}`) }, wantErr: "unsupported version 7"},
		{
			name: "pages that are not one listing",
			state: func(*testing.T) []byte {
				return []byte(`{"version":1,"api":"` + srv.URL() + `/","repo":"acme/app","pages":[{"page":1,"etag":"x","next":3},{"page":2}]}`)
			},
			wantErr: "does not belong to one listing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newSource(t, srv, setup{})
			err := g.LoadState(tt.state(t))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadState error = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("LoadState: %v", err)
			}
			rels := mustReleases(t, g)
			if len(rels) != 150 {
				t.Errorf("got %d releases, want 150", len(rels))
			}
			if got := g.Stats().NotModified; got != int64(tt.wantNotModified) {
				t.Errorf("first poll had %d 304s, want %d", got, tt.wantNotModified)
			}
		})
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantAuth string // "" means no Authorization header
		wantErr  error
	}{
		{name: "GITHUB_TOKEN", env: map[string]string{"GITHUB_TOKEN": "secret-a"}, wantAuth: "Bearer secret-a"},
		{name: "GH_TOKEN", env: map[string]string{"GH_TOKEN": "secret-a"}, wantAuth: "Bearer secret-a"},
		{name: "GITHUB_TOKEN wins over GH_TOKEN", env: map[string]string{"GITHUB_TOKEN": "secret-a", "GH_TOKEN": "secret-b"}, wantAuth: "Bearer secret-a"},
		{name: "no token on a private repository", env: map[string]string{}, wantErr: sources.ErrNotFound},
		{name: "wrong token", env: map[string]string{"GH_TOKEN": "secret-b"}, wantAuth: "Bearer secret-b", wantErr: ghr.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			srv.RequireToken("secret-a")
			addReleases(srv, 1)
			g := newSource(t, srv, setup{env: tt.env})
			_, err := g.Releases(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Releases error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret-") {
				t.Errorf("error shows the token: %v", err)
			}
			reqs := srv.Requests(owner, repo)
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			if got := reqs[0].Header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
		})
	}
}

func TestTokenFromProcessEnvironment(t *testing.T) {
	srv := fakegithub.New(t)
	srv.RequireToken("secret-env")
	addReleases(srv, 2)
	srv.SetEnv(t, "secret-env")
	g, err := ghr.New(owner, repo, sources.Options{Logger: slog.New(slog.DiscardHandler), HTTPClient: &http.Client{}, Now: time.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rels := mustReleases(t, g)
	if len(rels) != 2 {
		t.Errorf("got %d releases, want 2", len(rels))
	}
}

// recorder is an http.RoundTripper standing in for the network, for the cases
// that would reach hosts tests cannot (api.github.com): it records the request
// and fails it.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return nil, errors.New("no network in tests")
}

func TestAPIURL(t *testing.T) {
	tests := []struct {
		name    string
		apiURL  string
		wantURL string
	}{
		{name: "default", apiURL: "", wantURL: "https://api.github.com/repos/acme/app/releases?per_page=100&page=1"},
		{name: "enterprise without trailing slash", apiURL: "https://ghe.example.com/api/v3", wantURL: "https://ghe.example.com/api/v3/repos/acme/app/releases?per_page=100&page=1"},
		{name: "enterprise with trailing slash", apiURL: "https://ghe.example.com/api/v3/", wantURL: "https://ghe.example.com/api/v3/repos/acme/app/releases?per_page=100&page=1"},
		{name: "root of a test server", apiURL: "http://127.0.0.1:1234", wantURL: "http://127.0.0.1:1234/repos/acme/app/releases?per_page=100&page=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			g := newSourceFor(t, nil, owner, repo, setup{
				env:    map[string]string{"GITHUB_API_URL": tt.apiURL, "GITHUB_TOKEN": "secret-x"},
				client: &http.Client{Transport: rec},
			})
			if _, err := g.Releases(t.Context()); err == nil {
				t.Fatal("Releases succeeded without a network")
			}
			if len(rec.reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(rec.reqs))
			}
			req := rec.reqs[0]
			if got := req.URL.String(); got != tt.wantURL {
				t.Errorf("URL = %s, want %s", got, tt.wantURL)
			}
			if got := req.Header.Get("Authorization"); got != "Bearer secret-x" {
				t.Errorf("Authorization = %q, want the token", got)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name, owner, repo, apiURL, wantErr string
	}{
		{name: "empty owner", owner: "", repo: "app", wantErr: "owner is empty"},
		{name: "slash in repository", owner: "acme", repo: "app/x", wantErr: "repository"},
		{name: "dot-dot repository", owner: "acme", repo: "..", wantErr: "repository"},
		{name: "API URL not http", owner: "acme", repo: "app", apiURL: "ftp://ghe.example.com", wantErr: "GITHUB_API_URL"},
		{name: "API URL without host", owner: "acme", repo: "app", apiURL: "/api/v3", wantErr: "GITHUB_API_URL"},
		{name: "API URL with a password", owner: "acme", repo: "app", apiURL: "https://u:hunter2@ghe.example.com/api/v3", wantErr: "without user info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"GITHUB_API_URL": tt.apiURL}
			_, err := ghr.NewWithEnv(tt.owner, tt.repo, sources.Options{}, func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	secondaryDoc := "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	tests := []struct {
		name      string
		failure   fakegithub.Failure
		wantUntil time.Time
		// slack allows for go-github computing a refused request's wait with
		// the real clock.
		slack time.Duration
		// secondSent says whether the next poll reaches the server, or
		// go-github refuses it itself, remembering the limit.
		secondSent bool
	}{
		{
			name: "403 with X-RateLimit-Remaining 0 waits for X-RateLimit-Reset",
			failure: fakegithub.Failure{Status: 403, Message: "API rate limit exceeded for user ID 1.", Header: http.Header{
				"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)},
			}},
			wantUntil: reset,
		},
		{
			name: "429 with X-RateLimit-Remaining 0",
			failure: fakegithub.Failure{Status: 429, Message: "API rate limit exceeded", Header: http.Header{
				"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)},
			}},
			wantUntil: reset,
		},
		{
			name:       "429 with Retry-After seconds",
			failure:    fakegithub.Failure{Status: 429, Message: "Too Many Requests", Header: http.Header{"Retry-After": {"120"}}},
			wantUntil:  fixedNow.Add(120 * time.Second),
			secondSent: true,
		},
		{
			name:       "429 with Retry-After date",
			failure:    fakegithub.Failure{Status: 429, Header: http.Header{"Retry-After": {fixedNow.Add(5 * time.Minute).Format(http.TimeFormat)}}},
			wantUntil:  fixedNow.Add(5 * time.Minute),
			secondSent: true,
		},
		{
			name:       "429 without a retry time waits a minute",
			failure:    fakegithub.Failure{Status: 429, Message: "Too Many Requests"},
			wantUntil:  fixedNow.Add(time.Minute),
			secondSent: true,
		},
		{
			name: "403 secondary rate limit with Retry-After",
			failure: fakegithub.Failure{Status: 403, Message: "You have exceeded a secondary rate limit.", DocumentationURL: secondaryDoc,
				Header: http.Header{"Retry-After": {"30"}}},
			wantUntil: fixedNow.Add(30 * time.Second),
			slack:     5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			addReleases(srv, 1)
			srv.Fail(owner, repo, tt.failure)
			g := newSource(t, srv, setup{env: map[string]string{"GITHUB_TOKEN": "secret-r"}})

			for i, wantSent := range []bool{true, tt.secondSent} {
				before := srv.Stats(owner, repo).Requests
				_, err := g.Releases(t.Context())
				var rl *sources.RateLimitedError
				if !errors.As(err, &rl) {
					t.Fatalf("poll %d: error = %v, want a *sources.RateLimitedError", i+1, err)
				}
				slack := time.Duration(0)
				if i > 0 {
					slack = tt.slack
				}
				if d := rl.Until.Sub(tt.wantUntil); d < -slack || d > slack {
					t.Errorf("poll %d: Until = %v, want %v", i+1, rl.Until, tt.wantUntil)
				}
				if !strings.HasPrefix(err.Error(), "ghr acme/app: list releases") {
					t.Errorf("poll %d: error %q lacks context", i+1, err)
				}
				if sent := srv.Stats(owner, repo).Requests > before; sent != wantSent {
					t.Errorf("poll %d: request sent = %v, want %v", i+1, sent, wantSent)
				}
			}
			if got := g.Stats().RateLimited; got != 2 {
				t.Errorf("Stats().RateLimited = %d, want 2", got)
			}
		})
	}
}

func TestLowRateWarning(t *testing.T) {
	srv := fakegithub.New(t)
	addReleases(srv, 1)
	var logs testkit.LogBuffer
	g := newSource(t, srv, setup{
		env:    map[string]string{"GITHUB_TOKEN": "secret-w"},
		logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	warnings := func() int { return strings.Count(logs.String(), "rate limit nearly used up") }
	reset := time.Now().Add(30 * time.Minute).Truncate(time.Second)

	steps := []struct {
		name         string
		remaining    int
		reset        time.Time
		wantWarnings int // in total
	}{
		{name: "plenty left", remaining: 4000, reset: reset, wantWarnings: 0},
		{name: "nearly used up", remaining: 9, reset: reset, wantWarnings: 1},
		{name: "same window, fewer left (304)", remaining: 3, reset: reset, wantWarnings: 1},
		{name: "next window, low again", remaining: 2, reset: reset.Add(time.Hour), wantWarnings: 2},
	}
	for _, st := range steps {
		srv.SetRateLimit(5000, st.remaining, st.reset)
		if _, err := g.Releases(t.Context()); err != nil {
			t.Fatalf("%s: Releases: %v", st.name, err)
		}
		if got := warnings(); got != st.wantWarnings {
			t.Errorf("%s: %d warnings, want %d; logs:\n%s", st.name, got, st.wantWarnings, logs.String())
		}
	}
	if strings.Contains(logs.String(), "secret-w") {
		t.Errorf("logs show the token:\n%s", logs.String())
	}
}

func TestReleasesErrors(t *testing.T) {
	const token = "secret-token-1234567890"
	tests := []struct {
		name     string
		setup    func(srv *fakegithub.Server)
		wantIs   error
		wantText []string
	}{
		{
			name:     "404 on the repository",
			setup:    func(*fakegithub.Server) {},
			wantIs:   sources.ErrNotFound,
			wantText: []string{"acme/app", "GITHUB_TOKEN", "404"},
		},
		{
			name:     "401 bad credentials",
			setup:    func(srv *fakegithub.Server) { srv.RequireToken("another-token") },
			wantIs:   ghr.ErrBadCredentials,
			wantText: []string{"bad credentials", "GITHUB_TOKEN", "401"},
		},
		{
			name: "500 whose body echoes the token",
			setup: func(srv *fakegithub.Server) {
				srv.Fail(owner, repo, fakegithub.Failure{Status: 500, Message: "proxy error, request had Authorization: Bearer " + token})
			},
			wantText: []string{"HTTP 500", "[REDACTED]"},
		},
		{
			name: "403 without a rate limit",
			setup: func(srv *fakegithub.Server) {
				srv.Fail(owner, repo, fakegithub.Failure{Status: 403, Message: "Resource protected by organization SAML enforcement."})
			},
			wantText: []string{"forbidden", "SAML"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			srv.AddRepo(owner, "unrelated")
			tt.setup(srv)
			g := newSource(t, srv, setup{env: map[string]string{"GITHUB_TOKEN": token}})
			_, err := g.Releases(t.Context())
			if err == nil {
				t.Fatal("Releases succeeded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if strings.Contains(err.Error(), token) || strings.Contains(fmt.Sprintf("%+v", err), token) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	srv := fakegithub.New(t)
	addReleases(srv, 1)
	g := newSource(t, srv, setup{})
	rels := mustReleases(t, g)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.Releases(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Releases error = %v, want context.Canceled", err)
	}
	if _, err := g.Open(ctx, rels[0], rels[0].Assets[0]); !errors.Is(err, context.Canceled) {
		t.Errorf("Open error = %v, want context.Canceled", err)
	}
}

func TestOpen(t *testing.T) {
	const token = "secret-dl"
	content := make([]byte, 512<<10)
	_, _ = rand.Read(content)
	srv := fakegithub.New(t)
	srv.RequireToken(token)
	srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.0.0", Assets: map[string][]byte{"app_linux_amd64.tar.gz": content}})
	g := newSource(t, srv, setup{env: map[string]string{"GITHUB_TOKEN": token}})
	rels := mustReleases(t, g)
	rel, asset := rels[0], rels[0].Assets[0]

	// The storage server sends half the asset and waits: Open and a read of
	// that half must complete, which a source that buffers cannot do.
	resume := srv.PauseDownloads()
	type opened struct {
		rc   io.ReadCloser
		head []byte
		err  error
	}
	done := make(chan opened, 1)
	go func() {
		rc, err := g.Open(t.Context(), rel, asset)
		if err != nil {
			done <- opened{err: err}
			return
		}
		head := make([]byte, len(content)/2)
		_, err = io.ReadFull(rc, head)
		done <- opened{rc: rc, head: head, err: err}
	}()
	var o opened
	select {
	case o = <-done:
	case <-time.After(10 * time.Second):
		resume()
		t.Fatal("Open did not return the first half while the download was paused: the body is not streamed")
	}
	if o.err != nil {
		t.Fatalf("Open: %v", o.err)
	}
	resume()
	tail, err := io.ReadAll(o.rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := o.rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !bytes.Equal(append(o.head, tail...), content) {
		t.Errorf("downloaded %d bytes that differ from the asset's %d", len(o.head)+len(tail), len(content))
	}

	reqs := srv.Requests(owner, repo)
	last := reqs[len(reqs)-1]
	wantPath := "/repos/acme/app/releases/assets/" + strconv.FormatInt(srv.AssetID(owner, repo, "v1.0.0", "app_linux_amd64.tar.gz"), 10)
	if last.Path != wantPath || last.Status != http.StatusFound {
		t.Errorf("last API request %s answered %d, want %s answered 302", last.Path, last.Status, wantPath)
	}
	if got := last.Header.Get("Accept"); got != "application/octet-stream" {
		t.Errorf("Accept = %q, want application/octet-stream", got)
	}
	if got := last.Header.Get("Authorization"); got != "Bearer "+token {
		t.Errorf("Authorization to the API = %q, want the token", got)
	}
	// The storage server fails the test itself if it sees Authorization.
	if got := srv.Stats(owner, repo).Downloads; got != 1 {
		t.Errorf("storage served %d downloads, want 1", got)
	}
}

func TestOpenErrors(t *testing.T) {
	const token = "secret-open-errors"
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	tests := []struct {
		name     string
		setup    func(srv *fakegithub.Server)
		asset    func(version.Asset) version.Asset
		wantIs   error
		wantRate bool // a *sources.RateLimitedError until reset
		wantText string
	}{
		{
			name:     "deleted asset",
			setup:    func(srv *fakegithub.Server) { srv.RemoveRelease(owner, repo, "v1.0.0") },
			wantIs:   sources.ErrNotFound,
			wantText: "asset not found",
		},
		{
			name:     "ref that is no URL",
			asset:    func(a version.Asset) version.Asset { a.Ref = "12345"; return a },
			wantText: "not an API URL",
		},
		{
			name: "server error",
			setup: func(srv *fakegithub.Server) {
				srv.Fail(owner, repo, fakegithub.Failure{Status: 502, Message: "Bad Gateway " + token})
			},
			wantText: "HTTP 502",
		},
		{
			name: "rate limited",
			setup: func(srv *fakegithub.Server) {
				srv.Fail(owner, repo, fakegithub.Failure{Status: 403, Header: http.Header{
					"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)},
				}})
			},
			wantRate: true,
			wantText: "rate limited until",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.0.0", Assets: map[string][]byte{"a.tar.gz": []byte("a")}})
			g := newSource(t, srv, setup{env: map[string]string{"GITHUB_TOKEN": token}})
			rels := mustReleases(t, g)
			asset := rels[0].Assets[0]
			if tt.setup != nil {
				tt.setup(srv)
			}
			if tt.asset != nil {
				asset = tt.asset(asset)
			}
			rc, err := g.Open(t.Context(), rels[0], asset)
			if err == nil {
				rc.Close()
				t.Fatal("Open succeeded")
			}
			var rl *sources.RateLimitedError
			if isRate := errors.As(err, &rl); isRate != tt.wantRate || (isRate && !rl.Until.Equal(reset)) {
				t.Errorf("error %v: rate limited = %v, want %v until %v", err, isRate, tt.wantRate, reset)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), "ghr acme/app: download a.tar.gz of v1.0.0") {
				t.Errorf("error %q does not say %q with context", err, tt.wantText)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

func TestSaveStateIsJSON(t *testing.T) {
	srv := fakegithub.New(t)
	addReleases(srv, 2)
	g := newSource(t, srv, setup{})
	if _, err := g.Releases(t.Context()); err != nil {
		t.Fatalf("Releases: %v", err)
	}
	b, err := g.SaveState()
	if err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("state is not JSON: %v\n%s", err, b)
	}
	if v["repo"] != "acme/app" {
		t.Errorf("state repo = %v, want acme/app", v["repo"])
	}
}
