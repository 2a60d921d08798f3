// Package fakegithub is an in-process GitHub REST API for tests, served by
// httptest on 127.0.0.1. Its words:
//
//   - Server: the fake; two httptest servers, the API and the storage host that
//     asset downloads are redirected to (like objects.githubusercontent.com).
//   - Repository: owner/repo; it exists once a release is added to it (or AddRepo).
//   - Release, asset: what the test publishes; the API lists them with the JSON
//     shapes GitHub sends (tag_name, draft, prerelease, published_at, assets[]...).
//
// What it speaks, as GitHub does:
//
//   - GET {URL}/repos/{owner}/{repo}/releases with per_page (default 30, max
//     100) and page, Link headers (rel="next", "last", "first", "prev"), a weak
//     ETag per page and 304 Not Modified when If-None-Match matches. A 304 carries
//     the ETag and the rate headers but no Link header.
//   - GET {URL}/repos/{owner}/{repo}/releases/assets/{id}: the asset's JSON, or
//     with "Accept: application/octet-stream" a 302 to a signed storage URL.
//   - GET {web}/{owner}/{repo}/releases/download/{tag}/{name}: the browser
//     download URL, also a 302 to storage.
//   - X-RateLimit-* headers on every API response (SetRateLimit).
//   - With RequireToken: "Authorization: Bearer <token>" or "token <token>" is
//     accepted; no Authorization answers 404 (GitHub's answer for a private
//     repository), a wrong one 401 Bad credentials.
//
// Differences from GitHub: drafts are listed to every caller (GitHub lists them
// only to users with push access), so clients can be tested for ignoring them;
// releases are listed newest-added first.
//
// The storage server fails the test if a download request carries an
// Authorization header: a client must not forward the token to another host.
package fakegithub

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// APIPrefix is the path under which the API is served, as on GitHub Enterprise
// Server. URL includes it.
const APIPrefix = "/api/v3"

// Release is one release a test publishes.
type Release struct {
	// Tag is the release's tag_name; unique per repository.
	Tag string
	// Name is the release title; empty means the tag.
	Name string
	// Draft marks an unpublished release (published_at is null).
	Draft bool
	// Prerelease is GitHub's pre-release flag.
	Prerelease bool
	// Published is published_at (and created_at); zero means the time of AddRelease.
	Published time.Time
	// Assets maps file names to their content.
	Assets map[string][]byte
}

// Stats counts the traffic of one repository.
type Stats struct {
	// Requests is the number of API requests for the repository (releases list
	// pages and asset API calls, whatever their answer).
	Requests int
	// NotModified is how many of them were answered 304.
	NotModified int
	// Downloads is the number of asset bodies the storage server started to send.
	Downloads int
}

// Failure makes API requests for a repository fail.
type Failure struct {
	// Status is the HTTP status, e.g. 403, 429 or 500.
	Status int
	// Message is the JSON body's "message".
	Message string
	// DocumentationURL is the JSON body's "documentation_url"; GitHub marks
	// secondary rate limits with a URL ending in "secondary-rate-limits".
	DocumentationURL string
	// Header is added to the response, after the default rate headers, e.g.
	// X-RateLimit-Remaining: 0 and X-RateLimit-Reset, or Retry-After.
	Header http.Header
	// Times is how many requests fail; 0 means every request until ClearFailure.
	Times int
}

// Request is one API request the server received.
type Request struct {
	Method string
	// Path is the URL path without APIPrefix, e.g. "/repos/o/r/releases".
	Path     string
	RawQuery string
	Header   http.Header
	// Status is the status the server answered.
	Status int
}

// Server is a fake GitHub: an API server and a storage server.
type Server struct {
	t       testing.TB
	api     *httptest.Server
	storage *httptest.Server

	mu        sync.Mutex
	repos     map[string]*repository
	assets    map[int64]*asset  // by id
	blobs     map[string]*asset // by storage key
	nextID    int64
	token     string
	rateLimit int
	rateLeft  int
	rateReset time.Time
	paused    chan struct{} // closed by resume; nil when downloads are not paused
	publicAPI string        // SetPublicURLs; "" means the API server's own URL
	publicSto string        // SetPublicURLs; "" means the storage server's own URL
	app       *app          // EnableApp; nil when the fake is no GitHub App (app.go)
	anyAuth   bool          // AllowTokenOnStorage: the storage server ignores Authorization
}

