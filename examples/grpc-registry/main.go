// Command grpc-registry is a small registry server for dewy-agent's grpc://
// source, to start your own from. It speaks Dewy's registry protocol
// (dewy.RegistryService), so Dewy agents can use it too.
//
// It serves a folder laid out like an S3 or file:// registry, one sub-folder
// per version holding that version's artifacts:
//
//	<dir>/v1.2.4/myapp_linux_amd64.tar.gz
//	<dir>/v1.2.4/myapp_darwin_arm64.tar.gz
//	<dir>/v1.2.3/myapp_linux_amd64.tar.gz
//
// Current answers the newest semantic version that has an artifact for the
// asking host's OS and architecture (or the exact artifact name it asks for),
// chosen by the agent's own version engine; pre-releases only with
// -pre-release. The artifact_url points at the same program's HTTP server,
// which serves the folder (or at -url, when the files are published elsewhere).
// Report calls are logged.
//
//	go run ./examples/grpc-registry -dir /srv/releases/myapp -listen 127.0.0.1:9000 -http 127.0.0.1:9001
//
// and in the agent's config:
//
//	registry = "grpc://127.0.0.1:9000?no-tls=true"
//
// With -tls-cert and -tls-key the gRPC listener speaks TLS, and the registry URL
// needs no ?no-tls.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/file"
	"github.com/dewy-agent/dewy-agent/sources/grpc/dewypb"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// options are the command's flags.
