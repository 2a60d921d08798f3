package grpcsrc

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testcert"
	"github.com/dewy-agent/dewy-agent/internal/testkit"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/grpc/dewypb"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeRegistry is a registry server speaking the real protocol over a real
// gRPC server. It answers Current with res or err and records every request.
type fakeRegistry struct {
	dewypb.UnimplementedRegistryServiceServer

	mu       sync.Mutex
	res      *dewypb.CurrentResponse
	err      error
	block    bool // calls wait until their context ends
	currents []*dewypb.CurrentRequest
	reports  []*dewypb.ReportRequest
}

func (f *fakeRegistry) Current(ctx context.Context, req *dewypb.CurrentRequest) (*dewypb.CurrentResponse, error) {
	f.mu.Lock()
	f.currents = append(f.currents, req)
	res, err, block := f.res, f.err, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return res, err
}

func (f *fakeRegistry) Report(ctx context.Context, req *dewypb.ReportRequest) (*emptypb.Empty, error) {
	f.mu.Lock()
	f.reports = append(f.reports, req)
	block := f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &emptypb.Empty{}, nil
}

func (f *fakeRegistry) lastCurrent(t *testing.T) *dewypb.CurrentRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.currents) == 0 {
		t.Fatal("the server received no Current call")
	}
	return f.currents[len(f.currents)-1]
}