type repository struct {
	owner, name string
	exists      bool       // AddRepo or AddRelease was called
	releases    []*release // in the order added
	stats       Stats
	failure     *Failure
	failLeft    int
	log         []Request
}

type release struct {
	Release
	id        int64
	published time.Time
	assets    []*asset // sorted by name
}

type asset struct {
	id      int64
	repo    *repository
	name    string
	content []byte
	created time.Time
	key     string // storage path element
	sig     string // storage signature query value
}

// New starts a fake GitHub; it is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:         t,
		repos:     map[string]*repository{},
		assets:    map[int64]*asset{},
		blobs:     map[string]*asset{},
		nextID:    1000,
		rateLimit: 5000,
		rateLeft:  5000,
		rateReset: time.Now().Add(time.Hour).Truncate(time.Second),
	}
	api := http.NewServeMux()
	api.HandleFunc("GET "+APIPrefix+"/repos/{owner}/{repo}/releases", s.listReleases)
	api.HandleFunc("GET "+APIPrefix+"/repos/{owner}/{repo}/releases/assets/{id}", s.getAsset)
	api.HandleFunc("GET "+APIPrefix+"/repos/{owner}/{repo}/releases/tags/{tag}", s.getReleaseByTag)
	api.HandleFunc("POST /api/uploads/repos/{owner}/{repo}/releases/{id}/assets", s.uploadAsset)
	api.HandleFunc("GET /{owner}/{repo}/releases/download/{tag}/{name}", s.browserDownload)
	api.HandleFunc("POST "+APIPrefix+"/app/installations/{id}/access_tokens", s.issueToken)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest"})
	})
	storage := http.NewServeMux()
	storage.HandleFunc("GET /{key}/{name}", s.serveBlob)
	s.api = httptest.NewServer(api)
	s.storage = httptest.NewServer(storage)
	t.Cleanup(s.storage.Close)
	t.Cleanup(s.api.Close)
	return s
}

// SetEnv points the ghr source at the fake through the environment, for the
// test t: GITHUB_API_URL is the fake's URL, GITHUB_TOKEN is token ("" for
// none) and GH_TOKEN is empty.
func (s *Server) SetEnv(t testing.TB, token string) {
	t.Helper()
	t.Setenv("GITHUB_API_URL", s.URL())
	t.Setenv("GITHUB_TOKEN", token)
	t.Setenv("GH_TOKEN", "")
}

// URL is the API root, the value for GITHUB_API_URL:
// "http://127.0.0.1:PORT/api/v3" (no trailing slash, as GitHub Actions sets it).
func (s *Server) URL() string { return s.WebURL() + APIPrefix }

// WebURL is the root of html_url and browser_download_url.
func (s *Server) WebURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webURL()
}

func (s *Server) webURL() string { return cmp.Or(s.publicAPI, s.api.URL) }

// StorageURL is the root of the storage server that downloads redirect to.
func (s *Server) StorageURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storageURL()
}

func (s *Server) storageURL() string { return cmp.Or(s.publicSto, s.storage.URL) }

// Origins returns the API and storage servers' own base URLs
// ("http://127.0.0.1:PORT"), whatever SetPublicURLs says: what a proxy in
// front of each forwards to.
func (s *Server) Origins() (api, storage string) { return s.api.URL, s.storage.URL }

// SetPublicURLs makes the URLs the fake hands out name api (in place of the
// API server: URL, WebURL, the URLs in its JSON and Link headers) and storage
// (in place of the storage server: the redirects of downloads), as when a
// proxy sits in front of each. Keep them different origins, as GitHub's are,
// so a client sends its token to the API only. "" keeps a server's own URL.
func (s *Server) SetPublicURLs(api, storage string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publicAPI, s.publicSto = strings.TrimSuffix(api, "/"), strings.TrimSuffix(storage, "/")
}

