package s3

import (
	"bytes"
	"compress/gzip"
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

	"github.com/aws/smithy-go/logging"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
	"github.com/dewy-agent/dewy-agent/sources/folders/folderstest"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

const (
	bucket    = "releases"
	locked    = "locked" // a bucket the fake refuses with AccessDenied
	testKeyID = "AKIDTESTEXAMPLE"
	testKey   = "wJalrXUtnFEMI-test-secret"
)

// fake is gofakes3 over s3mem in an httptest server on 127.0.0.1.
type fake struct {
	url     string
	backend *s3mem.Backend
	clock   *folderstest.Clock

	requests atomic.Int64
	mu       sync.Mutex
	keyIDs   []string // access key IDs seen in Authorization headers
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{clock: &folderstest.Clock{}}
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

// registry is an empty bucket on a fresh fake, for the folder registry contract.
func registry(t *testing.T) folderstest.Registry {
	awsEnv(t)
	f := newFake(t)
	return folderstest.Registry{
		Put: func(t *testing.T, key string, content []byte, at time.Time) {
			f.clock.Set(at)
			f.put(t, key, string(content))
		},
		Delete: func(t *testing.T, key string) {
			if _, err := f.backend.DeleteObject(bucket, key); err != nil {
				t.Fatal(err)
			}
		},
		Get: func(t *testing.T, key string) []byte {
			obj, err := f.backend.GetObject(bucket, key, nil)
			if err != nil {
				t.Fatalf("object %s: %v", key, err)
			}
			defer obj.Contents.Close()
			b, err := io.ReadAll(obj.Contents)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		SetNow:      f.clock.Set,
		Requests:    f.requests.Load,
		SetPageSize: func(src folderstest.Source, n int) { src.(*S3).pageSize = int32(n) },
		Source: func(t *testing.T, prefix string) folderstest.Source {
			return f.source(t, Config{Prefix: prefix, Endpoint: f.url})
		},
	}
}

func TestContract(t *testing.T) { folderstest.Run(t, registry) }

func TestOpenGzipEncoded(t *testing.T) {
	awsEnv(t)
	f := newFake(t)
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
	if got := folderstest.ReadAsset(t, s, rels[0], rels[0].Assets[0]); !bytes.Equal(got, gz.Bytes()) {
		t.Errorf("read %d bytes, want the %d stored bytes", len(got), gz.Len())
	}
}

// TestReportHasNoSecrets: the report object holds no credential and a bad
// tag is refused before any request.
func TestReportHasNoSecrets(t *testing.T) {
	awsEnv(t)
	f := newFake(t)
	s := f.source(t, Config{Prefix: "myapp", Endpoint: f.url})
	err := s.Report(t.Context(), sources.Report{App: "api", Host: "h", Release: version.Release{Tag: "../x"}, Time: f.clock.Now()})
	if err == nil {
		t.Fatal("a report with a bad tag was written")
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests sent for a refused report, want none", n)
	}
	f.put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", "x")
	rel := version.Release{Tag: "v1.0.0"}
	if err := s.Report(t.Context(), sources.Report{App: "api", Host: "h", Release: rel, Time: f.clock.Now(), Err: errors.New("boom")}); err != nil {
		t.Fatal(err)
	}
	key, _ := folders.ReportKey("myapp/", sources.Report{App: "api", Host: "h", Release: rel, Time: f.clock.Now()})
	obj, err := f.backend.GetObject(bucket, key, nil)
	if err != nil {
		t.Fatalf("report object %s: %v", key, err)
	}
	body, _ := io.ReadAll(obj.Contents)
	obj.Contents.Close()
	if text := string(body); strings.Contains(text, testKey) || strings.Contains(text, testKeyID) {
		t.Errorf("report holds credentials:\n%s", text)
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
			testkit.ErrorContains(t, err, tt.want...)
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
			if got, want := folderstest.Summary(rels), []string{"v1.0.0: a_linux_amd64.tar.gz"}; !slices.Equal(got, want) {
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

// TestNew checks that New refuses a bad location (the rules are folders.Location's)
// and builds no client.
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
		{name: "dot dot", cfg: Config{Region: "us-east-1", Bucket: "b", Prefix: "a/../b"}, want: `".."`},
		{name: "endpoint not http", cfg: Config{Region: "us-east-1", Bucket: "b", Endpoint: "s3.example.com"}, want: "want an http or https URL"},
		{name: "endpoint with user info", cfg: Config{Region: "us-east-1", Bucket: "b", Endpoint: "https://key:secret@s3.example.com"}, want: "without user info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg, sources.Options{HTTPClient: http.DefaultClient})
			if testkit.ExpectError(t, err, tt.want) && s.client != nil {
				t.Error("New built the client")
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
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

// TestSDKWarningsAreDebug: the SDK's warnings (such as "falling back to
// IMDSv1") never reach an info-level log, so plan and validate print no
// library noise.
func TestSDKWarningsAreDebug(t *testing.T) {
	var buf bytes.Buffer
	l := sdkLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Logf(logging.Warn, "falling back to IMDSv1: %s", "no token")
	if buf.Len() != 0 {
		t.Fatalf("an SDK warning was logged at info: %s", buf.String())
	}
	buf.Reset()
	l = sdkLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Logf(logging.Warn, "falling back to IMDSv1: %s", "no token")
	if !strings.Contains(buf.String(), "falling back to IMDSv1: no token") {
		t.Fatalf("not at debug either: %q", buf.String())
	}
}
