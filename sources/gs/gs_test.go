package gs

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

const (
	bucket    = "releases"
	locked    = "locked" // a bucket the fake refuses with 403
	testToken = "ya29.test-access-token"
)

// clock is the source's time, and the time objects are created at.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fake is fake-gcs-server behind an httptest server on 127.0.0.1 that counts
// requests and refuses the "locked" bucket.
type fake struct {
	srv   *fakestorage.Server
	url   string // http://127.0.0.1:port
	host  string // 127.0.0.1:port
	clock *clock

	requests atomic.Int64
	mu       sync.Mutex
	auths    []string // Authorization headers seen
}

func newFake(t *testing.T) *fake {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	f := &fake{host: ts.Listener.Addr().String(), clock: newClock()}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme:     "http",
		Host:       "127.0.0.1",
		NoListener: true,
		PublicHost: f.host,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.CreateBucket(bucket)
	f.srv = srv
	h := srv.HTTPHandler()
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		f.mu.Lock()
		f.auths = append(f.auths, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if strings.Contains(r.URL.Path, "/b/"+locked+"/") || strings.HasPrefix(r.URL.Path, "/"+locked+"/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"code":403,"message":"caller does not have storage.objects.list access",`+
				`"errors":[{"message":"forbidden","domain":"global","reason":"forbidden"}]}}`)
			return
		}
		h.ServeHTTP(w, r)
	})
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Stop)
	f.url = ts.URL
	return f
}

// put stores an object created at the clock's current time.
func (f *fake) put(key, content string) {
	now := f.clock.Now()
	f.srv.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: key, Created: now, Updated: now},
		Content:     []byte(content),
	})
}

// emulatorEnv points the library at the fake through STORAGE_EMULATOR_HOST.
func (f *fake) emulatorEnv(t *testing.T) {
	t.Helper()
	googleEnv(t)
	t.Setenv("STORAGE_EMULATOR_HOST", f.host)
}

// googleEnv isolates the credential lookup from the machine.
func googleEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT",
		"GOOGLE_API_GO_EXPERIMENTAL_ENABLE_NEW_AUTH_LIB", "GOOGLE_API_GO_EXPERIMENTAL_DISABLE_NEW_AUTH_LIB"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
}

// client is the agent's HTTP client.
func client() *http.Client {
	return &http.Client{Transport: http.DefaultTransport}
}

