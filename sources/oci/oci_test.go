package oci_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dewy-agent/dewy-agent/internal/testimage"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// fixedNow is the source's clock in these tests.
var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// counter counts the requests a source sends.
type counter struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// fake is a registry on 127.0.0.1: go-containerregistry's, behind middleware that
// pages the tag list with Link headers as Docker Distribution does, and optionally
// requires basic auth or answers 429.
type fake struct {
	host     string
	pageSize int    // most tags a page holds, whatever the client asks
	user     string // basic auth required when set
	pass     string
	limited  atomic.Bool  // answer 429 with Retry-After: 120
	limits   atomic.Int64 // 429s sent
	tagPages atomic.Int64 // tag list pages served
}

func newFake(t *testing.T, opts ...registry.Option) *fake {
	t.Helper()
	inner := registry.New(append([]registry.Option{registry.Logger(log.New(io.Discard, "", 0))}, opts...)...)
	f := &fake{pageSize: 1000}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != f.user || p != f.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		if f.limited.Load() && r.URL.Path != "/v2/" {
			f.limits.Add(1)
			w.Header().Set("Retry-After", "120")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/tags/list") && r.Method == http.MethodGet {
			f.tagPages.Add(1)
			f.page(w, r, inner)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

// page serves one page of the tag list: tags after ?last=, at most ?n= (or
// pageSize), and a Link header to the next page when more remain.
func (f *fake) page(w http.ResponseWriter, r *http.Request, inner http.Handler) {
	q := r.URL.Query()
	full := r.Clone(r.Context())
	full.URL.RawQuery = ""
	rec := httptest.NewRecorder()
	inner.ServeHTTP(rec, full)
	if rec.Code != http.StatusOK {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n := f.pageSize // the registry's cap, like Docker Hub's 100
	if s := q.Get("n"); s != "" {
		if asked, _ := strconv.Atoi(s); asked > 0 && asked < n {
			n = asked
		}
	}
	var tags []string
	for _, t := range list.Tags {
		if t > q.Get("last") {
			tags = append(tags, t)
		}
	}
	if len(tags) > n {
		tags = tags[:n]
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {tags[n-1]}}
		w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	list.Tags = tags
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

// push writes img as repo:tag, with the fake's credentials, and returns the digest.
func (f *fake) push(t *testing.T, repo, tag string, img v1.Image) v1.Hash {
	t.Helper()
	reg := &testimage.Registry{Host: f.host}
	user, pass := f.user, f.pass
	f.user = "" // the test's own push needs no credentials
	defer func() { f.user, f.pass = user, pass }()
	if _, err := reg.Push(t.Context(), repo, tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// isolate points the Docker credential lookup at an empty folder, and returns it.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	return dir
}

func newSource(t *testing.T, repository string, c *counter) *oci.Registry {
	t.Helper()
	client := &http.Client{}
	if c != nil {
		c.next = http.DefaultTransport
		client.Transport = c
	}
	r, err := oci.New(oci.Config{Repository: repository}, sources.Options{HTTPClient: client, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		repo    string
		want    string // Repository(); "" when an error is wanted
		wantErr string
	}{
		{name: "ghcr", repo: "ghcr.io/owner/app", want: "ghcr.io/owner/app"},
		{name: "docker hub with host", repo: "docker.io/owner/app", want: "docker.io/owner/app"},
		{name: "docker hub index host", repo: "index.docker.io/owner/app", want: "docker.io/owner/app"},
		{name: "docker hub short", repo: "owner/app", want: "docker.io/owner/app"},
		{name: "docker hub official", repo: "nginx", want: "docker.io/library/nginx"},
		{name: "docker hub library", repo: "docker.io/library/nginx", want: "docker.io/library/nginx"},
		{name: "gcr", repo: "gcr.io/my-project/app", want: "gcr.io/my-project/app"},
		{name: "artifact registry", repo: "us-docker.pkg.dev/my-project/repo/app", want: "us-docker.pkg.dev/my-project/repo/app"},
		{name: "ecr", repo: "123456789.dkr.ecr.ap-northeast-1.amazonaws.com/myapp", want: "123456789.dkr.ecr.ap-northeast-1.amazonaws.com/myapp"},
		{name: "private with port", repo: "127.0.0.1:5000/app", want: "127.0.0.1:5000/app"},
		{name: "localhost nested", repo: "localhost:5000/team/app", want: "localhost:5000/team/app"},
		{name: "empty", repo: "", wantErr: "repository is empty"},
		{name: "tag", repo: "ghcr.io/owner/app:v1", wantErr: "names a tag"},
		{name: "tag after port", repo: "127.0.0.1:5000/app:latest", wantErr: "names a tag"},
		{name: "digest", repo: "ghcr.io/owner/app@sha256:0123", wantErr: "names an image digest"},
		{name: "upper case", repo: "ghcr.io/Owner/App", wantErr: "ghcr.io/Owner/App"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := oci.New(oci.Config{Repository: tt.repo}, sources.Options{HTTPClient: &http.Client{}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q) error = %v, want one containing %q", tt.repo, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Repository(); got != tt.want {
				t.Errorf("Repository() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSelect lists tags through the source and chooses with the version engine,
// as the agent does.
func TestSelect(t *testing.T) {
	isolate(t)
	f := newFake(t)
	img := testimage.Build(t, "v1", testimage.Options{})
	for _, tag := range []string{"v1.0.0", "1.1.0", "v1.2.0-rc.1", "latest", "build-123", "v1.0.0-beta.2"} {
		f.push(t, "team/app", tag, img)
	}
	src := newSource(t, f.host+"/team/app", nil)
	rels, err := src.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 6 {
		t.Fatalf("got %d releases, want 6: %+v", len(rels), rels)
	}
	for _, r := range rels {
		if want := f.host + "/team/app:" + r.Tag; r.Image != want {
			t.Errorf("release %s: Image = %q, want %q", r.Tag, r.Image, want)
		}
		if len(r.Assets) != 0 {
			t.Errorf("release %s has assets %v", r.Tag, r.Assets)
		}
	}
	tests := []struct {
		name       string
		preRelease bool
		want       string
	}{
		{name: "stable", want: "1.1.0"},
		{name: "pre-release", preRelease: true, want: "v1.2.0-rc.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := version.Select(rels, version.Policy{PreRelease: tt.preRelease}, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			if sel.Candidate == nil || sel.Candidate.Release.Tag != tt.want {
				t.Fatalf("selected %+v, want %s", sel.Candidate, tt.want)
			}
			if want := f.host + "/team/app:" + tt.want; sel.Candidate.Release.Image != want {
				t.Errorf("Image = %q, want %q", sel.Candidate.Release.Image, want)
			}
		})
	}

	t.Run("only latest", func(t *testing.T) {
		f.push(t, "other", "latest", img)
		rels, err := newSource(t, f.host+"/other", nil).Releases(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := version.Select(rels, version.Policy{}, fixedNow); !errors.Is(err, version.ErrNoVersion) {
			t.Fatalf("Select = %v, want ErrNoVersion", err)
		}
	})
}

// TestPollCost checks that every page is followed and that a poll after the first
// costs one request per page: no request per tag, authentication reused.
func TestPollCost(t *testing.T) {
	isolate(t)
	f := newFake(t)
	f.pageSize = 2
	img := testimage.Build(t, "v1", testimage.Options{})
	var want []string
	for i := range 5 {
		tag := "v1.0." + strconv.Itoa(i)
		f.push(t, "app", tag, img)
		want = append(want, tag)
	}
	var c counter
	src := newSource(t, f.host+"/app", &c)
	for poll := range 3 {
		before, pagesBefore := c.n.Load(), f.tagPages.Load()
		rels, err := src.Releases(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rels {
			got = append(got, r.Tag)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("poll %d: tags %v, want %v", poll, got, want)
		}
		pages := f.tagPages.Load() - pagesBefore
		if pages != 3 {
			t.Errorf("poll %d: %d tag pages fetched, want 3 (5 tags, 2 a page)", poll, pages)
		}
		requests := c.n.Load() - before
		if poll > 0 && requests != pages {
			t.Errorf("poll %d: %d requests for %d pages, want one request per page", poll, requests, pages)
		}
	}
}

func TestPin(t *testing.T) {
	isolate(t)
	f := newFake(t)
	amd := testimage.Build(t, "v1", testimage.Options{Platform: "linux/amd64"})
	arm := testimage.Build(t, "v1", testimage.Options{Platform: "linux/arm64"})
	amdDigest := f.push(t, "single", "v1.0.0", amd)
	armDigest := f.push(t, "armonly", "v1.0.0", arm)
	reg := &testimage.Registry{Host: f.host}
	if _, err := reg.PushIndex(t.Context(), "multi", "v1.0.0", testimage.Index(
		testimage.Platformed{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: amd},
		testimage.Platformed{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Image: arm},
	)); err != nil {
		t.Fatal(err)
	}
	host := map[string]v1.Hash{"amd64": amdDigest, "arm64": armDigest}[runtime.GOARCH]

	tests := []struct {
		name        string
		repo        string
		tag         string
		platform    string
		want        v1.Hash // zero: an error is wanted
		wantErr     string
		platformErr bool // the error wraps ErrPlatform
		notFound    bool
	}{
		{name: "single platform", repo: "single", tag: "v1.0.0", platform: "linux/amd64", want: amdDigest},
		{name: "index, host platform", repo: "multi", tag: "v1.0.0", want: host},
		{name: "index, amd64", repo: "multi", tag: "v1.0.0", platform: "linux/amd64", want: amdDigest},
		{name: "index, arm64", repo: "multi", tag: "v1.0.0", platform: "linux/arm64", want: armDigest},
		{name: "index without the platform", repo: "multi", tag: "v1.0.0", platform: "linux/s390x", wantErr: "has no image for linux/s390x (it has: linux/amd64, linux/arm64)", platformErr: true},
		{name: "single image of another platform", repo: "armonly", tag: "v1.0.0", platform: "linux/amd64", wantErr: "is an image for linux/arm64 only; this host needs linux/amd64", platformErr: true},
		{name: "bad platform", repo: "single", tag: "v1.0.0", platform: "linux/amd64/v1/x", wantErr: "platform"},
		{name: "missing tag", repo: "single", tag: "v9.9.9", platform: "linux/amd64", notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, f.host+"/"+tt.repo, nil)
			got, err := src.Pin(t.Context(), version.Release{Tag: tt.tag, Image: f.host + "/" + tt.repo + ":" + tt.tag}, tt.platform)
			switch {
			case tt.notFound:
				if !errors.Is(err, sources.ErrNotFound) {
					t.Fatalf("Pin error = %v, want ErrNotFound", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Pin error = %v, want one containing %q", err, tt.wantErr)
				}
				if got := errors.Is(err, oci.ErrPlatform); got != tt.platformErr {
					t.Errorf("errors.Is(err, ErrPlatform) = %v, want %v", got, tt.platformErr)
				}
				if got := errors.Is(err, sources.ErrIncompatible); got != tt.platformErr {
					t.Errorf("errors.Is(err, sources.ErrIncompatible) = %v, want %v", got, tt.platformErr)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if want := f.host + "/" + tt.repo + "@" + tt.want.String(); got != want {
					t.Errorf("Pin = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	img := testimage.Build(t, "v1", testimage.Options{})

	t.Run("unknown repository", func(t *testing.T) {
		isolate(t)
		f := newFake(t)
		_, err := newSource(t, f.host+"/nope", nil).Releases(t.Context())
		if !errors.Is(err, sources.ErrNotFound) {
			t.Fatalf("Releases error = %v, want ErrNotFound", err)
		}
	})

	t.Run("credentials from docker config", func(t *testing.T) {
		cfgDir := isolate(t)
		f := newFake(t)
		f.user, f.pass = "deployer", "s3cret-token"
		f.push(t, "private", "v1.0.0", img)
		src := newSource(t, f.host+"/private", nil)

		_, err := src.Releases(t.Context())
		if err == nil {
			t.Fatal("Releases without credentials succeeded")
		}
		if want := "run `docker login " + f.host + "`"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if errors.Is(err, sources.ErrNotFound) {
			t.Errorf("error %q wraps ErrNotFound; it is an access error", err)
		}

		// `docker login` writes this; the same source picks it up at the next poll.
		auth := base64.StdEncoding.EncodeToString([]byte(f.user + ":" + f.pass))
		conf := `{"auths":{"` + f.host + `":{"auth":"` + auth + `"}}}`
		if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		rels, err := src.Releases(t.Context())
		if err != nil {
			t.Fatalf("Releases after login: %v", err)
		}
		if len(rels) != 1 || rels[0].Tag != "v1.0.0" {
			t.Errorf("releases = %+v", rels)
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		isolate(t)
		f := newFake(t)
		f.push(t, "app", "v1.0.0", img)
		f.limited.Store(true)
		_, err := newSource(t, f.host+"/app", nil).Releases(t.Context())
		var rl *sources.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("Releases error = %v, want a RateLimitedError", err)
		}
		if want := fixedNow.Add(120 * time.Second); !rl.Until.Equal(want) {
			t.Errorf("Until = %s, want %s (Retry-After: 120)", rl.Until, want)
		}
		if n := f.tagPages.Load(); n != 0 {
			t.Errorf("tag list reached %d times through the 429", n)
		}
		if n := f.limits.Load(); n != 1 {
			t.Errorf("%d requests answered 429: a 429 must not be retried at once", n)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		isolate(t)
		f := newFake(t)
		f.push(t, "app", "v1.0.0", img)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := newSource(t, f.host+"/app", nil).Releases(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Releases error = %v, want context.Canceled", err)
		}
	})

	t.Run("no files and no reports", func(t *testing.T) {
		src := newSource(t, "ghcr.io/owner/app", nil)
		if _, err := src.Open(t.Context(), version.Release{Tag: "v1.0.0"}, version.Asset{Name: "x"}); err == nil {
			t.Error("Open succeeded")
		}
		if _, ok := any(src).(sources.Reporter); ok {
			t.Error("the OCI source implements Reporter; the seed says OCI has no audit tracking")
		}
		if _, ok := any(src).(sources.Stateful); ok {
			t.Error("the OCI source implements Stateful; there is nothing to save")
		}
	})
}
