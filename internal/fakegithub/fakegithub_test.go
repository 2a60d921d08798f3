package fakegithub_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
)

// client is go-github pointed at the fake.
func client(t *testing.T, srv *fakegithub.Server, token string) *github.Client {
	t.Helper()
	c := github.NewClient(nil)
	if token != "" {
		c = c.WithAuthToken(token)
	}
	u, err := url.Parse(srv.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func TestListPagination(t *testing.T) {
	srv := fakegithub.New(t)
	for _, tag := range []string{"v1", "v2", "v3", "v4", "v5"} {
		srv.AddRelease("o", "r", fakegithub.Release{Tag: tag})
	}
	c := client(t, srv, "")
	tests := []struct {
		name                                    string
		page                                    int
		wantTags                                []string
		wantNext, wantPrev, wantFirst, wantLast int
	}{
		{name: "first page", page: 1, wantTags: []string{"v5", "v4"}, wantNext: 2, wantLast: 3},
		{name: "middle page", page: 2, wantTags: []string{"v3", "v2"}, wantNext: 3, wantPrev: 1, wantFirst: 1, wantLast: 3},
		{name: "last page", page: 3, wantTags: []string{"v1"}, wantPrev: 2, wantFirst: 1},
		{name: "past the end", page: 4, wantTags: []string{}, wantPrev: 3, wantFirst: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rels, resp, err := c.Repositories.ListReleases(t.Context(), "o", "r", &github.ListOptions{Page: tt.page, PerPage: 2})
			if err != nil {
				t.Fatalf("ListReleases: %v", err)
			}
			got := []string{}
			for _, r := range rels {
				got = append(got, r.GetTagName())
			}
			if strings.Join(got, ",") != strings.Join(tt.wantTags, ",") {
				t.Errorf("tags = %v, want %v", got, tt.wantTags)
			}
			if resp.NextPage != tt.wantNext || resp.PrevPage != tt.wantPrev || resp.FirstPage != tt.wantFirst || resp.LastPage != tt.wantLast {
				t.Errorf("next/prev/first/last = %d/%d/%d/%d, want %d/%d/%d/%d", resp.NextPage, resp.PrevPage, resp.FirstPage, resp.LastPage,
					tt.wantNext, tt.wantPrev, tt.wantFirst, tt.wantLast)
			}
		})
	}
}

func TestReleaseJSON(t *testing.T) {
	srv := fakegithub.New(t)
	published := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	srv.AddRelease("o", "r", fakegithub.Release{Tag: "v1.0.0", Published: published, Assets: map[string][]byte{"a.tar.gz": []byte("abc")}})
	srv.AddRelease("o", "r", fakegithub.Release{Tag: "v2.0.0", Draft: true, Prerelease: true})
	resp, err := http.Get(srv.URL() + "/repos/o/r/releases")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rels []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&rels); err != nil {
		t.Fatal(err)
	}
	if len(rels) != 2 {
		t.Fatalf("%d releases, want 2", len(rels))
	}
	draft, rel := rels[0], rels[1]
	if draft["draft"] != true || draft["prerelease"] != true || draft["published_at"] != nil {
		t.Errorf("draft = %v, want draft, prerelease, published_at null", draft)
	}
	if rel["tag_name"] != "v1.0.0" || rel["published_at"] != "2025-01-02T03:04:05Z" {
		t.Errorf("release = %v", rel)
	}
	asset := rel["assets"].([]any)[0].(map[string]any)
	for _, key := range []string{"id", "name", "size", "url", "browser_download_url", "created_at"} {
		if _, ok := asset[key]; !ok {
			t.Errorf("asset lacks %q: %v", key, asset)
		}
	}
	if asset["size"] != 3.0 || !strings.HasPrefix(asset["url"].(string), srv.URL()+"/repos/o/r/releases/assets/") {
		t.Errorf("asset = %v", asset)
	}

	// The browser download URL redirects to storage, too.
	dl, err := http.Get(asset["browser_download_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if string(body) != "abc" || !strings.HasPrefix(dl.Request.URL.String(), srv.StorageURL()) {
		t.Errorf("browser download from %s = %q, want abc from storage", dl.Request.URL, body)
	}
}

func TestETag(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddRelease("o", "r", fakegithub.Release{Tag: "v1"})
	get := func(etag string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/repos/o/r/releases?per_page=100", nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := get("")
	etag := first.Header.Get("ETag")
	if first.StatusCode != 200 || !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("first: %d ETag %q", first.StatusCode, etag)
	}
	if got := get(etag); got.StatusCode != http.StatusNotModified || got.Header.Get("ETag") != etag {
		t.Errorf("with the ETag: %d %q, want 304 with the same ETag", got.StatusCode, got.Header.Get("ETag"))
	}
	if got := get(strings.TrimPrefix(etag, "W/")); got.StatusCode != http.StatusNotModified {
		t.Errorf("strong form of the ETag: %d, want 304 (weak comparison)", got.StatusCode)
	}
	srv.SetPrerelease("o", "r", "v1", true)
	if got := get(etag); got.StatusCode != 200 || got.Header.Get("ETag") == etag {
		t.Errorf("after a change: %d %q, want 200 with a new ETag", got.StatusCode, got.Header.Get("ETag"))
	}
	if got, want := srv.Stats("o", "r"), (fakegithub.Stats{Requests: 4, NotModified: 2}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestDownloadWithGoGitHub(t *testing.T) {
	srv := fakegithub.New(t)
	srv.RequireToken("tok")
	srv.AddRelease("o", "r", fakegithub.Release{Tag: "v1", Assets: map[string][]byte{"a.bin": []byte("payload")}})
	c := client(t, srv, "tok")
	id := srv.AssetID("o", "r", "v1", "a.bin")

	meta, _, err := c.Repositories.GetReleaseAsset(t.Context(), "o", "r", id)
	if err != nil || meta.GetName() != "a.bin" || meta.GetSize() != 7 {
		t.Fatalf("GetReleaseAsset = %+v, %v", meta, err)
	}
	// go-github follows the redirect with the client given, without the token.
	rc, redirect, err := c.Repositories.DownloadReleaseAsset(t.Context(), "o", "r", id, http.DefaultClient)
	if err != nil || redirect != "" {
		t.Fatalf("DownloadReleaseAsset: %v (redirect %q)", err, redirect)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "payload" {
		t.Errorf("downloaded %q, want payload", body)
	}
	if got := srv.Stats("o", "r").Downloads; got != 1 {
		t.Errorf("Downloads = %d, want 1", got)
	}
}

func TestAuthAndFailures(t *testing.T) {
	tests := []struct {
		name       string
		token      string
		fail       *fakegithub.Failure
		wantStatus []int // of consecutive list requests
	}{
		{name: "right token", token: "tok", wantStatus: []int{200}},
		{name: "no token looks like a private repository", wantStatus: []int{404}},
		{name: "wrong token", token: "nope", wantStatus: []int{401}},
		{name: "failure twice, then served", token: "tok", fail: &fakegithub.Failure{Status: 502, Times: 2}, wantStatus: []int{502, 502, 200}},
		{name: "failure until cleared", token: "tok", fail: &fakegithub.Failure{Status: 500}, wantStatus: []int{500, 500, 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			srv.RequireToken("tok")
			srv.AddRepo("o", "r")
			if tt.fail != nil {
				srv.Fail("o", "r", *tt.fail)
			}
			c := client(t, srv, tt.token)
			for i, want := range tt.wantStatus {
				_, resp, err := c.Repositories.ListReleases(t.Context(), "o", "r", nil)
				var er *github.ErrorResponse
				if resp == nil || resp.StatusCode != want || (want != 200 && !errors.As(err, &er)) {
					t.Errorf("request %d: %v, %v; want status %d", i+1, resp, err, want)
				}
			}
		})
	}
}

func TestStorageRejectsBadSignature(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddRelease("o", "r", fakegithub.Release{Tag: "v1", Assets: map[string][]byte{"a.bin": []byte("x")}})
	c := client(t, srv, "")
	_, redirect, err := c.Repositories.DownloadReleaseAsset(t.Context(), "o", "r", srv.AssetID("o", "r", "v1", "a.bin"), nil)
	if err != nil || redirect == "" {
		t.Fatalf("DownloadReleaseAsset without a client: %q, %v; want the redirect URL", redirect, err)
	}
	u, _ := url.Parse(redirect)
	u.RawQuery = "sig=forged"
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged signature: %d, want 403", resp.StatusCode)
	}
}

// TestPublicURLs: with SetPublicURLs, every URL the fake hands out names the
// public bases (proxies in front of its servers), and requests through them
// reach the servers.
func TestPublicURLs(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddRelease("o", "r", fakegithub.Release{Tag: "v1", Assets: map[string][]byte{"a.tar.gz": []byte("abc")}})
	api, storage := srv.Origins()
	forward := func(target string, seen *atomic.Int64) string {
		u, _ := url.Parse(target)
		rp := httputil.NewSingleHostReverseProxy(u)
		p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1); rp.ServeHTTP(w, r) }))
		t.Cleanup(p.Close)
		return p.URL
	}
	var apiSeen, storageSeen atomic.Int64
	pa, ps := forward(api, &apiSeen), forward(storage, &storageSeen)
	srv.SetPublicURLs(pa, ps)
	if srv.URL() != pa+fakegithub.APIPrefix || srv.StorageURL() != ps {
		t.Fatalf("URL() = %s, StorageURL() = %s; want the public ones", srv.URL(), srv.StorageURL())
	}
	resp, err := http.Get(srv.URL() + "/repos/o/r/releases")
	if err != nil {
		t.Fatal(err)
	}
	var rels []struct {
		Assets []struct {
			URL string `json:"url"`
		} `json:"assets"`
	}
	json.NewDecoder(resp.Body).Decode(&rels)
	resp.Body.Close()
	if len(rels) != 1 || len(rels[0].Assets) != 1 || !strings.HasPrefix(rels[0].Assets[0].URL, pa+fakegithub.APIPrefix+"/") {
		t.Fatalf("releases = %+v; want the asset URL on %s", rels, pa)
	}
	req, _ := http.NewRequest(http.MethodGet, rels[0].Assets[0].URL, nil)
	req.Header.Set("Accept", "application/octet-stream")
	dl, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if string(body) != "abc" || !strings.HasPrefix(dl.Request.URL.String(), ps+"/") || apiSeen.Load() != 2 || storageSeen.Load() != 1 {
		t.Errorf("download from %s = %q, API proxy saw %d, storage proxy %d; want abc through both", dl.Request.URL, body, apiSeen.Load(), storageSeen.Load())
	}
}

func TestAllowTokenOnStorage(t *testing.T) {
	srv := fakegithub.New(t)
	srv.RequireToken("tok")
	srv.AddRelease("o", "r", fakegithub.Release{Tag: "v1", Assets: map[string][]byte{"a.bin": []byte("payload")}})
	srv.AllowTokenOnStorage()
	c := client(t, srv, "tok")
	// The authenticated client follows the redirect, so the token reaches the storage server.
	rc, _, err := c.Repositories.DownloadReleaseAsset(t.Context(), "o", "r", srv.AssetID("o", "r", "v1", "a.bin"), c.Client())
	if err != nil {
		t.Fatalf("DownloadReleaseAsset with the token on the redirect: %v", err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "payload" {
		t.Errorf("downloaded %q, want payload", body)
	}
}