// serve starts f on 127.0.0.1 and returns its host:port.
func serve(t *testing.T, f *fakeRegistry, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	dewypb.RegisterRegistryServiceServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func newRegistry(t *testing.T, cfg Config, client *http.Client) *Registry {
	t.Helper()
	if client == nil {
		client = &http.Client{}
	}
	r, err := New(cfg, sources.Options{Logger: slog.New(slog.DiscardHandler), HTTPClient: client, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func str(s string) *string { return &s }

func TestDecide(t *testing.T) {
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	s3 := func(context.Context, string) (io.ReadCloser, error) { return nil, errors.New("unused") }
	tests := []struct {
		name    string
		res     *dewypb.CurrentResponse
		err     error
		policy  version.Policy
		openers map[string]Opener

		wantOS, wantArch string
		wantArtifactName *string
		wantTag          string
		wantName         string
		wantCreated      time.Time
		wantErr          string
		wantIs           []error
	}{
		{
			name:   "v tag and https artifact",
			res:    &dewypb.CurrentResponse{Id: "a1", Tag: "v1.2.3", ArtifactUrl: "https://dl.example.com/myapp/v1.2.3/myapp_linux_arm64.tar.gz", CreatedAt: timestamppb.New(created)},
			policy: version.Policy{OS: "linux", Arch: "arm64"},
			wantOS: "linux", wantArch: "arm64",
			wantTag: "v1.2.3", wantName: "myapp_linux_arm64.tar.gz", wantCreated: created,
		},
		{
			name:   "tag without v and no created_at",
			res:    &dewypb.CurrentResponse{Id: "a2", Tag: "2.0.0-rc.1", ArtifactUrl: "http://127.0.0.1:9001/2.0.0-rc.1/app.zip"},
			policy: version.Policy{OS: "darwin", Arch: "amd64"},
			wantOS: "darwin", wantArch: "amd64",
			wantTag: "2.0.0-rc.1", wantName: "app.zip",
		},
		{
			name:   "empty policy asks with the running program's platform",
			res:    &dewypb.CurrentResponse{Tag: "v1.0.0", ArtifactUrl: "file:///srv/app.tar.gz"},
			wantOS: runtime.GOOS, wantArch: runtime.GOARCH,
			wantTag: "v1.0.0", wantName: "app.tar.gz",
		},
		{
			name:   "artifact name is sent when set",
			res:    &dewypb.CurrentResponse{Tag: "v1.0.0", ArtifactUrl: "https://h/app-server.tar.gz?sig=x"},
			policy: version.Policy{OS: "linux", Arch: "amd64", Artifact: "app-server.tar.gz"},
			wantOS: "linux", wantArch: "amd64",
			wantArtifactName: str("app-server.tar.gz"),
			wantTag:          "v1.0.0", wantName: "app-server.tar.gz",
		},
		{
			name:    "scheme with an opener",
			res:     &dewypb.CurrentResponse{Tag: "v1.0.0", ArtifactUrl: "s3://ap-northeast-1/bucket/app/v1.0.0/app_linux_amd64.tar.gz"},
			openers: map[string]Opener{"s3": s3},
			wantOS:  runtime.GOOS, wantArch: runtime.GOARCH,
			wantTag: "v1.0.0", wantName: "app_linux_amd64.tar.gz",
		},
		{
			name:    "non-semver tag is refused",
			res:     &dewypb.CurrentResponse{Tag: "latest", ArtifactUrl: "https://h/app.tar.gz"},
			wantErr: `answered tag "latest", which is not a semantic version`,
		},
		{
			name:    "empty tag is refused",
			res:     &dewypb.CurrentResponse{ArtifactUrl: "https://h/app.tar.gz"},
			wantErr: "not a semantic version",
		},
		{
			name:    "missing artifact_url",
			res:     &dewypb.CurrentResponse{Tag: "v1.0.0"},
			wantErr: "no artifact_url for v1.0.0",
		},
		{
			name:    "scheme without opener",
			res:     &dewypb.CurrentResponse{Tag: "v1.0.0", ArtifactUrl: "s3://region/bucket/app.tar.gz"},
			wantErr: "artifact_url scheme s3 is not available: this agent fetches file, http, https",
		},
		{
			name:    "artifact_url without file name",
			res:     &dewypb.CurrentResponse{Tag: "v1.0.0", ArtifactUrl: "https://h/?token=secret"},
			wantErr: "artifact_url https://h/ has no file name",
		},
		{
			name:    "artifact_url without scheme",
			res:     &dewypb.CurrentResponse{Tag: "v1.0.0", ArtifactUrl: "/srv/app.tar.gz"},
			wantErr: "artifact_url has no scheme",
		},
		{
			name:    "not found",
			err:     status.Error(codes.NotFound, "no release for plan9/mips"),
			wantErr: "the registry has nothing for this host: no release for plan9/mips",
			wantIs:  []error{sources.ErrNotFound, version.ErrNoVersion},
		},
		{
			name:    "unauthenticated",
			err:     status.Error(codes.Unauthenticated, "token required"),
			wantErr: "wants credentials, which this agent does not send: token required",
		},
		{
			name:    "permission denied",
			err:     status.Error(codes.PermissionDenied, "host not allowed"),
			wantErr: "the registry refused this host: host not allowed",
		},
		{
			name:    "internal",
			err:     status.Error(codes.Internal, "disk full"),
			wantErr: "current: internal: disk full",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRegistry{res: tt.res, err: tt.err}
			addr := serve(t, f)
			r := newRegistry(t, Config{Target: addr, NoTLS: true, Openers: tt.openers}, nil)
			c, err := r.Decide(t.Context(), tt.policy)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decide error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the URL's query", err)
				}
				for _, target := range tt.wantIs {
					if !errors.Is(err, target) {
						t.Errorf("error %v is not %v", err, target)
					}
				}
				if c != nil {
					t.Errorf("Decide returned a candidate with an error: %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			req := f.lastCurrent(t)
			if req.GetOs() != tt.wantOS || req.GetArch() != tt.wantArch {
				t.Errorf("request os/arch = %s/%s, want %s/%s", req.GetOs(), req.GetArch(), tt.wantOS, tt.wantArch)
			}
			switch {
			case tt.wantArtifactName == nil && req.ArifactName != nil:
				t.Errorf("request arifact_name = %q, want it unset", req.GetArifactName())
			case tt.wantArtifactName != nil && req.GetArifactName() != *tt.wantArtifactName:
				t.Errorf("request arifact_name = %v, want %q", req.ArifactName, *tt.wantArtifactName)
			}
			if c.Version.Original() != tt.wantTag || c.Release.Tag != tt.wantTag {
				t.Errorf("candidate version %q, tag %q, want %q", c.Version.Original(), c.Release.Tag, tt.wantTag)
			}
			want := version.Asset{Name: tt.wantName, Ref: tt.res.GetArtifactUrl(), Size: -1, Created: tt.wantCreated}
			if c.Artifact != want {
				t.Errorf("artifact = %+v, want %+v", c.Artifact, want)
			}
			if len(c.Release.Assets) != 1 || c.Release.Assets[0] != want {
				t.Errorf("release assets = %+v, want [%+v]", c.Release.Assets, want)
			}
			if !c.Release.Created.Equal(tt.wantCreated) {
				t.Errorf("release created = %v, want %v", c.Release.Created, tt.wantCreated)
			}
			if c.Checksum != nil {
				t.Errorf("checksum = %+v, want none", c.Checksum)
			}
		})
	}
}

func TestReleases(t *testing.T) {
	f := &fakeRegistry{res: &dewypb.CurrentResponse{Id: "r1", Tag: "v3.1.0", ArtifactUrl: "https://h/v3.1.0/app_linux_amd64.tar.gz"}}
	r := newRegistry(t, Config{Target: serve(t, f), NoTLS: true}, nil)
	rels, err := r.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 || rels[0].Tag != "v3.1.0" || len(rels[0].Assets) != 1 || rels[0].Assets[0].Name != "app_linux_amd64.tar.gz" {
		t.Fatalf("Releases = %+v, want v3.1.0 with app_linux_amd64.tar.gz", rels)
	}
	if req := f.lastCurrent(t); req.GetOs() != runtime.GOOS || req.GetArch() != runtime.GOARCH {
		t.Errorf("request os/arch = %s/%s, want the running program's", req.GetOs(), req.GetArch())
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name    string
		command string
		tag     string // the tag reported; Decide answered v1.2.3 with id "resp-1"
		err     error

		wantID, wantCommand string
		wantErr             *string
	}{
		{name: "success", tag: "v1.2.3", wantID: "resp-1", wantCommand: "dewy-agent"},
		{name: "failure carries the error", tag: "v1.2.3", err: errors.New("health check failed"), wantID: "resp-1", wantCommand: "dewy-agent", wantErr: str("health check failed")},
		{name: "configured command", command: "server", tag: "v1.2.3", wantID: "resp-1", wantCommand: "server"},
		{name: "another tag has no id", tag: "v1.0.0", wantCommand: "dewy-agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRegistry{res: &dewypb.CurrentResponse{Id: "resp-1", Tag: "v1.2.3", ArtifactUrl: "https://h/app.tar.gz"}}
			r := newRegistry(t, Config{Target: serve(t, f), NoTLS: true, Command: tt.command}, nil)
			c, err := r.Decide(t.Context(), version.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			rel := c.Release
			rel.Tag = tt.tag
			if err := r.Report(t.Context(), sources.Report{App: "web", Host: "h1", Release: rel, Artifact: c.Artifact, Time: time.Now(), Err: tt.err}); err != nil {
				t.Fatalf("Report: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.reports) != 1 {
				t.Fatalf("server received %d reports, want 1", len(f.reports))
			}
			got := f.reports[0]
			if got.GetId() != tt.wantID || got.GetTag() != tt.tag || got.GetCommand() != tt.wantCommand {
				t.Errorf("report id/tag/command = %q/%q/%q, want %q/%q/%q", got.GetId(), got.GetTag(), got.GetCommand(), tt.wantID, tt.tag, tt.wantCommand)
			}
			switch {
			case tt.wantErr == nil && got.Err != nil:
				t.Errorf("report err = %q, want it unset", got.GetErr())
			case tt.wantErr != nil && (got.Err == nil || got.GetErr() != *tt.wantErr):
				t.Errorf("report err = %v, want %q", got.Err, *tt.wantErr)
			}
		})
	}
}

func TestTransportSecurity(t *testing.T) {
	cert, pool := testcert.New(t)
	serverTLS := grpc.Creds(credentials.NewServerTLSFromCert(&cert))
	tests := []struct {
		name      string
		serverTLS bool
		cfg       Config // Target is filled in
		wantErr   string
	}{
		{name: "tls trusting the test CA", serverTLS: true, cfg: Config{RootCAs: pool}},
		{name: "plaintext with no-tls", cfg: Config{NoTLS: true}},
		{name: "tls with system roots refuses a self-signed server", serverTLS: true, cfg: Config{}, wantErr: "certificate"},
		{name: "tls client against a plaintext server", cfg: Config{RootCAs: pool}, wantErr: "cannot reach the registry"},
		{name: "no-tls client against a tls server", serverTLS: true, cfg: Config{NoTLS: true}, wantErr: "cannot reach the registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRegistry{res: &dewypb.CurrentResponse{Id: "x", Tag: "v1.0.0", ArtifactUrl: "https://h/app.tar.gz"}}
			var opts []grpc.ServerOption
			if tt.serverTLS {
				opts = append(opts, serverTLS)
			}
			cfg := tt.cfg
			cfg.Target = serve(t, f, opts...)
			cfg.Timeout = 5 * time.Second
			r := newRegistry(t, cfg, nil)
			c, err := r.Decide(t.Context(), version.Policy{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decide error = %v, want one containing %q", err, tt.wantErr)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if c.Version.Original() != "v1.0.0" {
				t.Errorf("version = %s, want v1.0.0", c.Version.Original())
			}
		})
	}
}

func TestCallFailures(t *testing.T) {
	closed := testkit.ClosedAddr(t)
	// A TCP server that accepts and never speaks HTTP/2.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	conns.Go(func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = silent.Close()
		conns.Wait()
	})
	blocking := serve(t, &fakeRegistry{block: true})

	const timeout = 300 * time.Millisecond
	tests := []struct {
		name     string
		target   string
		cancelIn time.Duration // cancel the caller's context after this long
		wantErr  string
		wantIs   error
	}{
		{name: "server down", target: closed, wantErr: "grpc registry " + closed + ": current: cannot reach the registry: "},
		{name: "server that never answers the handshake", target: silent.Addr().String(), wantErr: "the registry did not answer within 300ms"},
		{name: "handler that never returns", target: blocking, wantErr: "grpc registry " + blocking + ": current: the registry did not answer within 300ms"},
		{name: "caller cancels", target: blocking, cancelIn: 50 * time.Millisecond, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, Config{Target: tt.target, NoTLS: true, Timeout: timeout}, nil)
			ctx := t.Context()
			if tt.cancelIn > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancelIn, cancel)
			}
			start := time.Now()
			_, err := r.Decide(ctx, version.Policy{})
			took := time.Since(start)
			if err == nil {
				t.Fatal("Decide succeeded, want an error")
			}
			t.Logf("error after %s: %v", took.Round(time.Millisecond), err)
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error = %v, want one wrapping %v", err, tt.wantIs)
			}
			if took > timeout+2*time.Second {
				t.Errorf("Decide took %s with a %s timeout", took, timeout)
			}
			// Report is bounded the same way.
			if tt.cancelIn == 0 {
				if err := r.Report(t.Context(), sources.Report{Release: version.Release{Tag: "v1.0.0"}}); err == nil {
					t.Error("Report succeeded, want an error")
				}
			}
		})
	}
}

