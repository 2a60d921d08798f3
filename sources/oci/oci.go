// Package oci is the OCI registry source, `img://host/repository`: Docker Hub,
// GHCR, Google Artifact Registry, ECR, ACR and any registry that speaks the OCI
// Distribution API. Its words:
//
//   - Repository: "host[:port]/path" as written after img://. A name without a host
//     is on Docker Hub: "owner/app" is docker.io/owner/app and "nginx" is
//     docker.io/library/nginx.
//   - Tag: one name in the repository's tag list. Every tag is listed as a release;
//     the version engine keeps the semantic versions and ignores "latest" and
//     other names.
//   - Pinning: turning a tag into the digest of the manifest for one platform
//     ("repo@sha256:..."), so that what is deployed is exactly what was checked,
//     whatever the tag points to later.
//
// # What a poll costs
//
// Releases sends one GET /v2/<repo>/tags/list per page of tags (registries page at
// 100 to 1000 tags), and nothing per tag: a release's Image is "repo:tag", not
// pinned. The registry API has no conditional tag listing (no ETag or 304), so every
// poll costs those requests. Authentication is made once and reused across polls
// (a token exchange when the registry's token expires). Pin costs one manifest GET
// (two for a single-platform image, whose config is read to check the platform) and
// runs once per deploy: the agent calls it on the chosen release just before
// handing the image to the runner.
//
// # Credentials
//
// Docker's own: ~/.docker/config.json (or $DOCKER_CONFIG/config.json), its
// credential helpers and credsStore, as written by `docker login`, `gcloud auth
// configure-docker` or the ECR credential helper. Without an entry the registry is
// read anonymously. A registry answering 401 or 403 gives an error that names the
// `docker login <host>` to run; a new login is picked up by the next poll.
//
// # Plain HTTP
//
// By default the registry is spoken to over HTTPS, except hosts that
// go-containerregistry treats as local (localhost:<port>, *.localhost, 127.0.0.1,
// ::1 and private IPv4 addresses): for those HTTPS is tried and plain HTTP used when
// HTTPS is not served, as Docker does for 127.0.0.0/8. Config.Insecure allows plain
// HTTP for any host, for a private registry without TLS.
//
// # Signatures
//
// The source reads the cosign signatures stored beside an image (the
// sha256-<hex>.sig tag, and the Sigstore bundles that refer to the image; see
// signatures.go) for an app whose verify block has cosign_public_key:
// sources.ImageSigner. That costs, per deploy, a manifest GET for the
// release's tag, and per signed digest (the pinned manifest, and its index)
// one for the signature image and one referrers GET (two where the registry
// has no referrers API), plus a blob GET per signature and a manifest GET per
// bundle.
//
// OCI registries have no audit tracking: this source does not implement
// sources.Reporter, and Open fails (images are pulled by the container runner, not
// downloaded as files).
package oci

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Config is an `img://` registry URL, decoded.
type Config struct {
	// Repository is "host[:port]/path" as written after img:// ("ghcr.io/owner/app",
	// "owner/app", "nginx", "127.0.0.1:5000/app"), without tag or digest.
	Repository string
	// Insecure allows plain HTTP to the registry whatever its host. Hosts that are
	// local (see the package doc) may use plain HTTP without it.
	Insecure bool
}

// Pinner is implemented by sources whose releases are images. Pin resolves the
// release's tag to the manifest digest for the platform and returns the image
// reference pinned by it, "repo@sha256:...". The agent calls it once per deploy,
// right before handing the image to the runner (Deployment.Image).
//
// platform is "os/arch[/variant]" as Docker writes it ("linux/amd64",
// "linux/arm/v7"); "" is DefaultPlatform(). A multi-platform image (an index)
// resolves to the manifest of that platform; a single-platform image for another
// platform is an error.
type Pinner interface {
	Pin(ctx context.Context, rel version.Release, platform string) (string, error)
}

// ErrPlatform is wrapped by Pin when the tag has no image for the platform: the
// release cannot run on this host, whatever is retried. It matches
// sources.ErrIncompatible, so the agent needs no knowledge of this package.
var ErrPlatform error = platformError{}

type platformError struct{}

func (platformError) Error() string { return "no image for the platform" }

// Is makes errors.Is(err, sources.ErrIncompatible) hold for ErrPlatform.
func (platformError) Is(target error) bool { return target == sources.ErrIncompatible }

// Registry is one app's view of one image repository.
type Registry struct {
	repo      name.Repository
	display   string // the repository as Docker writes it: docker.io/library/nginx
	transport http.RoundTripper
	now       func() time.Time
	limits    *rateLimits

	mu     sync.Mutex
	puller *remote.Puller // made by the first call; dropped after an auth failure
}

// New returns the source for cfg.Repository. It does no I/O.
func New(cfg Config, opts sources.Options) (*Registry, error) {
	repo, err := parseRepository(cfg)
	if err != nil {
		return nil, err
	}
	var base http.RoundTripper = http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	limits := &rateLimits{next: redirectLimit{next: base}, now: now}
	return &Registry{
		repo:      repo,
		display:   dockerName(repo),
		transport: limits,
		now:       now,
		limits:    limits,
	}, nil
}

// maxRedirects is how many redirects one request may follow, as net/http's
// default client allows.
const maxRedirects = 10

// redirectLimit fails a request that is the maxRedirects-th redirect of a
// chain. go-containerregistry follows the tag list's redirects without a
// limit, so a registry redirecting a request to itself was asked thousands of
// times a second (TestRegistryFaults/redirect-loop).
type redirectLimit struct{ next http.RoundTripper }

