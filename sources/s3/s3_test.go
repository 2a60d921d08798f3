package s3

import (
	"bytes"
	"compress/gzip"
	"context"
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

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

const (
	bucket    = "releases"
	locked    = "locked" // a bucket the fake refuses with AccessDenied
	testKeyID = "AKIDTESTEXAMPLE"
	testKey   = "wJalrXUtnFEMI-test-secret"
)

// clock is the fake's and the source's time.
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

func (c *clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fake is gofakes3 over s3mem in an httptest server on 127.0.0.1.
type fake struct {
	url     string
	backend *s3mem.Backend
	clock   *clock

	requests atomic.Int64
	mu       sync.Mutex
	keyIDs   []string // access key IDs seen in Authorization headers
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{clock: newClock()}
	f.backend = s3mem.New(s3mem.WithTimeSource(f.clock))
	if err := f.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s3 := gofakes3.New(f.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/"+locked) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>`)
			return
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// put stores an object with the clock's current time.
func (f *fake) put(t *testing.T, key, content string) {
	t.Helper()
	if _, err := f.backend.PutObject(bucket, key, map[string]string{}, strings.NewReader(content), int64(len(content)), nil); err != nil {
		t.Fatal(err)
	}
}

// client is the agent's HTTP client, counting requests and noting the
// access key ID each was signed with.
func (f *fake) client() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		f.requests.Add(1)
		if _, rest, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
			id, _, _ := strings.Cut(rest, "/")
			f.mu.Lock()
			f.keyIDs = append(f.keyIDs, id)
			f.mu.Unlock()
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// awsEnv isolates the AWS chain from the machine: static credentials in the
// environment, no shared files, no instance metadata, no endpoint variables.
// AWS_CA_BUNDLE is left as the machine has it.
func awsEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", testKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		"AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		unsetenv(t, k)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Setenv(k, "") // restored after the test
	os.Unsetenv(k)
}

// source builds the source under test against the fake, with the endpoint option.
func (f *fake) source(t *testing.T, cfg Config) *S3 {
	t.Helper()
	if cfg.Region == "" {
		cfg.Region = "ap-northeast-1"
	}
	if cfg.Bucket == "" {
		cfg.Bucket = bucket
	}
	s, err := New(cfg, sources.Options{Logger: slog.New(slog.DiscardHandler), HTTPClient: f.client(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
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
		pageSize int32
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
			name:   "slashes around the prefix are ignored",
			prefix: "/myapp/",
			objects: []string{
				"myapp/v1.0.0/myapp_linux_amd64.tar.gz",
			},
			want: []string{"v1.0.0: myapp_linux_amd64.tar.gz"},
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
			name:        "folders and artifacts over several pages",
			prefix:      "myapp",
			pageSize:    2,
			minRequests: 3 + 6 + 1, // 6 folders in pages of 2, v1.0.0's 3 objects in 2 pages
			objects: []string{
				"myapp/v1.0.0/a_linux_amd64.tar.gz",
				"myapp/v1.0.0/a_linux_arm64.tar.gz",
				"myapp/v1.0.0/checksums.txt",
				"myapp/v1.1.0/a_linux_amd64.tar.gz",
				"myapp/v1.2.0/a_linux_amd64.tar.gz",
				"myapp/v1.2.0/a_linux_arm64.tar.gz",
				"myapp/v1.3.0/a_linux_amd64.tar.gz",
				"myapp/v1.4.0/a_linux_amd64.tar.gz",
				"myapp/v1.5.0/a_linux_amd64.tar.gz",
			},
			want: []string{
				"v1.0.0: a_linux_amd64.tar.gz a_linux_arm64.tar.gz checksums.txt",
				"v1.1.0: a_linux_amd64.tar.gz",
				"v1.2.0: a_linux_amd64.tar.gz a_linux_arm64.tar.gz",
				"v1.3.0: a_linux_amd64.tar.gz",
				"v1.4.0: a_linux_amd64.tar.gz",
				"v1.5.0: a_linux_amd64.tar.gz",
			},
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
			name:   "folder markers and sub-folders are not artifacts",
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
			want:    nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			awsEnv(t)
			f := newFake(t)
			for _, k := range tt.objects {
				f.put(t, k, "content of "+k)
			}
			s := f.source(t, Config{Prefix: tt.prefix, Endpoint: f.url})
			s.pageSize = tt.pageSize
			rels, err := s.Releases(t.Context())
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
	awsEnv(t)
	f := newFake(t)
	t0 := f.clock.Now()
	f.put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", "12345")
	f.clock.advance(10 * time.Minute)
	f.put(t, "myapp/v1.0.0/checksums.txt", "abc")
	s := f.source(t, Config{Prefix: "myapp", Endpoint: f.url})
	rels, err := s.Releases(t.Context())
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
	awsEnv(t)
	f := newFake(t)
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	f.put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", big)
	// Uploaded with Content-Encoding: gzip: must be read as stored.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat("tar bytes ", 100)))
	zw.Close()
	if _, err := f.backend.PutObject(bucket, "myapp/v1.0.0/a_linux_arm64.tar.gz", map[string]string{"Content-Encoding": "gzip"},
		bytes.NewReader(gz.Bytes()), int64(gz.Len()), nil); err != nil {
		t.Fatal(err)
	}
	s := f.source(t, Config{Prefix: "myapp", Endpoint: f.url})
	rels, err := s.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rel := rels[0]
	if len(rel.Assets) != 2 {
		t.Fatalf("assets = %+v", rel.Assets)
	}

	tests := []struct {
		name    string
		asset   version.Asset
		want    string
		wantErr error  // errors.Is
		errText string // substring
	}{
		{name: "listed asset streams", asset: rel.Assets[0], want: big},
		{name: "gzip-encoded object as stored", asset: rel.Assets[1], want: gz.String()},
		{name: "deleted object", asset: version.Asset{Name: "gone", Ref: "myapp/v1.0.0/gone"}, wantErr: sources.ErrNotFound},
		{name: "key outside the prefix", asset: version.Asset{Name: "x", Ref: "other/v1.0.0/x"}, errText: "outside the registry"},
		{name: "the prefix itself", asset: version.Asset{Name: "x", Ref: "myapp/"}, errText: "outside the registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Open(t.Context(), rel, tt.asset)
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
			awsEnv(t)
			f := newFake(t)
			f.put(t, "apps/myapp/v1.2.4/myapp_linux_amd64.tar.gz", "x")
			s := f.source(t, Config{Prefix: "apps/myapp", Endpoint: f.url})
			rels, err := s.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			at := time.Date(2025, 6, 1, 12, 30, 5, 250e6, time.UTC)
			err = s.Report(t.Context(), sources.Report{
				App: "api", Host: "web 1/a", Release: rels[0], Artifact: rels[0].Assets[0], Time: at, Err: tt.err,
			})
			if err != nil {
				t.Fatal(err)
			}
			key := "apps/myapp/v1.2.4/.dewy-reports/20250601T123005.250Z-web_1_a-api.txt"
			obj, err := f.backend.GetObject(bucket, key, nil)
			if err != nil {
				t.Fatalf("report object %s: %v", key, err)
			}
			body, _ := io.ReadAll(obj.Contents)
			obj.Contents.Close()
			text := string(body)
			for _, want := range append([]string{
				"app: api\n", "host: web 1/a\n", "version: v1.2.4\n",
				"artifact: myapp_linux_amd64.tar.gz\n", "time: 2025-06-01T12:30:05.250Z\n",
			}, tt.wantText...) {
				if !strings.Contains(text, want) {
					t.Errorf("report:\n%s\nwant it to contain %q", text, want)
				}
			}
			if strings.Contains(text, testKey) || strings.Contains(text, testKeyID) {
				t.Errorf("report holds credentials:\n%s", text)
			}

			s.cache = folders.Cache{} // make the next poll list the folder again
			rels, err = s.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := summary(rels), []string{"v1.2.4: myapp_linux_amd64.tar.gz"}; !slices.Equal(got, want) {
				t.Errorf("after the report, releases = %q, want %q", got, want)
			}
		})
	}
}

func TestReportRefusesBadTag(t *testing.T) {
	awsEnv(t)
	f := newFake(t)
	s := f.source(t, Config{Prefix: "myapp", Endpoint: f.url})
	err := s.Report(t.Context(), sources.Report{App: "api", Host: "h", Release: version.Release{Tag: "../x"}, Time: f.clock.Now()})
	if err == nil || !strings.Contains(err.Error(), "not a folder name") {
		t.Fatalf("err = %v, want a refusal of the tag", err)
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		bucket  string
		noCreds bool
		wantErr error
		want    []string
	}{
		{name: "missing bucket", bucket: "no-such-bucket", wantErr: sources.ErrNotFound,
			want: []string{`bucket "no-such-bucket" does not exist`, "s3://ap-northeast-1/no-such-bucket/myapp"}},
		{name: "access denied", bucket: locked, wantErr: ErrAccessDenied,
			want: []string{`bucket "locked"`, "AccessDenied", "AWS_ACCESS_KEY_ID", "instance role"}},
		{name: "no credentials", bucket: bucket, noCreds: true, wantErr: ErrAccessDenied,
			want: []string{"no usable AWS credentials", `bucket "releases"`, "AWS_PROFILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			awsEnv(t)
			if tt.noCreds {
				unsetenv(t, "AWS_ACCESS_KEY_ID")
				unsetenv(t, "AWS_SECRET_ACCESS_KEY")
			}
			f := newFake(t)
			s := f.source(t, Config{Bucket: tt.bucket, Prefix: "myapp", Endpoint: f.url})
			_, err := s.Releases(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("err holds the secret key: %v", err)
			}
		})
	}
}

func TestEndpointAndCredentials(t *testing.T) {
	tests := []struct {
		name   string
		option bool   // pass the fake's URL as ?endpoint=
		env    string // AWS_ENDPOINT_URL: "fake" for the fake's URL
	}{
		{name: "endpoint option", option: true},
		{name: "AWS_ENDPOINT_URL", env: "fake"},
		{name: "option wins over AWS_ENDPOINT_URL", option: true, env: "http://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			awsEnv(t)
			f := newFake(t)
			f.put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", "x")
			switch tt.env {
			case "":
			case "fake":
				t.Setenv("AWS_ENDPOINT_URL", f.url)
			default:
				t.Setenv("AWS_ENDPOINT_URL", tt.env)
			}
			cfg := Config{Prefix: "myapp"}
			if tt.option {
				cfg.Endpoint = f.url
			}
			s := f.source(t, cfg)
			rels, err := s.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := summary(rels), []string{"v1.0.0: a_linux_amd64.tar.gz"}; !slices.Equal(got, want) {
				t.Errorf("releases = %q, want %q", got, want)
			}
			if f.requests.Load() == 0 {
				t.Error("no request went through the agent's HTTP client")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, id := range f.keyIDs {
				if id != testKeyID {
					t.Errorf("request signed with key ID %q, want %q from the environment", id, testKeyID)
				}
			}
			if len(f.keyIDs) == 0 {
				t.Error("no signed request")
			}
		})
	}
}

// TestPollCost checks which folders a poll lists again.
func TestPollCost(t *testing.T) {
	awsEnv(t)
	f := newFake(t)
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v2.0.0-rc.1"} {
		f.put(t, "myapp/"+v+"/a_linux_amd64.tar.gz", v)
	}
	f.put(t, "myapp/latest/a_linux_amd64.tar.gz", "x")
	s := f.source(t, Config{Prefix: "myapp", Endpoint: f.url})

	poll := func(step string, want int64, wantSummary []string) {
		t.Helper()
		before := f.requests.Load()
		rels, err := s.Releases(t.Context())
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
	f.put(t, "myapp/v1.0.0/a_darwin_arm64.tar.gz", "late")
	// ... but a new folder and a late upload to the highest version are.
	f.put(t, "myapp/v1.4.0/a_linux_amd64.tar.gz", "new")
	f.put(t, "myapp/v2.0.0-rc.1/a_darwin_arm64.tar.gz", "late")
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
	if _, err := f.backend.DeleteObject(bucket, "myapp/v1.1.0/a_linux_amd64.tar.gz"); err != nil {
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
	awsEnv(t)
	f := newFake(t)
	s := f.source(t, Config{Prefix: "myapp", Endpoint: f.url})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	_, err := s.Releases(ctx)
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
		{name: "ok", cfg: Config{Region: "ap-northeast-1", Bucket: "b", Prefix: "a/b"}},
		{name: "empty prefix", cfg: Config{Region: "us-east-1", Bucket: "b"}},
		{name: "endpoint", cfg: Config{Region: "jp-north-1", Bucket: "b", Endpoint: "https://s3.isk01.sakurastorage.jp"}},
		{name: "no region", cfg: Config{Bucket: "b"}, want: "region is empty"},
		{name: "no bucket", cfg: Config{Region: "us-east-1"}, want: "bucket is empty"},
		{name: "bad bucket", cfg: Config{Region: "us-east-1", Bucket: "a b"}, want: "not a bucket name"},
		{name: "empty element", cfg: Config{Region: "us-east-1", Bucket: "b", Prefix: "a//b"}, want: "empty"},
		{name: "dot dot", cfg: Config{Region: "us-east-1", Bucket: "b", Prefix: "a/../b"}, want: `".."`},
		{name: "endpoint not http", cfg: Config{Region: "us-east-1", Bucket: "b", Endpoint: "s3.example.com"}, want: "want an http or https URL"},
		{name: "endpoint with user info", cfg: Config{Region: "us-east-1", Bucket: "b", Endpoint: "https://key:secret@s3.example.com"}, want: "without user info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg, sources.Options{HTTPClient: http.DefaultClient})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.client != nil {
					t.Error("New built the client")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("err shows the endpoint's password: %v", err)
			}
		})
	}
}

func TestReportText(t *testing.T) {
	r := sources.Report{App: "api", Host: "h", Release: version.Release{Tag: "v1"}, Time: time.Unix(0, 0), Err: errors.New(strings.Repeat("x", 5000))}
	text := sources.ReportText(r)
	if !bytes.Contains(text, []byte("x...\n")) || len(text) > 4500 {
		t.Errorf("long error not cut: %d bytes", len(text))
	}
}