type options struct {
	listen, http, url, dir string
	tlsCert, tlsKey        string
	preRelease             bool
}

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:9000", "`address` the gRPC registry listens on")
	flag.StringVar(&o.dir, "dir", "", "the releases `folder`: <dir>/<version>/<artifact> (required)")
	flag.StringVar(&o.http, "http", "127.0.0.1:9001", "`address` of the HTTP server that serves the folder's artifacts; empty for none (then -url is required)")
	flag.StringVar(&o.url, "url", "", "base `URL` of artifact_url, followed by /<version>/<artifact> (default: http:// and the -http address)")
	flag.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate `file` for gRPC over TLS (with -tls-key)")
	flag.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` for gRPC over TLS (with -tls-cert)")
	flag.BoolVar(&o.preRelease, "pre-release", false, "answer pre-release versions too")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := start(o, logger)
	if err != nil {
		logger.Error("start", "err", err)
		os.Exit(2)
	}
	if err := s.serve(ctx); err != nil {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
}

// server is the running program: the gRPC registry and the artifact HTTP server.
type server struct {
	grpcLis, httpLis net.Listener // httpLis is nil without -http
	grpc             *grpc.Server
	http             *http.Server
	logger           *slog.Logger
}

// start checks the options and opens the listeners; serve then serves them.
func start(o options, logger *slog.Logger) (*server, error) {
	if o.dir == "" {
		return nil, errors.New("-dir is required")
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("-dir %s is not a folder", dir)
	}
	if o.http == "" && o.url == "" {
		return nil, errors.New("-url is required when -http is empty")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	var gopts []grpc.ServerOption
	if o.tlsCert != "" {
		creds, err := credentials.NewServerTLSFromFile(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		gopts = append(gopts, grpc.Creds(creds))
	}
	folder, err := file.New(dir, sources.Options{Logger: logger})
	if err != nil {
		return nil, err
	}

	s := &server{logger: logger}
	var base *url.URL
	if o.url != "" {
		if base, err = url.Parse(o.url); err != nil || base.Scheme == "" || base.Host == "" {
			return nil, fmt.Errorf("-url %q is not an absolute URL", o.url)
		}
	}
	if o.http != "" {
		if s.httpLis, err = net.Listen("tcp", o.http); err != nil {
			return nil, err
		}
		if base == nil {
			if base, err = httpBase(s.httpLis.Addr()); err != nil {
				_ = s.httpLis.Close()
				return nil, err
			}
		}
		s.http = &http.Server{Handler: http.FileServerFS(os.DirFS(dir)), ReadHeaderTimeout: 10 * time.Second}
	}
	if s.grpcLis, err = net.Listen("tcp", o.listen); err != nil {
		if s.httpLis != nil {
			_ = s.httpLis.Close()
		}
		return nil, err
	}
	s.grpc = grpc.NewServer(gopts...)
	dewypb.RegisterRegistryServiceServer(s.grpc, &registry{
		folder:     folder,
		base:       base,
		preRelease: o.preRelease,
		logger:     logger,
		now:        time.Now,
	})
	return s, nil
}

// httpBase is the artifact_url base for the HTTP listener: its address, with
// this machine's host name when it listens on every address.
func httpBase(addr net.Addr) (*url.URL, error) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("listening on every address and no host name: set -url: %w", err)
		}
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}, nil
}

// serve serves until ctx ends, then stops both servers gracefully.
func (s *server) serve(ctx context.Context) error {
	errs := make(chan error, 2)
	running := 1
	go func() { errs <- s.grpc.Serve(s.grpcLis) }()
	s.logger.Info("grpc registry listening", "addr", s.grpcLis.Addr().String())
	if s.http != nil {
		running++
		go func() { errs <- s.http.Serve(s.httpLis) }()
		s.logger.Info("artifacts served over http", "addr", s.httpLis.Addr().String())
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		running--
	}
	if s.http != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.http.Shutdown(shutdown)
	}
	s.grpc.GracefulStop()
	for ; running > 0; running-- {
		if e := <-errs; e != nil && !errors.Is(e, http.ErrServerClosed) && !errors.Is(e, grpc.ErrServerStopped) && err == nil {
			err = e
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// registry answers dewy.RegistryService from the folder.
type registry struct {
	dewypb.UnimplementedRegistryServiceServer
	folder     *file.Folder
	base       *url.URL
	preRelease bool
	logger     *slog.Logger
	now        func() time.Time
}

// Current answers the newest release with an artifact for the asking host.
// Nothing to answer is NotFound.
func (r *registry) Current(ctx context.Context, req *dewypb.CurrentRequest) (*dewypb.CurrentResponse, error) {
	rels, err := r.folder.Releases(ctx)
	if err != nil {
		r.logger.Error("list releases", "err", err)
		return nil, status.Error(codes.Internal, "cannot list releases")
	}
	p := version.Policy{PreRelease: r.preRelease, Artifact: req.GetArifactName(), OS: req.GetOs(), Arch: req.GetArch()}
	sel, err := version.Select(rels, p, r.now())
	switch {
	case errors.Is(err, version.ErrNoVersion), errors.Is(err, version.ErrNoArtifact):
		return nil, status.Error(codes.NotFound, err.Error())
	case err != nil:
		r.logger.Error("select", "err", err)
		return nil, status.Error(codes.Internal, "cannot select a release")
	case sel.Candidate == nil:
		// Every new release is still waiting for its artifacts (CI uploading).
		return nil, status.Errorf(codes.NotFound, "release %s has no artifact for %s/%s yet", sel.Skipped[0].Tag, req.GetOs(), req.GetArch())
	}
	c := sel.Candidate
	res := &dewypb.CurrentResponse{
		Id:          rand.Text(),
		Tag:         c.Release.Tag,
		ArtifactUrl: r.base.JoinPath(c.Release.Tag, c.Artifact.Name).String(),
	}
	if !c.Release.Created.IsZero() {
		res.CreatedAt = timestamppb.New(c.Release.Created)
	}
	r.logger.Info("current", "id", res.Id, "tag", res.Tag, "artifact", c.Artifact.Name,
		"os", req.GetOs(), "arch", req.GetArch(), "artifact_name", req.GetArifactName())
	return res, nil
}

// Report logs a deployment's outcome.
func (r *registry) Report(_ context.Context, req *dewypb.ReportRequest) (*emptypb.Empty, error) {
	if req.Err != nil {
		r.logger.Warn("report: deploy failed", "id", req.GetId(), "tag", req.GetTag(), "command", req.GetCommand(), "err", req.GetErr())
	} else {
		r.logger.Info("report: deployed", "id", req.GetId(), "tag", req.GetTag(), "command", req.GetCommand())
	}
	return &emptypb.Empty{}, nil
}

var _ dewypb.RegistryServiceServer = (*registry)(nil)
