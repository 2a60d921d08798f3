package gs

import (
	"bytes"
	"compress/gzip"
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

	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
	"github.com/dewy-agent/dewy-agent/sources/folders/folderstest"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

const (
	bucket    = "releases"
	locked    = "locked" // a bucket the fake refuses with 403
	testToken = "ya29.test-access-token"
)

// fake is fake-gcs-server behind an httptest server on 127.0.0.1 that counts
// requests and refuses the "locked" bucket.
type fake struct {
	srv   *fakestorage.Server
	url   string // http://127.0.0.1:port
	host  string // 127.0.0.1:port
	clock *folderstest.Clock

	requests atomic.Int64
	mu       sync.Mutex
	auths    []string // Authorization headers seen
}

func newFake(t *testing.T) *fake {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	f := &fake{host: ts.Listener.Addr().String(), clock: &folderstest.Clock{}}
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

// registry is an empty bucket on a fresh fake, for the folder registry contract.
func registry(t *testing.T) folderstest.Registry {
	f := newFake(t)
	f.emulatorEnv(t)
	return folderstest.Registry{
		Put: func(t *testing.T, key string, content []byte, at time.Time) {
			f.srv.CreateObject(fakestorage.Object{
				ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: key, Created: at, Updated: at},
				Content:     content,
			})
		},
		Delete: func(t *testing.T, key string) {
			if err := f.srv.Backend().DeleteObject(bucket, key); err != nil {
				t.Fatal(err)
			}
		},
		Get: func(t *testing.T, key string) []byte {
			obj, err := f.srv.GetObject(bucket, key)
			if err != nil {
				t.Fatalf("object %s: %v", key, err)
			}
			return obj.Content
		},
		SetNow:      f.clock.Set,
		Requests:    f.requests.Load,
		SetPageSize: func(src folderstest.Source, n int) { src.(*GCS).pageSize = n },
		Source: func(t *testing.T, prefix string) folderstest.Source {
			return f.source(t, Config{Prefix: prefix})
		},
	}
}

func TestContract(t *testing.T) { folderstest.Run(t, registry) }

func TestReportContentType(t *testing.T) {
	f := newFake(t)
	f.emulatorEnv(t)
	g := f.source(t, Config{Prefix: "myapp"})
	r := sources.Report{App: "api", Host: "h", Release: version.Release{Tag: "v1.0.0"}, Time: f.clock.Now()}
	if err := g.Report(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	key, _ := folders.ReportKey("myapp/", r)
	obj, err := f.srv.GetObject(bucket, key)
	if err != nil {
		t.Fatalf("report object %s: %v", key, err)
	}
	if obj.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("content type %q", obj.ContentType)
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
			testkit.ErrorContains(t, err, tt.want...)
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
	if got, want := folderstest.Summary(rels), []string{"v1.0.0: a_linux_amd64.tar.gz a_linux_arm64.tar.gz"}; !slices.Equal(got, want) {
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

// TestNew checks that New refuses a bad location (the rules are folders.Location's)
// and builds no client.
func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // error substring; "" for success
	}{
		{name: "ok", cfg: Config{Bucket: "b", Prefix: "a/b"}},
		{name: "empty prefix", cfg: Config{Bucket: "b"}},
		{name: "no bucket", cfg: Config{}, want: "bucket is empty"},
		{name: "dot dot", cfg: Config{Bucket: "b", Prefix: "a/../b"}, want: `".."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.cfg, sources.Options{HTTPClient: http.DefaultClient})
			if testkit.ExpectError(t, err, tt.want) && g.client != nil {
				t.Error("New built the client")
			}
		})
	}
}
