// Package grpcsrc is the gRPC registry source, `grpc://host:port`: a server
// speaking Dewy's registry protocol (dewy.RegistryService, see dewypb) decides
// which release each host runs. Its words:
//
//   - Target: the registry server's host:port.
//   - Current: the server's answer to "what should this host run?": a tag, an
//     artifact URL and an id. The source asks with the host's GOOS and GOARCH.
//   - Artifact URL: where the artifact is downloaded from. http, https and file
//     URLs are fetched by this package; other schemes (s3, gs, ghr) by an Opener
//     the agent hands in.
//   - Report: the outcome of a deployment, sent back with the id Current gave.
//
// The server decides, so the source implements sources.Deciding and the agent
// calls Decide instead of Releases and the version engine. The source holds a
// gRPC client connection: call Close when the app stops.
package grpcsrc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/grpc/dewypb"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// DefaultTimeout bounds each call to the registry server when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// DefaultTLSPort is the port used when a TLS target names none.
const DefaultTLSPort = "443"

// DefaultCommand is the ReportRequest command sent when Config.Command is empty.
const DefaultCommand = "dewy-agent"

// Opener opens an artifact URL of one scheme (s3://, gs://, ghr://) and streams
// it; the caller closes the reader. rawURL is the artifact_url exactly as the
// registry sent it. An Opener must return promptly once ctx is cancelled.
type Opener = sources.Opener

// Config is one gRPC registry.
type Config struct {
	// Target is the server's host:port (the registry URL's host part). Without a
	// port, DefaultTLSPort is used with TLS; without TLS a port is required.
	Target string
	// NoTLS speaks plaintext (the URL's ?no-tls=true). The default is TLS,
	// verified against RootCAs.
	NoTLS bool
	// RootCAs are the authorities trusted for the server's certificate; nil
	// means the system's roots.
	RootCAs *x509.CertPool
	// Openers fetch artifact URLs of schemes this package does not fetch
	// itself, keyed by lower-case scheme ("s3", "gs", "ghr"). http, https and
	// file are built in and cannot be keys. An artifact URL whose scheme has
	// neither is an error.
	Openers map[string]Opener
	// Timeout bounds each Current and Report call; zero means DefaultTimeout.
	// Downloads are bounded by the caller's context only.
	Timeout time.Duration
	// Command is sent as ReportRequest.command; empty means DefaultCommand.
	Command string
}

// Registry is one app's view of a gRPC registry. Close it when done.
type Registry struct {
	target  string
	conn    *grpc.ClientConn
	client  dewypb.RegistryServiceClient
	http    *http.Client
	openers map[string]Opener
	timeout time.Duration
	command string
	logger  *slog.Logger

	// mu guards last: the tag and id of the newest Current answer, sent back
	// by Report.
	mu   sync.Mutex
	last answer

	closeOnce sync.Once
	closeErr  error
}

// answer is the part of a Current answer that Report needs.
type answer struct {
	tag, id string
}