func TestOpen(t *testing.T) {
	const body = "artifact bytes"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0.0/app.tar.gz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })
	mux.HandleFunc("GET /v1.0.0/broken.tar.gz", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("GET /v1.0.0/denied.tar.gz", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	plain := httptest.NewServer(mux)
	t.Cleanup(plain.Close)
	secure := httptest.NewUnstartedServer(mux)
	secure.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake error
	secure.StartTLS()
	t.Cleanup(secure.Close)

	dir := t.TempDir()
	local := filepath.Join(dir, "app.tar.gz")
	if err := os.WriteFile(local, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	fileURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(local)}).String()

	var openedMu sync.Mutex
	var opened []string
	openers := map[string]Opener{
		"gs": func(_ context.Context, raw string) (io.ReadCloser, error) {
			openedMu.Lock()
			opened = append(opened, raw)
			openedMu.Unlock()
			return io.NopCloser(strings.NewReader(body)), nil
		},
		"ghr": func(context.Context, string) (io.ReadCloser, error) {
			return nil, errors.New("release asset gone")
		},
	}

	tests := []struct {
		name    string
		url     string
		client  *http.Client
		wantErr string
		wantIs  error
	}{
		{name: "http", url: plain.URL + "/v1.0.0/app.tar.gz"},
		{name: "https with the server's client", url: secure.URL + "/v1.0.0/app.tar.gz", client: secure.Client()},
		{name: "file", url: fileURL},
		{name: "opener", url: "gs://bucket/app/v1.0.0/app.tar.gz"},
		{name: "opener error", url: "ghr://owner/repo/v1.0.0/app.tar.gz", wantErr: "download ghr://owner/repo/v1.0.0/app.tar.gz: release asset gone"},
		{name: "https untrusted", url: secure.URL + "/v1.0.0/app.tar.gz", wantErr: "certificate"},
		{name: "http 404", url: plain.URL + "/v1.0.0/missing.tar.gz", wantErr: "404 Not Found", wantIs: sources.ErrNotFound},
		{name: "http 500", url: plain.URL + "/v1.0.0/broken.tar.gz", wantErr: "500 Internal Server Error"},
		{name: "signed URL stays secret", url: plain.URL + "/v1.0.0/denied.tar.gz?X-Amz-Signature=secret", wantErr: "/v1.0.0/denied.tar.gz: 403 Forbidden"},
		{name: "file missing", url: "file://" + filepath.ToSlash(dir) + "/gone.tar.gz", wantErr: "gone.tar.gz", wantIs: sources.ErrNotFound},
		{name: "file on another host", url: "file://nas/srv/app.tar.gz", wantErr: "only local files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRegistry{res: &dewypb.CurrentResponse{Id: "o", Tag: "v1.0.0", ArtifactUrl: tt.url}}
			r := newRegistry(t, Config{Target: serve(t, f), NoTLS: true, Openers: openers}, tt.client)
			c, err := r.Decide(t.Context(), version.Policy{})
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			rc, err := r.Open(t.Context(), c.Release, c.Artifact)
			if tt.wantErr != "" {
				if err == nil {
					_ = rc.Close()
					t.Fatalf("Open succeeded, want an error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Open error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("Open error %q shows the URL's query", err)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("Open error = %v, want one wrapping %v", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := io.ReadAll(rc)
			if cerr := rc.Close(); cerr != nil {
				t.Error(cerr)
			}
			if err != nil || string(got) != body {
				t.Fatalf("read %q, %v; want %q", got, err, body)
			}
		})
	}
	openedMu.Lock()
	defer openedMu.Unlock()
	if len(opened) != 1 || opened[0] != "gs://bucket/app/v1.0.0/app.tar.gz" {
		t.Errorf("gs opener was called with %q, want the artifact URL once", opened)
	}
}

func TestOpenRefusesUnavailableScheme(t *testing.T) {
	r := newRegistry(t, Config{Target: "127.0.0.1:1", NoTLS: true}, nil)
	_, err := r.Open(t.Context(), version.Release{Tag: "v1.0.0"}, version.Asset{Name: "a.tar.gz", Ref: "s3://region/bucket/a.tar.gz", Size: -1})
	if err == nil || !strings.Contains(err.Error(), "artifact_url scheme s3 is not available") {
		t.Fatalf("Open error = %v, want the scheme to be unavailable", err)
	}
}

func TestOpenCancelled(t *testing.T) {
	r := newRegistry(t, Config{Target: "127.0.0.1:1", NoTLS: true}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.Open(ctx, version.Release{Tag: "v1.0.0"}, version.Asset{Name: "a.tar.gz", Ref: "http://127.0.0.1:1/a.tar.gz", Size: -1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Open error = %v, want context.Canceled", err)
	}
}

func TestNew(t *testing.T) {
	op := func(context.Context, string) (io.ReadCloser, error) { return nil, nil }
	tests := []struct {
		name       string
		cfg        Config
		wantTarget string
		wantErr    string
	}{
		{name: "host and port", cfg: Config{Target: "registry.example.com:9000"}, wantTarget: "registry.example.com:9000"},
		{name: "tls default port", cfg: Config{Target: "registry.example.com"}, wantTarget: "registry.example.com:443"},
		{name: "ipv6 with port", cfg: Config{Target: "[::1]:9000", NoTLS: true}, wantTarget: "[::1]:9000"},
		{name: "ipv6 tls default port", cfg: Config{Target: "[::1]"}, wantTarget: "[::1]:443"},
		{name: "no-tls needs a port", cfg: Config{Target: "localhost", NoTLS: true}, wantErr: "a port is required with no-tls"},
		{name: "empty", cfg: Config{}, wantErr: "no target"},
		{name: "path", cfg: Config{Target: "h:9000/x"}, wantErr: "not host:port"},
		{name: "bare ipv6", cfg: Config{Target: "::1"}, wantErr: "not host:port"},
		{name: "port zero", cfg: Config{Target: "h:0"}, wantErr: "port \"0\""},
		{name: "port name", cfg: Config{Target: "h:grpc"}, wantErr: "port \"grpc\""},
		{name: "no host", cfg: Config{Target: ":9000"}, wantErr: "has no host"},
		{name: "opener for a built-in scheme", cfg: Config{Target: "h:1", Openers: map[string]Opener{"https": op}}, wantErr: "scheme https is fetched by the source itself"},
		{name: "upper-case opener scheme", cfg: Config{Target: "h:1", Openers: map[string]Opener{"S3": op}}, wantErr: "must be lower case"},
		{name: "nil opener", cfg: Config{Target: "h:1", Openers: map[string]Opener{"s3": nil}}, wantErr: "opener for scheme s3 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, sources.Options{HTTPClient: &http.Client{}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := r.Close(); err != nil {
					t.Error(err)
				}
				if err := r.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
			}()
			if r.target != tt.wantTarget {
				t.Errorf("target = %q, want %q", r.target, tt.wantTarget)
			}
			if r.timeout != DefaultTimeout || r.command != DefaultCommand {
				t.Errorf("timeout, command = %s, %q; want the defaults", r.timeout, r.command)
			}
		})
	}
}

// TestSibling: the file beside a handed-out artifact URL is the URL with the
// suffix added to its path, the query kept, and it opens like the artifact.
func TestSibling(t *testing.T) {
	var gotQuery string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0.0/app.tar.gz.minisig", func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		_, _ = io.WriteString(w, "signature")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name, url, want string
	}{
		{name: "http with a query", url: srv.URL + "/v1.0.0/app.tar.gz?X-Amz-Signature=abc", want: srv.URL + "/v1.0.0/app.tar.gz.minisig?X-Amz-Signature=abc"},
		{name: "s3 with an endpoint", url: "s3://us-east-1/bucket/v1/app.tar.gz?endpoint=http://127.0.0.1:9000", want: "s3://us-east-1/bucket/v1/app.tar.gz.minisig?endpoint=http://127.0.0.1:9000"},
		{name: "escaped path", url: "http://h/v1/my%2Fapp.tar.gz", want: "http://h/v1/my%2Fapp.tar.gz.minisig"},
	}
	r := newRegistry(t, Config{Target: "127.0.0.1:1", NoTLS: true}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			art := version.Asset{Name: "app.tar.gz", Ref: tt.url, Size: -1}
			sib, ok := r.Sibling(version.Release{Tag: "v1.0.0"}, art, ".minisig")
			if !ok || sib.Ref != tt.want || sib.Name != "app.tar.gz.minisig" || sib.Size != -1 {
				t.Fatalf("Sibling = %+v, %v; want Ref %q", sib, ok, tt.want)
			}
		})
	}
	sib, _ := r.Sibling(version.Release{Tag: "v1.0.0"}, version.Asset{Name: "app.tar.gz", Ref: tests[0].url, Size: -1}, ".minisig")
	rc, err := r.Open(t.Context(), version.Release{Tag: "v1.0.0"}, sib)
	if err != nil {
		t.Fatalf("Open sibling: %v", err)
	}
	b, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(b) != "signature" || gotQuery != "X-Amz-Signature=abc" {
		t.Errorf("read %q with query %q", b, gotQuery)
	}
	sib, _ = r.Sibling(version.Release{Tag: "v1.0.0"}, version.Asset{Name: "app.tar.gz", Ref: srv.URL + "/v1.0.0/app.tar.gz", Size: -1}, ".sig")
	if _, err := r.Open(t.Context(), version.Release{Tag: "v1.0.0"}, sib); !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("Open of a missing sibling = %v, want ErrNotFound", err)
	}
}