func (f *fake) source(t *testing.T, cfg Config) *GCS {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = bucket
	}
	g, err := New(cfg, sources.Options{Logger: slog.New(slog.DiscardHandler), HTTPClient: client(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// summary is "tag: asset asset" per release, sorted.
func summary(rels []version.Release) []string {
	var out []string
	for _, r := range rels {
		var names []string
		for _, a := range r.Assets {
			names = append(names, a.Name)
		}
		slices.Sort(names)
		out = append(out, strings.TrimSpace(r.Tag+": "+strings.Join(names, " ")))
	}
	slices.Sort(out)
	return out
}

func TestReleases(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		pageSize int
		objects  []string
		want     []string
		// minRequests proves paging: more requests than folders + 1.
		minRequests int64
	}{
		{
			name:   "nested prefix",
			prefix: "team/apps/myapp",
			objects: []string{
				"team/apps/myapp/v1.2.4/myapp_linux_amd64.tar.gz",
				"team/apps/myapp/v1.2.4/myapp_darwin_arm64.tar.gz",
				"team/apps/myapp/v1.2.3/myapp_linux_amd64.tar.gz",
				"team/apps/other/v9.0.0/other_linux_amd64.tar.gz",
				"team/apps/myapp2/v9.0.0/myapp2_linux_amd64.tar.gz", // a sibling sharing the name's start
			},
			want: []string{
				"v1.2.3: myapp_linux_amd64.tar.gz",
				"v1.2.4: myapp_darwin_arm64.tar.gz myapp_linux_amd64.tar.gz",
			},
		},
		{
			name:    "slashes around the prefix are ignored",
			prefix:  "/myapp/",
			objects: []string{"myapp/v1.0.0/myapp_linux_amd64.tar.gz"},
			want:    []string{"v1.0.0: myapp_linux_amd64.tar.gz"},
		},
		{
			name:   "empty prefix",
			prefix: "",
			objects: []string{
				"v1.0.0/a_linux_amd64.tar.gz",
				"1.1.0/a_linux_amd64.tar.gz",
				"README.md", // an object at the top is not a release
			},
			want: []string{
				"1.1.0: a_linux_amd64.tar.gz",
				"v1.0.0: a_linux_amd64.tar.gz",
			},
		},
		{
			name:     "artifacts over several pages",
			prefix:   "myapp",
			pageSize: 2,
			objects: []string{
				"myapp/v1.0.0/a_linux_amd64.tar.gz",
				"myapp/v1.0.0/a_linux_arm64.tar.gz",
				"myapp/v1.0.0/a_darwin_arm64.tar.gz",
				"myapp/v1.0.0/a_windows_amd64.zip",
				"myapp/v1.0.0/checksums.txt",
				"myapp/v1.1.0/a_linux_amd64.tar.gz",
				"myapp/v1.2.0/a_linux_amd64.tar.gz",
				"myapp/v1.2.0/a_linux_arm64.tar.gz",
				"myapp/v1.2.0/checksums.txt",
			},
			want: []string{
				"v1.0.0: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz a_linux_arm64.tar.gz a_windows_amd64.zip checksums.txt",
				"v1.1.0: a_linux_amd64.tar.gz",
				"v1.2.0: a_linux_amd64.tar.gz a_linux_arm64.tar.gz checksums.txt",
			},
			minRequests: 1 + 3 + 1 + 2, // v1.0.0's 5 objects in 3 pages, v1.2.0's 3 in 2
		},
		{
			name:   "pre-releases and non-version folders are listed for the engine",
			prefix: "myapp",
			objects: []string{
				"myapp/v1.0.0/a_linux_amd64.tar.gz",
				"myapp/v1.1.0-rc.1/a_linux_amd64.tar.gz",
				"myapp/latest/a_linux_amd64.tar.gz",
			},
			want: []string{
				"latest:", // not opened: its contents are never listed
				"v1.0.0: a_linux_amd64.tar.gz",
				"v1.1.0-rc.1: a_linux_amd64.tar.gz",
			},
		},
		{
			name:   "placeholders and sub-folders are not artifacts",
			prefix: "myapp",
			objects: []string{
				"myapp/v1.0.0/",
				"myapp/v1.0.0/a_linux_amd64.tar.gz",
				"myapp/v1.0.0/.dewy-reports/20250601T120000.000Z-web1-api.txt",
				"myapp/v1.0.0/docs/guide.md",
				"myapp/v2.0.0/.dewy-reports/20250601T120000.000Z-web1-api.txt",
			},
			want: []string{
				"v1.0.0: a_linux_amd64.tar.gz",
				"v2.0.0:",
			},
		},
		{
			name:    "no folders",
			prefix:  "nothing-here",
			objects: []string{"myapp/v1.0.0/a_linux_amd64.tar.gz"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.emulatorEnv(t)
			for _, k := range tt.objects {
				f.put(k, "content of "+k)
			}
			g := f.source(t, Config{Prefix: tt.prefix})
			g.pageSize = tt.pageSize
			rels, err := g.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(rels); !slices.Equal(got, tt.want) {
				t.Errorf("releases:\n got %q\nwant %q", got, tt.want)
			}
			if n := f.requests.Load(); n < tt.minRequests {
				t.Errorf("%d requests, want at least %d (paging)", n, tt.minRequests)
			}
		})
	}
}

func TestReleaseFields(t *testing.T) {
	f := newFake(t)
	f.emulatorEnv(t)
	t0 := f.clock.Now()
	f.put("myapp/v1.0.0/a_linux_amd64.tar.gz", "12345")
	f.clock.advance(10 * time.Minute)
	f.put("myapp/v1.0.0/checksums.txt", "abc")
	g := f.source(t, Config{Prefix: "myapp"})
	rels, err := g.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 {
		t.Fatalf("got %d releases, want 1", len(rels))
	}
	r := rels[0]
	if !r.Created.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("Created = %v, want the newest object's time %v", r.Created, t0.Add(10*time.Minute))
	}
	want := []version.Asset{
		{Name: "a_linux_amd64.tar.gz", Ref: "myapp/v1.0.0/a_linux_amd64.tar.gz", Size: 5, Created: t0},
		{Name: "checksums.txt", Ref: "myapp/v1.0.0/checksums.txt", Size: 3, Created: t0.Add(10 * time.Minute)},
	}
	if len(r.Assets) != len(want) {
		t.Fatalf("assets = %+v, want %+v", r.Assets, want)
	}
	for i, a := range r.Assets {
		if a.Name != want[i].Name || a.Ref != want[i].Ref || a.Size != want[i].Size || !a.Created.Equal(want[i].Created) {
			t.Errorf("asset %d = %+v, want %+v", i, a, want[i])
		}
	}
}

func TestOpen(t *testing.T) {
	f := newFake(t)
	f.emulatorEnv(t)
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	f.put("myapp/v1.0.0/a_linux_amd64.tar.gz", big)
	g := f.source(t, Config{Prefix: "myapp"})
	rels, err := g.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rel := rels[0]

	tests := []struct {
		name    string
		asset   version.Asset
		want    string
		wantErr error  // errors.Is
		errText string // substring
	}{
		{name: "listed asset streams", asset: rel.Assets[0], want: big},
		{name: "deleted object", asset: version.Asset{Name: "gone", Ref: "myapp/v1.0.0/gone"}, wantErr: sources.ErrNotFound},
		{name: "name outside the prefix", asset: version.Asset{Name: "x", Ref: "other/v1.0.0/x"}, errText: "outside the registry"},
		{name: "the prefix itself", asset: version.Asset{Name: "x", Ref: "myapp/"}, errText: "outside the registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := g.Open(t.Context(), rel, tt.asset)
			if tt.wantErr != nil || tt.errText != "" {
				if err == nil {
					r.Close()
					t.Fatal("Open succeeded, want an error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("err = %v, want it to contain %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("read %d bytes, want %d bytes of the object", len(got), len(tt.want))
			}
		})
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantText []string
	}{
		{name: "success", wantText: []string{"result: success\n"}},
		{name: "failure", err: errors.New("health check failed:\nstatus 500"),
			wantText: []string{"result: failure\n", "error: health check failed: status 500\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.emulatorEnv(t)
			f.put("apps/myapp/v1.2.4/myapp_linux_amd64.tar.gz", "x")
			g := f.source(t, Config{Prefix: "apps/myapp"})
			rels, err := g.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			at := time.Date(2025, 6, 1, 12, 30, 5, 250e6, time.UTC)
			err = g.Report(t.Context(), sources.Report{
				App: "api", Host: "web 1/a", Release: rels[0], Artifact: rels[0].Assets[0], Time: at, Err: tt.err,
			})
			if err != nil {
				t.Fatal(err)
			}
			name := "apps/myapp/v1.2.4/.dewy-reports/20250601T123005.250Z-web_1_a-api.txt"
			obj, err := f.srv.GetObject(bucket, name)
			if err != nil {
				t.Fatalf("report object %s: %v", name, err)
			}
			text := string(obj.Content)
			for _, want := range append([]string{
				"app: api\n", "host: web 1/a\n", "version: v1.2.4\n",
				"artifact: myapp_linux_amd64.tar.gz\n", "time: 2025-06-01T12:30:05.250Z\n",
			}, tt.wantText...) {
				if !strings.Contains(text, want) {
					t.Errorf("report:\n%s\nwant it to contain %q", text, want)
				}
			}
			if obj.ContentType != "text/plain; charset=utf-8" {
				t.Errorf("content type %q", obj.ContentType)
			}

			g.cache = folders.Cache{} // make the next poll list the folder again
			rels, err = g.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := summary(rels), []string{"v1.2.4: myapp_linux_amd64.tar.gz"}; !slices.Equal(got, want) {
				t.Errorf("after the report, releases = %q, want %q", got, want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		bucket  string
		noCreds bool // no emulator and a credentials file that does not exist
		wantErr error
		want    []string
	}{
		{name: "missing bucket", bucket: "no-such-bucket", wantErr: sources.ErrNotFound,
			want: []string{`bucket "no-such-bucket" does not exist`, "gs://no-such-bucket/myapp"}},
		{name: "access denied", bucket: locked, wantErr: ErrAccessDenied,
			want: []string{`bucket "locked"`, "HTTP 403", "GOOGLE_APPLICATION_CREDENTIALS"}},
		{name: "no credentials", bucket: bucket, noCreds: true, wantErr: ErrAccessDenied,
			want: []string{"no usable Google application default credentials", "STORAGE_EMULATOR_HOST", "gs://releases/myapp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.emulatorEnv(t)
			if tt.noCreds {
				googleEnv(t)
				t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
			}
			g := f.source(t, Config{Bucket: tt.bucket, Prefix: "myapp"})
			_, err := g.Releases(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if tt.noCreds && f.requests.Load() != 0 {
				t.Errorf("%d requests sent without credentials", f.requests.Load())
			}
		})
	}
}

// TestCredentials runs the non-emulator path: application default credentials
// from a service account key whose token endpoint is local, with requests
// going through the agent's HTTP client carrying the token.
func TestCredentials(t *testing.T) {
	f := newFake(t)
	googleEnv(t)
	f.put("myapp/v1.0.0/a_linux_amd64.tar.gz", "artifact")
	// Uploaded with Content-Encoding: gzip (gsutil cp -Z): must be read as stored.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat("tar bytes ", 100)))
	zw.Close()
	now := f.clock.Now()
	f.srv.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: "myapp/v1.0.0/a_linux_arm64.tar.gz",
			ContentEncoding: "gzip", Created: now, Updated: now},
		Content: gz.Bytes(),
	})

	var tokenRequests atomic.Int64
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"`+testToken+`","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokens.Close)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", serviceAccountKey(t, tokens.URL))

	var agentRequests atomic.Int64
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		agentRequests.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	g, err := New(Config{Bucket: bucket, Prefix: "myapp"}, sources.Options{HTTPClient: hc, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	g.endpoint = f.url + "/storage/v1/"

	rels, err := g.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(rels), []string{"v1.0.0: a_linux_amd64.tar.gz a_linux_arm64.tar.gz"}; !slices.Equal(got, want) {
		t.Fatalf("releases = %q, want %q", got, want)
	}
	for _, a := range rels[0].Assets {
		want := "artifact"
		if a.Name == "a_linux_arm64.tar.gz" {
			want = gz.String()
		}
		r, err := g.Open(t.Context(), rels[0], a)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(body) != want {
			t.Errorf("%s: read %d bytes (%v), want the %d bytes stored", a.Name, len(body), err, len(want))
		}
	}
	if err := g.Report(t.Context(), sources.Report{App: "api", Host: "h", Release: rels[0], Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}

	if tokenRequests.Load() == 0 {
		t.Error("no token was fetched")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := agentRequests.Load(); got != int64(len(f.auths)) {
		t.Errorf("%d requests through the agent's client, %d at the fake: want all of them through it", got, len(f.auths))
	}
	for _, a := range f.auths {
		if a != "Bearer "+testToken {
			t.Errorf("request with Authorization %q, want the ADC token", a)
		}
	}
}

// serviceAccountKey writes a service account key file whose token endpoint
// is tokenURL, and returns its path.
func serviceAccountKey(t *testing.T, tokenURL string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "test-project",
		"private_key_id": "test-key-id",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "dewy@test-project.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      tokenURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPollCost checks which folders a poll lists again.
func TestPollCost(t *testing.T) {
	f := newFake(t)
	f.emulatorEnv(t)
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v2.0.0-rc.1"} {
		f.put("myapp/"+v+"/a_linux_amd64.tar.gz", v)
	}
	f.put("myapp/latest/a_linux_amd64.tar.gz", "x")
	g := f.source(t, Config{Prefix: "myapp"})

	poll := func(step string, want int64, wantSummary []string) {
		t.Helper()
		before := f.requests.Load()
		rels, err := g.Releases(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := f.requests.Load() - before; got != want {
			t.Errorf("%s: %d requests, want %d", step, got, want)
		}
		if wantSummary != nil {
			if got := summary(rels); !slices.Equal(got, wantSummary) {
				t.Errorf("%s: releases = %q, want %q", step, got, wantSummary)
			}
		}
	}
	// Everything is new: 1 folder listing + 5 version folders ("latest" is not opened).
	poll("first poll", 6, nil)
	// Listed when fresh: not quiet, so all are listed again.
	poll("second poll, folders recent", 6, nil)

	f.clock.advance(2 * time.Hour)
	// Quiet now, but the cached listings were made while they were recent.
	poll("first poll after an hour", 6, nil)
	// Steady state: the folder listing, v2.0.0-rc.1 (highest) and v1.3.0 (highest release).
	poll("steady poll", 3, nil)

	// A late upload to an old, cached folder is not seen ...
	f.put("myapp/v1.0.0/a_darwin_arm64.tar.gz", "late")
	// ... but a new folder and a late upload to the highest version are.
	f.put("myapp/v1.4.0/a_linux_amd64.tar.gz", "new")
	f.put("myapp/v2.0.0-rc.1/a_darwin_arm64.tar.gz", "late")
	poll("new folder", 3, []string{
		"latest:",
		"v1.0.0: a_linux_amd64.tar.gz",
		"v1.1.0: a_linux_amd64.tar.gz",
		"v1.2.0: a_linux_amd64.tar.gz",
		"v1.3.0: a_linux_amd64.tar.gz",
		"v1.4.0: a_linux_amd64.tar.gz",
		"v2.0.0-rc.1: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz",
	})

	// A removed folder leaves the list.
	if err := f.srv.Backend().DeleteObject(bucket, "myapp/v1.1.0/a_linux_amd64.tar.gz"); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(25 * time.Hour)
	// A day later every folder is listed again, and the late upload shows.
	poll("a day later", 6, []string{
		"latest:",
		"v1.0.0: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz",
		"v1.2.0: a_linux_amd64.tar.gz",
		"v1.3.0: a_linux_amd64.tar.gz",
		"v1.4.0: a_linux_amd64.tar.gz",
		"v2.0.0-rc.1: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz",
	})
	// The folder listing, v2.0.0-rc.1 and v1.4.0.
	poll("steady again", 3, nil)
}

func TestCancelled(t *testing.T) {
	f := newFake(t)
	f.emulatorEnv(t)
	g := f.source(t, Config{Prefix: "myapp"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	_, err := g.Releases(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // error substring; "" for success
	}{
		{name: "ok", cfg: Config{Bucket: "b", Prefix: "a/b"}},
		{name: "empty prefix", cfg: Config{Bucket: "b"}},
		{name: "no bucket", cfg: Config{}, want: "bucket is empty"},
		{name: "bad bucket", cfg: Config{Bucket: "a b"}, want: "not a bucket name"},
		{name: "empty element", cfg: Config{Bucket: "b", Prefix: "a//b"}, want: "empty"},
		{name: "dot dot", cfg: Config{Bucket: "b", Prefix: "a/../b"}, want: `".."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.cfg, sources.Options{HTTPClient: http.DefaultClient})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if g.client != nil {
					t.Error("New built the client")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