// New returns the source for cfg. It does no I/O: the connection is made by the
// first call and re-made after failures (backoff capped at 30s).
func New(cfg Config, opts sources.Options) (*Registry, error) {
	target, err := normalizeTarget(cfg.Target, !cfg.NoTLS)
	if err != nil {
		return nil, fmt.Errorf("grpc registry: %w", err)
	}
	openers := make(map[string]Opener, len(cfg.Openers))
	for scheme, op := range cfg.Openers {
		switch {
		case builtinScheme(scheme):
			return nil, fmt.Errorf("grpc registry %s: scheme %s is fetched by the source itself and takes no opener", target, scheme)
		case scheme != strings.ToLower(scheme) || scheme == "":
			return nil, fmt.Errorf("grpc registry %s: opener scheme %q must be lower case and not empty", target, scheme)
		case op == nil:
			return nil, fmt.Errorf("grpc registry %s: opener for scheme %s is nil", target, scheme)
		}
		openers[scheme] = op
	}
	creds := insecure.NewCredentials()
	if !cfg.NoTLS {
		creds = credentials.NewTLS(&tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient("dns:///"+target,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(DefaultCommand),
		grpc.WithDisableServiceConfig(),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 30 * time.Second},
			MinConnectTimeout: 10 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc registry %s: %w", target, err)
	}
	r := &Registry{
		target:  target,
		conn:    conn,
		client:  dewypb.NewRegistryServiceClient(conn),
		http:    opts.HTTPClient,
		openers: openers,
		timeout: cfg.Timeout,
		command: cfg.Command,
		logger:  opts.Logger,
	}
	if r.http == nil {
		r.http = http.DefaultClient
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.command == "" {
		r.command = DefaultCommand
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// normalizeTarget checks a host:port target and adds the TLS default port.
func normalizeTarget(target string, useTLS bool) (string, error) {
	if target == "" {
		return "", errors.New("no target: write the registry as grpc://host:port")
	}
	if strings.ContainsAny(target, "/?#@ ") {
		return "", fmt.Errorf("target %q is not host:port", target)
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		// No port (or a bare IPv6 address in brackets).
		host = strings.TrimSuffix(strings.TrimPrefix(target, "["), "]")
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(target, "[")) {
			return "", fmt.Errorf("target %q is not host:port", target)
		}
		if !useTLS {
			return "", fmt.Errorf("target %q has no port; a port is required with no-tls", target)
		}
		port = DefaultTLSPort
	}
	if host == "" {
		return "", fmt.Errorf("target %q has no host", target)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("target %q: port %q is not a number from 1 to 65535", target, port)
	}
	return net.JoinHostPort(host, port), nil
}

func builtinScheme(scheme string) bool {
	return scheme == "http" || scheme == "https" || scheme == "file"
}

// Decide asks the server which release this host runs (Current, with p's OS and
// architecture, the running program's when empty, and p.Artifact when set).
// The tag must be a semantic version and the artifact URL must have a scheme
// this source can fetch. The candidate's artifact is the URL's file name with
// the URL as Ref and an unknown size; there is no checksum file. The answer's id
// is kept for Report.
//
// A server's NotFound wraps both sources.ErrNotFound and version.ErrNoVersion.
func (r *Registry) Decide(ctx context.Context, p version.Policy) (*version.Candidate, error) {
	res, err := r.current(ctx, p)
	if err != nil {
		return nil, err
	}
	v, ok := version.ParseTag(res.GetTag(), p.CalVer)
	if !ok {
		kind := "a semantic version"
		if p.CalVer != "" {
			kind = fmt.Sprintf("a calendar version of the format %q", p.CalVer)
		}
		return nil, fmt.Errorf("grpc registry %s: the registry answered tag %q, which is not %s", r.target, res.GetTag(), kind)
	}
	rel, err := r.release(res)
	if err != nil {
		return nil, err
	}
	if rel.Image != "" {
		return &version.Candidate{Release: rel, Version: v}, nil
	}
	return &version.Candidate{Release: rel, Version: v, Artifact: rel.Assets[0]}, nil
}

// Releases returns the one release the server answers for this host (Current
// with the running program's OS and architecture), so that listing works as for
// other sources. The agent uses Decide.
func (r *Registry) Releases(ctx context.Context) ([]version.Release, error) {
	res, err := r.current(ctx, version.Policy{})
	if err != nil {
		return nil, err
	}
	rel, err := r.release(res)
	if err != nil {
		return nil, err
	}
	return []version.Release{rel}, nil
}

// imageScheme is the scheme of Dewy's container artifact URLs,
// img://<host>/<repository>:<tag>.
const imageScheme = "img"

// current calls Current and remembers the answer's id for Report.
func (r *Registry) current(ctx context.Context, p version.Policy) (*dewypb.CurrentResponse, error) {
	req := &dewypb.CurrentRequest{Os: p.OS, Arch: p.Arch}
	if req.Os == "" {
		req.Os = runtime.GOOS
	}
	if req.Arch == "" {
		req.Arch = runtime.GOARCH
	}
	if p.Artifact != "" {
		name := p.Artifact
		req.ArifactName = &name
	}
	callCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := r.client.Current(callCtx, req)
	if err != nil {
		return nil, r.callError(ctx, "current", err)
	}
	r.logger.Debug("registry answered", "tag", res.GetTag(), "id", res.GetId(), "os", req.Os, "arch", req.Arch)
	r.mu.Lock()
	r.last = answer{tag: res.GetTag(), id: res.GetId()}
	r.mu.Unlock()
	return res, nil
}

// release turns a Current answer into a release with its one artifact.
func (r *Registry) release(res *dewypb.CurrentResponse) (version.Release, error) {
	if res.GetTag() == "" {
		return version.Release{}, fmt.Errorf("grpc registry %s: the registry answered no tag", r.target)
	}
	raw := res.GetArtifactUrl()
	if raw == "" {
		return version.Release{}, fmt.Errorf("grpc registry %s: the registry answered no artifact_url for %s", r.target, res.GetTag())
	}
	if ref, ok := strings.CutPrefix(raw, imageScheme+"://"); ok {
		// Dewy's container form, img://<host>/<repository>:<tag>: an image
		// release for the container runner.
		if ref == "" || strings.ContainsAny(ref, " ?#") {
			return version.Release{}, fmt.Errorf("grpc registry %s: %s: artifact_url is not img://<host>/<repository>:<tag>", r.target, res.GetTag())
		}
		rel := version.Release{Tag: res.GetTag(), Image: ref}
		if res.CreatedAt != nil {
			rel.Created = res.GetCreatedAt().AsTime()
		}
		return rel, nil
	}
	u, err := parseURL(raw)
	if err != nil {
		return version.Release{}, fmt.Errorf("grpc registry %s: %s: %w", r.target, res.GetTag(), err)
	}
	if err := r.canOpen(u); err != nil {
		return version.Release{}, fmt.Errorf("grpc registry %s: %s: %w", r.target, res.GetTag(), err)
	}
	name := path.Base(u.Path)
	if u.Path == "" || name == "/" || name == "." || name == ".." {
		return version.Release{}, fmt.Errorf("grpc registry %s: %s: artifact_url %s has no file name", r.target, res.GetTag(), redact(u))
	}
	rel := version.Release{Tag: res.GetTag()}
	if res.CreatedAt != nil {
		rel.Created = res.GetCreatedAt().AsTime()
	}
	rel.Assets = []version.Asset{{Name: name, Ref: raw, Size: -1, Created: rel.Created}}
	return rel, nil
}

// Open streams the artifact from its URL: http and https with the agent's HTTP
// client (a status other than 2xx is an error, 404 wrapping
// sources.ErrNotFound), file from the local path, any other scheme through its
// Opener.
func (r *Registry) Open(ctx context.Context, _ version.Release, asset version.Asset) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := parseURL(asset.Ref)
	if err != nil {
		return nil, fmt.Errorf("grpc registry %s: open %s: %w", r.target, asset.Name, err)
	}
	if err := r.canOpen(u); err != nil {
		return nil, fmt.Errorf("grpc registry %s: open %s: %w", r.target, asset.Name, err)
	}
	var rc io.ReadCloser
	switch u.Scheme {
	case "http", "https":
		rc, err = r.openHTTP(ctx, u)
	case "file":
		rc, err = openFile(u)
	default:
		rc, err = r.openers[u.Scheme](ctx, asset.Ref)
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("grpc registry %s: download %s: %w", r.target, redact(u), cerr)
		}
		return nil, fmt.Errorf("grpc registry %s: download %s: %w", r.target, redact(u), err)
	}
	return rc, nil
}

// Sibling is the file beside an artifact URL the server handed out: the URL
// with suffix added to its path, its query (a presigned URL's signature, an
// s3 endpoint) kept. Its size is unknown.
func (r *Registry) Sibling(_ version.Release, asset version.Asset, suffix string) (version.Asset, bool) {
	u, err := parseURL(asset.Ref)
	if err != nil || u.Path == "" || suffix == "" {
		return version.Asset{}, false
	}
	u.Path += suffix
	if u.RawPath != "" {
		u.RawPath += url.PathEscape(suffix)
	}
	return version.Asset{Name: asset.Name + suffix, Ref: u.String(), Size: -1, Created: asset.Created}, true
}

// canOpen says whether the URL's scheme can be fetched.
func (r *Registry) canOpen(u *url.URL) error {
	if builtinScheme(u.Scheme) || r.openers[u.Scheme] != nil {
		return nil
	}
	avail := append([]string{"file", "http", "https"}, slices.Collect(maps.Keys(r.openers))...)
	slices.Sort(avail)
	return fmt.Errorf("artifact_url scheme %s is not available: this agent fetches %s", u.Scheme, strings.Join(avail, ", "))
}

func (r *Registry) openHTTP(ctx context.Context, u *url.URL) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errors.New("invalid request")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		// url.Error repeats the whole URL, query (signatures, tokens) included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%s: %w", resp.Status, sources.ErrNotFound)
		}
		return nil, errors.New(resp.Status)
	}
	return resp.Body, nil
}

