package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dewy-agent/dewy-agent/internal/fakegcs"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/sources/grpc/dewypb"
)

// These tests run the agent end to end against fakes that speak each registry's
// real protocol, driven by the real client libraries: a release is deployed, a
// newer one appears and is deployed, a report is written, and a broken registry
// is reported without affecting the app beside it.

// site is a release's artifact: a tar.gz with index.html naming the version.
func site(v string) []byte { return testkit.TarGz(map[string]string{"index.html": v + "\n"}) }

// registryConfig is a config with one working app on url and one broken app on bad.
func registryConfig(state, url, bad string) string {
	return fmt.Sprintf(`
agent {
  state_dir = %q
  admin     = ""
}
app "good" {
  registry = %q
  interval = "1s"
  report   = true
  runner "assets" {}
}
app "broken" {
  registry = %q
  interval = "1s"
  runner "assets" {}
}
`, state, url, bad)
}

// runRegistry starts the agent on text and checks the common story: v1.0.0
// deployed, publish(v1.1.0) deployed, and the broken app failing with wantErr.
func runRegistry(t *testing.T, text string, publish func(v string), wantErr string) *Agent {
	t.Helper()
	e := newEnv(t)
	e.write(text)
	a := e.start(Options{})
	w := func() *worker { return a.worker("good") }
	waitFor(t, "v1.0.0 deployed", func() bool { return w() != nil && w().snapshot().Deployed == "v1.0.0" })
	publish("v1.1.0")
	waitFor(t, "v1.1.0 deployed", func() bool { return w().snapshot().Deployed == "v1.1.0" })
	body, err := os.ReadFile(filepath.Join(w().dir, "current", "index.html"))
	if err != nil || string(body) != "v1.1.0\n" {
		t.Fatalf("current serves %q, %v", body, err)
	}
	waitFor(t, "the broken app's error", func() bool {
		b := a.worker("broken")
		return b != nil && strings.Contains(b.snapshot().LastError, wantErr)
	})
	if s := a.worker("broken").snapshot(); s.State != StateFailed || s.Deployed != "" {
		t.Fatalf("broken app status = %+v", s)
	}
	return a
}

// s3Fake is gofakes3 on 127.0.0.1 with a bucket "releases"; paths under
// /locked answer 403 AccessDenied. It counts requests.
type s3Fake struct {
	url      string
	backend  *s3mem.Backend
	requests atomic.Int64
}

func newS3Fake(t testing.TB) *s3Fake {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	// Objects are two hours old, as most of a real registry's are.
	f := &s3Fake{backend: s3mem.New(s3mem.WithTimeSource(gofakes3.FixedTimeSource(time.Now().Add(-2 * time.Hour))))}
	f.backend.CreateBucket("releases")
	fake := gofakes3.New(f.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if strings.HasPrefix(r.URL.Path, "/locked") {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// put publishes v as site/<v>/site.tar.gz.
func (f *s3Fake) put(t testing.TB, v string) {
	b := site(v)
	if _, err := f.backend.PutObject("releases", "site/"+v+"/site.tar.gz", map[string]string{}, bytes.NewReader(b), int64(len(b)), nil); err != nil {
		t.Fatal(err)
	}
}

func TestS3EndToEnd(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	f := newS3Fake(t)
	f.put(t, "v1.0.0")
	runRegistry(t,
		registryConfig(t.TempDir(), "s3://us-east-1/releases/site?artifact=site.tar.gz&endpoint="+f.url, "s3://us-east-1/locked/site?endpoint="+f.url),
		func(v string) { f.put(t, v) }, "access denied")

	// Reports of both deploys are in each version's folder.
	waitFor(t, "reports", func() bool {
		n := 0
		for _, v := range []string{"v1.0.0", "v1.1.0"} {
			list, err := f.backend.ListBucket("releases", &gofakes3.Prefix{Prefix: "site/" + v + "/.dewy-reports/", HasPrefix: true}, gofakes3.ListBucketPage{})
			if err == nil {
				n += len(list.Contents)
			}
		}
		return n == 2
	})
}

// gcsFake is fake-gcs-server on 127.0.0.1 with a bucket "releases", found by
// the client through STORAGE_EMULATOR_HOST. It counts requests.
type gcsFake struct {
	srv      *fakestorage.Server
	requests atomic.Int64
}

func newGCSFake(t testing.TB) *gcsFake {
	f := &gcsFake{}
	var host string
	f.srv, host = fakegcs.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.requests.Add(1)
			h.ServeHTTP(w, r)
		})
	}, "releases")
	t.Setenv("STORAGE_EMULATOR_HOST", host)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())
	return f
}

// put publishes v as site/<v>/site.tar.gz, an hour old.
func (f *gcsFake) put(v string) {
	now := time.Now().Add(-time.Hour)
	f.srv.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "releases", Name: "site/" + v + "/site.tar.gz", Created: now, Updated: now},
		Content:     site(v),
	})
}

func TestGCSEndToEnd(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	f := newGCSFake(t)
	f.put("v1.0.0")
	runRegistry(t, registryConfig(t.TempDir(), "gs://releases/site?artifact=site.tar.gz", "gs://missing-bucket/site"), f.put, "not found")

	waitFor(t, "reports", func() bool {
		objs, _, err := f.srv.ListObjectsWithOptions("releases", fakestorage.ListOptions{Prefix: "site/v1.1.0/.dewy-reports/"})
		return err == nil && len(objs) == 1
	})
}

// grpcRegistry is an in-process dewy.RegistryService: it answers Current with
// the newest published version and records Report calls.
type grpcRegistry struct {
	dewypb.UnimplementedRegistryServiceServer
	base string // HTTP base URL of the artifacts

	mu      sync.Mutex
	tag     string
	fail    error // Current's answer while set: a status error
	calls   int   // Current calls
	failed  int   // Current calls answered with fail
	reports []*dewypb.ReportRequest
}

func (g *grpcRegistry) Current(_ context.Context, req *dewypb.CurrentRequest) (*dewypb.CurrentResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.fail != nil {
		g.failed++
		return nil, g.fail
	}
	return &dewypb.CurrentResponse{
		Id:          "id-" + g.tag,
		Tag:         g.tag,
		ArtifactUrl: g.base + "/" + g.tag + "/site_" + req.Os + "_" + req.Arch + ".tar.gz",
		CreatedAt:   timestamppb.New(time.Now().Add(-time.Hour)),
	}, nil
}

// serve starts the registry on 127.0.0.1 until the test ends and returns its address.
func (g *grpcRegistry) serve(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	dewypb.RegisterRegistryServiceServer(srv, g)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func (g *grpcRegistry) Report(_ context.Context, req *dewypb.ReportRequest) (*emptypb.Empty, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reports = append(g.reports, req)
	return &emptypb.Empty{}, nil
}

func TestGRPCEndToEnd(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		w.Write(site(v))
	}))
	defer files.Close()
	reg := &grpcRegistry{base: files.URL, tag: "v1.0.0"}
	addr := reg.serve(t)

	// A port nothing listens on: the unreachable server.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	runRegistry(t, registryConfig(t.TempDir(), "grpc://"+addr+"?no-tls=true", "grpc://"+deadAddr+"?no-tls=true"),
		func(v string) { reg.mu.Lock(); reg.tag = v; reg.mu.Unlock() }, "cannot reach")

	waitFor(t, "reports", func() bool {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		return len(reg.reports) == 2
	})
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if r := reg.reports[1]; r.Id != "id-v1.1.0" || r.Tag != "v1.1.0" || r.Err != nil || r.Command != "assets" {
		t.Fatalf("report = %v", r)
	}
}
