package sources

import (
	"context"
	"io"
	"net/url"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
)

// Scheme is one registry scheme: the part of a registry URL after the
// common syntax (the scheme name, no credentials, no fragment, known and
// unrepeated options), which the scheme's own package owns. Each source
// package provides one; config lists them in its table, so adding a registry
// is a new package and one line there.
type Scheme interface {
	// Name is the URL scheme, lower case: "ghr".
	Name() string
	// Traits say what config needs to know about the scheme to check the
	// rest of the app.
	Traits() Traits
	// Decode checks the URL's host and path, and the scheme's own options
	// (those not common to every scheme: pre-release, artifact and calver
	// are taken out), and returns the settings the source is built from. Every
	// problem is a diagnostic at rng, the registry attribute; their text
	// never repeats the URL, which may hold secrets. Settings are nil when
	// there are errors.
	Decode(u *url.URL, options map[string]string, rng hcl.Range) (Settings, hcl.Diagnostics)
}

// DecodeFunc is a Scheme's Decode.
type DecodeFunc func(u *url.URL, options map[string]string, rng hcl.Range) (Settings, hcl.Diagnostics)

// OpenURLFunc is a URLOpener's OpenURL.
type OpenURLFunc func(ctx context.Context, rawURL string, opts Options) (io.ReadCloser, error)

// NewScheme is the Scheme named name with traits, whose URLs decode checks:
// what a source package returns for config's table. With open (nil for
// none), it is also a URLOpener.
func NewScheme(name string, traits Traits, decode DecodeFunc, open OpenURLFunc) Scheme {
	s := scheme{name: name, traits: traits, decode: decode}
	if open != nil {
		return openerScheme{s, open}
	}
	return s
}

type scheme struct {
	name   string
	traits Traits
	decode DecodeFunc
}

func (s scheme) Name() string { return s.name }

func (s scheme) Traits() Traits { return s.traits }

func (s scheme) Decode(u *url.URL, options map[string]string, rng hcl.Range) (Settings, hcl.Diagnostics) {
	return s.decode(u, options, rng)
}

type openerScheme struct {
	scheme
	open OpenURLFunc
}

func (s openerScheme) OpenURL(ctx context.Context, rawURL string, opts Options) (io.ReadCloser, error) {
	return s.open(ctx, rawURL, opts)
}

var _ URLOpener = openerScheme{}

// Invalid is what a DecodeFunc returns for a URL it refuses: no settings and
// one error at rng.
func Invalid(rng hcl.Range, summary, detail string) (Settings, hcl.Diagnostics) {
	return nil, hcl.Diagnostics{hclsettings.Error(rng, summary, detail)}
}

// Traits describe a scheme to config.
type Traits struct {
	// Options are the query options the URL may have: the common
	// PreReleaseOption and ArtifactOption when the scheme takes them, and its
	// own.
	Options []string
	// Images: the registry holds container images (an image runner is
	// needed, artifact means nothing).
	Images bool
	// Decides: the registry's server chooses the version and the artifact
	// (the source implements Deciding), so pre_release and slot mean
	// nothing; artifact is passed to the server as the name asked for.
	Decides bool
	// NoReports: the registry has no place for deployment reports.
	NoReports bool
	// Credentials says where the scheme's credentials come from, for the
	// message when a URL carries user:password@. "" gives a generic one.
	Credentials string
}

// The registry URL options common to the schemes that take them; config folds
// them into the app's pre_release and artifact.
const (
	PreReleaseOption = "pre-release"
	ArtifactOption   = "artifact"
	// CalVerOption is ?calver=FORMAT: tags are calendar versions of that
	// format (the app's calver).
	CalVerOption = "calver"
)

// Settings are one app's decoded registry URL: plain comparable data (the
// agent compares an app's old and new settings with reflect.DeepEqual), which
// builds the source.
type Settings interface {
	// Scheme is the URL scheme, "ghr".
	Scheme() string
	// New builds the source. It does no I/O.
	New(opts Options) (Source, error)
}

// URLOpener is implemented by schemes that can fetch one artifact named by a
// URL of their own (s3://<region>/<bucket>/<key>, ...), which a deciding
// registry's server may answer with. It uses that registry's own client and
// credentials chain.
type URLOpener interface {
	OpenURL(ctx context.Context, rawURL string, opts Options) (io.ReadCloser, error)
}

// Opener fetches one artifact URL of one scheme.
type Opener func(ctx context.Context, rawURL string) (io.ReadCloser, error)