func openFile(u *url.URL) (io.ReadCloser, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("file URL names host %s; only local files can be read", u.Host)
	}
	f, err := os.Open(u.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", u.Path, sources.ErrNotFound)
		}
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", u.Path)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// Report sends the outcome of a deployment: the id of the newest Current answer
// when it was for the same tag (empty otherwise, e.g. after an agent restart),
// the tag, Config.Command, and the error text on failure.
func (r *Registry) Report(ctx context.Context, rep sources.Report) error {
	req := &dewypb.ReportRequest{Tag: rep.Release.Tag, Command: r.command}
	r.mu.Lock()
	if r.last.tag == rep.Release.Tag {
		req.Id = r.last.id
	}
	r.mu.Unlock()
	if rep.Err != nil {
		msg := rep.Err.Error()
		req.Err = &msg
	}
	callCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if _, err := r.client.Report(callCtx, req); err != nil {
		return r.callError(ctx, "report", err)
	}
	return nil
}

// Close closes the client connection. Calls after the first return the first
// one's result.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		if err := r.conn.Close(); err != nil {
			r.closeErr = fmt.Errorf("grpc registry %s: close: %w", r.target, err)
		}
	})
	return r.closeErr
}

// callError turns a failed call into an error that says what went wrong.
// parent is the caller's context, before the call's timeout was added.
func (r *Registry) callError(parent context.Context, method string, err error) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("grpc registry %s: %s: %w", r.target, method, perr)
	}
	st := status.Convert(err)
	msg := st.Message()
	prefix := fmt.Sprintf("grpc registry %s: %s", r.target, method)
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%s: cannot reach the registry: %s", prefix, msg)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: the registry did not answer within %s", prefix, r.timeout)
	case codes.NotFound:
		return &notFoundError{msg: fmt.Sprintf("%s: the registry has nothing for this host: %s", prefix, msg)}
	case codes.Unauthenticated:
		return fmt.Errorf("%s: the registry wants credentials, which this agent does not send: %s", prefix, msg)
	case codes.PermissionDenied:
		return fmt.Errorf("%s: the registry refused this host: %s", prefix, msg)
	case codes.Unimplemented:
		return fmt.Errorf("%s: the server does not serve dewy.RegistryService: %s", prefix, msg)
	case codes.InvalidArgument, codes.FailedPrecondition:
		return fmt.Errorf("%s: the registry refused the request: %s", prefix, msg)
	}
	return fmt.Errorf("%s: %s: %s", prefix, strings.ToLower(st.Code().String()), msg)
}

// notFoundError is a registry's NotFound answer: nothing to deploy for this host.
type notFoundError struct {
	msg string
}

func (e *notFoundError) Error() string { return e.msg }

// Is makes the error match sources.ErrNotFound and version.ErrNoVersion.
func (e *notFoundError) Is(target error) bool {
	return target == sources.ErrNotFound || target == version.ErrNoVersion
}

// parseURL parses an artifact URL without repeating it in errors (it may carry
// signatures or tokens) and lower-cases its scheme.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("artifact_url is not a URL: %w", err)
	}
	if u.Scheme == "" {
		return nil, errors.New("artifact_url has no scheme")
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("artifact_url of scheme %s has no // part", u.Scheme)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u, nil
}

// redact is a URL as it may appear in logs and errors: no user info, query or
// fragment.
func redact(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return c.String()
}

var (
	_ sources.Source   = (*Registry)(nil)
	_ sources.Deciding = (*Registry)(nil)
	_ sources.Reporter = (*Registry)(nil)
	_ sources.Siblings = (*Registry)(nil)
	_ io.Closer        = (*Registry)(nil)
)