// RequireToken makes the API demand this token (see the package doc); "" turns
// the check off.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// AllowTokenOnStorage makes the storage server serve a download that carries
// an Authorization header instead of failing it (and the test) as a leaked
// token. bench/vsdewy uses it for Dewy, whose client sends its token on the
// redirected download too.
func (s *Server) AllowTokenOnStorage() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anyAuth = true
}

// SetRateLimit sets the X-RateLimit-* values sent with every API response.
// It does not fail requests: use Fail for that.
func (s *Server) SetRateLimit(limit, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit, s.rateLeft, s.rateReset = limit, remaining, reset
}

// AddRepo makes an empty repository exist (its releases list is []).
func (s *Server) AddRepo(owner, repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(owner, repo).exists = true
}

// AddRelease publishes a release, creating the repository if needed. A
// duplicate tag fails the test.
func (s *Server) AddRelease(owner, repo string, r Release) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repo(owner, repo)
	rp.exists = true
	if rp.find(r.Tag) != nil {
		s.t.Fatalf("fakegithub: %s/%s already has a release %q", owner, repo, r.Tag)
	}
	rel := &release{Release: r, id: s.id(), published: r.Published.UTC().Truncate(time.Second)}
	if rel.published.IsZero() {
		rel.published = time.Now().UTC().Truncate(time.Second)
	}
	rel.Assets = nil
	rp.releases = append(rp.releases, rel)
	names := make([]string, 0, len(r.Assets))
	for name := range r.Assets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s.addAsset(rp, rel, name, r.Assets[name], rel.published)
	}
}

// AddAsset uploads one more asset to an existing release (replacing one of the
// same name). An unknown release fails the test.
func (s *Server) AddAsset(owner, repo, tag, name string, content []byte) {
	s.t.Helper()
	s.edit(owner, repo, tag, func(rp *repository, rel *release) {
		rel.assets = slices.DeleteFunc(rel.assets, func(a *asset) bool {
			if a.name == name {
				delete(s.assets, a.id)
				delete(s.blobs, a.key)
				return true
			}
			return false
		})
		s.addAsset(rp, rel, name, content, time.Now().UTC().Truncate(time.Second))
	})
}

// RemoveRelease deletes a release and its assets. An unknown release fails the test.
func (s *Server) RemoveRelease(owner, repo, tag string) {
	s.t.Helper()
	s.edit(owner, repo, tag, func(rp *repository, rel *release) {
		for _, a := range rel.assets {
			delete(s.assets, a.id)
			delete(s.blobs, a.key)
		}
		rp.releases = slices.DeleteFunc(rp.releases, func(r *release) bool { return r == rel })
	})
}

// SetPrerelease changes a release's pre-release flag.
func (s *Server) SetPrerelease(owner, repo, tag string, prerelease bool) {
	s.t.Helper()
	s.edit(owner, repo, tag, func(_ *repository, rel *release) { rel.Prerelease = prerelease })
}

// SetDraft changes a release's draft flag (publishing or unpublishing it).
func (s *Server) SetDraft(owner, repo, tag string, draft bool) {
	s.t.Helper()
	s.edit(owner, repo, tag, func(_ *repository, rel *release) { rel.Draft = draft })
}

// AssetID returns the id of a release's asset, as in its API URL. An unknown
// asset fails the test.
func (s *Server) AssetID(owner, repo, tag, name string) int64 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, rel := s.mustFind(owner, repo, tag)
	for _, a := range rel.assets {
		if a.name == name {
			return a.id
		}
	}
	s.t.Fatalf("fakegithub: %s/%s %s has no asset %q", owner, repo, tag, name)
	return 0
}

// Fail makes API requests for the repository fail as f says (replacing an
// earlier Fail). The repository need not exist.
func (s *Server) Fail(owner, repo string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repo(owner, repo)
	rp.failure = &f
	rp.failLeft = f.Times
}