func (l redirectLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	n := 0
	for r := req; r.Response != nil && r.Response.Request != nil; r = r.Response.Request {
		if n++; n >= maxRedirects {
			return nil, fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
	}
	return l.next.RoundTrip(req)
}

// parseRepository checks the repository part of an img:// URL.
func parseRepository(cfg Config) (name.Repository, error) {
	s := cfg.Repository
	if s == "" {
		return name.Repository{}, fmt.Errorf("img registry: the repository is empty; write img://host/owner/app or img://owner/app")
	}
	if strings.Contains(s, "@") {
		return name.Repository{}, fmt.Errorf("img registry %q: names an image digest; give the repository only (tags are found by polling)", s)
	}
	// A colon after the last slash is a tag ("app:v1"); one before it is a port
	// ("127.0.0.1:5000/app").
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return name.Repository{}, fmt.Errorf("img registry %q: names a tag; give the repository only (tags are found by polling)", s)
	}
	var nopts []name.Option
	if cfg.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(s, nopts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("img registry %q: %w", s, err)
	}
	return repo, nil
}

// dockerName is the repository as Docker writes it: Docker Hub is "docker.io",
// not go-containerregistry's "index.docker.io".
func dockerName(repo name.Repository) string {
	if repo.RegistryStr() == name.DefaultRegistry {
		return "docker.io/" + repo.RepositoryStr()
	}
	return repo.Name()
}

// Repository is the repository as Docker writes it ("docker.io/library/nginx",
// "ghcr.io/owner/app", "127.0.0.1:5000/app").
func (r *Registry) Repository() string { return r.display }

// client returns the puller, made on first use and reused so that authentication
// is not repeated on every poll.
func (r *Registry) client() (*remote.Puller, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.puller != nil {
		return r.puller, nil
	}
	p, err := remote.NewPuller(
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(r.transport),
		remote.WithUserAgent("dewy-agent"),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
		// Not 429: a rate limit is waited out by the agent (RateLimitedError), not
		// retried at once.
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("img %s: %w", r.display, err)
	}
	r.puller = p
	return p, nil
}

// forget drops the puller after an authentication failure, so the next call reads
// the credentials again (the user may have run `docker login` since).
func (r *Registry) forget() {
	r.mu.Lock()
	r.puller = nil
	r.mu.Unlock()
}

// Releases lists one release per tag, with Image "repo:tag". It follows every
// page of the tag list: one request per page.
func (r *Registry) Releases(ctx context.Context) ([]version.Release, error) {
	p, err := r.client()
	if err != nil {
		return nil, err
	}
	tags, err := p.List(ctx, r.repo)
	if err != nil {
		return nil, r.wrap(ctx, "list tags", err)
	}
	rels := make([]version.Release, 0, len(tags))
	for _, t := range tags {
		rels = append(rels, version.Release{Tag: t, Image: r.display + ":" + t})
	}
	return rels, nil
}

// Open fails: an image release has no files to download.
func (r *Registry) Open(_ context.Context, rel version.Release, asset version.Asset) (io.ReadCloser, error) {
	return nil, fmt.Errorf("img %s: release %s: asset %q: images are not downloaded as files; use the container runner", r.display, rel.Tag, asset.Name)
}

// DefaultPlatform is the platform Pin resolves for when given "": linux and the
// agent's architecture (with GOARM's variant on 32-bit ARM).
func DefaultPlatform() string {
	p := "linux/" + runtime.GOARCH
	if runtime.GOARCH == "arm" {
		p += "/v" + goarm()
	}
	return p
}

// Pin resolves rel's tag to the manifest digest for platform and returns
// "repo@sha256:...". See Pinner.
func (r *Registry) Pin(ctx context.Context, rel version.Release, platform string) (string, error) {
	if platform == "" {
		platform = DefaultPlatform()
	}
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return "", fmt.Errorf("img %s: pin %s: platform %q: %w", r.display, rel.Tag, platform, err)
	}
	if rel.Tag == "" {
		return "", fmt.Errorf("img %s: pin: the release has no tag", r.display)
	}
	p, err := r.client()
	if err != nil {
		return "", err
	}
	desc, err := p.Get(ctx, r.repo.Tag(rel.Tag))
	if err != nil {
		return "", r.wrap(ctx, "pin "+rel.Tag, err)
	}
	digest, err := r.platformDigest(desc, *want, rel.Tag)
	if err != nil {
		return "", r.wrap(ctx, "pin "+rel.Tag, err)
	}
	return r.display + "@" + digest.String(), nil
}

// platformDigest picks the manifest of the platform from what the tag points to.
func (r *Registry) platformDigest(desc *remote.Descriptor, want v1.Platform, tag string) (v1.Hash, error) {
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return v1.Hash{}, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return v1.Hash{}, err
		}
		var seen []string
		for _, m := range im.Manifests {
			if m.Platform == nil {
				continue
			}
			if m.Platform.Satisfies(want) && m.MediaType.IsImage() {
				return m.Digest, nil
			}
			seen = append(seen, m.Platform.String())
		}
		return v1.Hash{}, fmt.Errorf("%w: %s has no image for %s (it has: %s)", ErrPlatform, tag, want.String(), strings.Join(seen, ", "))
	}
	if !desc.MediaType.IsImage() {
		return v1.Hash{}, fmt.Errorf("%s is a %s, not an image", tag, desc.MediaType)
	}
	img, err := desc.Image()
	if err != nil {
		return v1.Hash{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read image config: %w", err)
	}
	have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if cf.OS != "" && cf.Architecture != "" && !have.Satisfies(v1.Platform{OS: want.OS, Architecture: want.Architecture}) {
		return v1.Hash{}, fmt.Errorf("%w: %s is an image for %s only; this host needs %s", ErrPlatform, tag, have.String(), want.String())
	}
	return desc.Digest, nil
}

var (
	_ sources.Source = (*Registry)(nil)
	_ Pinner         = (*Registry)(nil)
)