// ClearFailure ends a Fail.
func (s *Server) ClearFailure(owner, repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(owner, repo).failure = nil
}

// PauseDownloads makes the storage server send the first half of each asset
// that starts downloading from now on, then wait until resume is called (or
// the client goes away). Tests use it to prove a client streams. resume is
// also called when the test ends; calling it twice is fine.
func (s *Server) PauseDownloads() (resume func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.paused = ch
	s.mu.Unlock()
	var once sync.Once
	resume = func() {
		once.Do(func() {
			s.mu.Lock()
			if s.paused == ch {
				s.paused = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
	s.t.Cleanup(resume)
	return resume
}

// Stats returns the repository's counters.
func (s *Server) Stats(owner, repo string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rp := s.repos[owner+"/"+repo]; rp != nil {
		return rp.stats
	}
	return Stats{}
}

// Requests returns the API requests received for the repository, oldest first.
func (s *Server) Requests(owner, repo string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rp := s.repos[owner+"/"+repo]; rp != nil {
		return slices.Clone(rp.log)
	}
	return nil
}

func (s *Server) repo(owner, name string) *repository {
	key := owner + "/" + name
	rp := s.repos[key]
	if rp == nil {
		rp = &repository{owner: owner, name: name}
		s.repos[key] = rp
	}
	return rp
}

func (rp *repository) find(tag string) *release {
	for _, r := range rp.releases {
		if r.Tag == tag {
			return r
		}
	}
	return nil
}

// edit calls fn with a release and its repository under the server's lock. An
// unknown release fails the test.
func (s *Server) edit(owner, repo, tag string, fn func(*repository, *release)) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.mustFind(owner, repo, tag))
}

func (s *Server) mustFind(owner, repo, tag string) (*repository, *release) {
	s.t.Helper()
	rp := s.repos[owner+"/"+repo]
	if rp != nil {
		if rel := rp.find(tag); rel != nil {
			return rp, rel
		}
	}
	s.t.Fatalf("fakegithub: %s/%s has no release %q", owner, repo, tag)
	return nil, nil
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

func (s *Server) addAsset(rp *repository, rel *release, name string, content []byte, created time.Time) {
	a := &asset{
		id:      s.id(),
		repo:    rp,
		name:    name,
		content: slices.Clone(content),
		created: created,
		key:     randomHex(8),
		sig:     randomHex(16),
	}
	rel.assets = append(rel.assets, a)
	slices.SortFunc(rel.assets, func(x, y *asset) int { return strings.Compare(x.name, y.name) })
	s.assets[a.id] = a
	s.blobs[a.key] = a
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// JSON shapes, as GitHub sends them (the fields clients read, and their neighbours).

type errorBody struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url,omitempty"`
}

type apiRelease struct {
	URL             string     `json:"url"`
	AssetsURL       string     `json:"assets_url"`
	UploadURL       string     `json:"upload_url"`
	HTMLURL         string     `json:"html_url"`
	ID              int64      `json:"id"`
	NodeID          string     `json:"node_id"`
	TagName         string     `json:"tag_name"`
	TargetCommitish string     `json:"target_commitish"`
	Name            string     `json:"name"`
	Draft           bool       `json:"draft"`
	Prerelease      bool       `json:"prerelease"`
	CreatedAt       string     `json:"created_at"`
	PublishedAt     *string    `json:"published_at"`
	Assets          []apiAsset `json:"assets"`
	TarballURL      *string    `json:"tarball_url"`
	ZipballURL      *string    `json:"zipball_url"`
	Body            string     `json:"body"`
}

type apiAsset struct {
	URL                string  `json:"url"`
	ID                 int64   `json:"id"`
	NodeID             string  `json:"node_id"`
	Name               string  `json:"name"`
	Label              *string `json:"label"`
	ContentType        string  `json:"content_type"`
	State              string  `json:"state"`
	Size               int     `json:"size"`
	DownloadCount      int     `json:"download_count"`
	CreatedAt          string  `json:"created_at"`
	UpdatedAt          string  `json:"updated_at"`
	BrowserDownloadURL string  `json:"browser_download_url"`
}

const timeFormat = "2006-01-02T15:04:05Z"

func (s *Server) releaseJSON(rp *repository, rel *release) apiRelease {
	repoURL := s.webURL() + APIPrefix + "/repos/" + rp.owner + "/" + rp.name
	web := s.webURL() + "/" + rp.owner + "/" + rp.name
	out := apiRelease{
		URL:             repoURL + "/releases/" + strconv.FormatInt(rel.id, 10),
		AssetsURL:       repoURL + "/releases/" + strconv.FormatInt(rel.id, 10) + "/assets",
		UploadURL:       s.webURL() + "/api/uploads/repos/" + rp.owner + "/" + rp.name + "/releases/" + strconv.FormatInt(rel.id, 10) + "/assets{?name,label}",
		HTMLURL:         web + "/releases/tag/" + url.PathEscape(rel.Tag),
		ID:              rel.id,
		NodeID:          "RE_" + strconv.FormatInt(rel.id, 10),
		TagName:         rel.Tag,
		TargetCommitish: "main",
		Name:            rel.Name,
		Draft:           rel.Draft,
		Prerelease:      rel.Prerelease,
		CreatedAt:       rel.published.Format(timeFormat),
		Assets:          []apiAsset{},
	}
	if out.Name == "" {
		out.Name = rel.Tag
	}
	if !rel.Draft {
		p := rel.published.Format(timeFormat)
		out.PublishedAt = &p
		tb, zb := repoURL+"/tarball/"+rel.Tag, repoURL+"/zipball/"+rel.Tag
		out.TarballURL, out.ZipballURL = &tb, &zb
	}
	for _, a := range rel.assets {
		out.Assets = append(out.Assets, s.assetJSON(rp, rel, a))
	}
	return out
}

func (s *Server) assetJSON(rp *repository, rel *release, a *asset) apiAsset {
	return apiAsset{
		URL:                s.webURL() + APIPrefix + "/repos/" + rp.owner + "/" + rp.name + "/releases/assets/" + strconv.FormatInt(a.id, 10),
		ID:                 a.id,
		NodeID:             "RA_" + strconv.FormatInt(a.id, 10),
		Name:               a.name,
		ContentType:        "application/octet-stream",
		State:              "uploaded",
		Size:               len(a.content),
		CreatedAt:          a.created.Format(timeFormat),
		UpdatedAt:          a.created.Format(timeFormat),
		BrowserDownloadURL: s.webURL() + "/" + rp.owner + "/" + rp.name + "/releases/download/" + url.PathEscape(rel.Tag) + "/" + url.PathEscape(a.name),
	}
}

// beginRepo locks s and begins the answer for the request's {owner}/{repo}
// as begin does; on nil the answer is sent and s is unlocked.
func (s *Server) beginRepo(w http.ResponseWriter, r *http.Request) *repository {
	s.mu.Lock()
	return s.begin(w, r, s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")])
}

// begin does what every API request shares: find the repository, record the
// request, check the token and any Failure. It returns the repository with
// s.mu held, or nil after answering (s.mu released).
func (s *Server) begin(w http.ResponseWriter, r *http.Request, rp *repository) *repository {
	entry := Request{
		Method:   r.Method,
		Path:     strings.TrimPrefix(r.URL.Path, APIPrefix),
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
	}
	s.rateHeaders(w.Header())
	fail := func(status int, body errorBody, hdr http.Header) *repository {
		entry.Status = status
		if rp != nil {
			rp.log = append(rp.log, entry)
		}
		s.mu.Unlock()
		for k, v := range hdr {
			w.Header()[k] = v
		}
		writeJSON(w, status, body)
		return nil
	}
	if rp != nil {
		rp.stats.Requests++
	}
	if s.token != "" || s.app != nil {
		switch auth := r.Header.Get("Authorization"); {
		case s.installationToken(auth):
		case auth == "":
			return fail(http.StatusNotFound, errorBody{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest"}, nil)
		case s.token == "" || (auth != "Bearer "+s.token && auth != "token "+s.token):
			return fail(http.StatusUnauthorized, errorBody{Message: "Bad credentials", DocumentationURL: "https://docs.github.com/rest"}, nil)
		}
	}
	if rp != nil && rp.failure != nil {
		f := *rp.failure
		if rp.failLeft > 0 {
			rp.failLeft--
			if rp.failLeft == 0 {
				rp.failure = nil
			}
		}
		return fail(f.Status, errorBody{Message: f.Message, DocumentationURL: f.DocumentationURL}, f.Header)
	}
	if rp == nil || !rp.exists {
		return fail(http.StatusNotFound, errorBody{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest"}, nil)
	}
	rp.log = append(rp.log, entry)
	return rp
}

// finish records the status of the request begin logged last.
func (rp *repository) finish(status int) {
	rp.log[len(rp.log)-1].Status = status
	if status == http.StatusNotModified {
		rp.stats.NotModified++
	}
}

func (s *Server) rateHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.rateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.rateLeft))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.rateLimit-s.rateLeft))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.rateReset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	rp := s.beginRepo(w, r)
	if rp == nil {
		return
	}
	defer s.mu.Unlock()

	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}

	all := make([]*release, 0, len(rp.releases))
	for i := len(rp.releases) - 1; i >= 0; i-- {
		all = append(all, rp.releases[i])
	}
	items := []apiRelease{}
	if start := (page - 1) * perPage; start < len(all) {
		for _, rel := range all[start:min(start+perPage, len(all))] {
			items = append(items, s.releaseJSON(rp, rel))
		}
	}
	body, err := json.Marshal(items)
	if err != nil {
		s.t.Errorf("fakegithub: encode releases: %v", err)
		rp.finish(http.StatusInternalServerError)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(body)
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
	h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		rp.finish(http.StatusNotModified)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if link := linkHeader(s.webURL(), r.URL, page, perPage, len(all)); link != "" {
		h.Set("Link", link)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	rp.finish(http.StatusOK)
	_, _ = w.Write(body)
}

// etagMatches is If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

func linkHeader(root string, u *url.URL, page, perPage, total int) string {
	last := max(1, (total+perPage-1)/perPage)
	ref := func(p int, rel string) string {
		q := u.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf("<%s%s?%s>; rel=%q", root, u.Path, q.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, ref(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, ref(page+1, "next"), ref(last, "last"))
	}
	if page > 1 {
		links = append(links, ref(1, "first"))
	}
	return strings.Join(links, ", ")
}

func (s *Server) getAsset(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	a := s.assets[id]
	key := r.PathValue("owner") + "/" + r.PathValue("repo")
	if a != nil && a.repo.owner+"/"+a.repo.name != key {
		a = nil
	}
	rp := s.begin(w, r, s.repos[key])
	if rp == nil {
		return
	}
	defer s.mu.Unlock()
	if a == nil {
		rp.finish(http.StatusNotFound)
		writeJSON(w, http.StatusNotFound, errorBody{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/releases/assets#get-a-release-asset"})
		return
	}
	if r.Header.Get("Accept") == "application/octet-stream" {
		rp.finish(http.StatusFound)
		http.Redirect(w, r, s.blobURL(a), http.StatusFound)
		return
	}
	var rel *release
	for _, rr := range rp.releases {
		if slices.Contains(rr.assets, a) {
			rel = rr
		}
	}
	rp.finish(http.StatusOK)
	writeJSON(w, http.StatusOK, s.assetJSON(rp, rel, a))
}

// getReleaseByTag answers GET /repos/{owner}/{repo}/releases/tags/{tag}.
func (s *Server) getReleaseByTag(w http.ResponseWriter, r *http.Request) {
	rp := s.beginRepo(w, r)
	if rp == nil {
		return
	}
	defer s.mu.Unlock()
	rel := rp.find(r.PathValue("tag"))
	if rel == nil || rel.Draft {
		rp.finish(http.StatusNotFound)
		writeJSON(w, http.StatusNotFound, errorBody{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest/releases/releases#get-a-release-by-tag-name"})
		return
	}
	rp.finish(http.StatusOK)
	writeJSON(w, http.StatusOK, s.releaseJSON(rp, rel))
}

// uploadAsset answers POST {upload_url}?name=..., as uploads.github.com does:
// 201 with the asset, 422 when the release already has an asset of that name.
func (s *Server) uploadAsset(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	rp := s.beginRepo(w, r)
	if rp == nil {
		return
	}
	defer s.mu.Unlock()
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var rel *release
	for _, rr := range rp.releases {
		if rr.id == id {
			rel = rr
		}
	}
	name := r.URL.Query().Get("name")
	switch {
	case err != nil || name == "":
		rp.finish(http.StatusBadRequest)
		writeJSON(w, http.StatusBadRequest, errorBody{Message: "Bad Request"})
		return
	case rel == nil:
		rp.finish(http.StatusNotFound)
		writeJSON(w, http.StatusNotFound, errorBody{Message: "Not Found"})
		return
	}
	for _, a := range rel.assets {
		if a.name == name {
			rp.finish(http.StatusUnprocessableEntity)
			writeJSON(w, http.StatusUnprocessableEntity, errorBody{Message: "Validation Failed"})
			return
		}
	}
	s.addAsset(rp, rel, name, body, time.Now().UTC())
	var a *asset
	for _, x := range rel.assets {
		if x.name == name {
			a = x
		}
	}
	rp.finish(http.StatusCreated)
	writeJSON(w, http.StatusCreated, s.assetJSON(rp, rel, a))
}

// Asset returns the content of the named asset of a release, as uploaded.
func (s *Server) Asset(owner, repo, tag, name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[owner+"/"+repo]
	if rp == nil {
		return nil, false
	}
	rel := rp.find(tag)
	if rel == nil {
		return nil, false
	}
	for _, a := range rel.assets {
		if a.name == name {
			return slices.Clone(a.content), true
		}
	}
	return nil, false
}

// AssetNames lists the asset names of a release.
func (s *Server) AssetNames(owner, repo, tag string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	if rp := s.repos[owner+"/"+repo]; rp != nil {
		if rel := rp.find(tag); rel != nil {
			for _, a := range rel.assets {
				names = append(names, a.name)
			}
		}
	}
	return names
}

func (s *Server) browserDownload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rp := s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")]; rp != nil {
		if rel := rp.find(r.PathValue("tag")); rel != nil && !rel.Draft {
			for _, a := range rel.assets {
				if a.name == r.PathValue("name") {
					http.Redirect(w, r, s.blobURL(a), http.StatusFound)
					return
				}
			}
		}
	}
	http.NotFound(w, r)
}

func (s *Server) blobURL(a *asset) string {
	return s.storageURL() + "/" + a.key + "/" + url.PathEscape(a.name) + "?sig=" + a.sig
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	anyAuth := s.anyAuth
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "" && !anyAuth {
		s.t.Errorf("fakegithub: the storage server received an Authorization header (%s %s): the token leaked to another host", r.Method, r.URL.Path)
		http.Error(w, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	a := s.blobs[r.PathValue("key")]
	if a == nil || a.name != r.PathValue("name") || r.URL.Query().Get("sig") != a.sig {
		s.mu.Unlock()
		http.Error(w, "<Error><Code>AccessDenied</Code></Error>", http.StatusForbidden)
		return
	}
	a.repo.stats.Downloads++
	content, paused := a.content, s.paused
	s.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(content)))
	h.Set("Content-Disposition", "attachment; filename="+strconv.Quote(a.name))
	w.WriteHeader(http.StatusOK)
	if paused != nil {
		half := len(content) / 2
		_, _ = w.Write(content[:half])
		http.NewResponseController(w).Flush()
		content = content[half:]
		select {
		case <-paused:
		case <-r.Context().Done():
			return
		}
	}
	_, _ = w.Write(content)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
