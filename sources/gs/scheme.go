package gs

import (
	"context"
	"io"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
)

// SchemeName is the URL scheme of Google Cloud Storage registries: gs://<bucket>/<prefix>.
const SchemeName = "gs"

// Scheme is the gs:// scheme, for config's table.
func Scheme() sources.Scheme {
	return sources.NewScheme(SchemeName, sources.Traits{
		Options:     []string{sources.PreReleaseOption, sources.ArtifactOption, sources.CalVerOption},
		Credentials: "credentials do not belong in the URL; Google application default credentials supply them (GOOGLE_APPLICATION_CREDENTIALS, workload identity). Remove the user:password@ part.",
	}, decode, openURL)
}

// decode checks gs://<bucket>/<path-prefix> (the prefix may be empty).
func decode(u *url.URL, _ map[string]string, rng hcl.Range) (sources.Settings, hcl.Diagnostics) {
	const form = `a Google Cloud Storage registry is "gs://<bucket>/<path-prefix>", e.g. "gs://my-releases/myapp"`
	if u.Opaque != "" || u.Host == "" {
		return sources.Invalid(rng, "Invalid gs registry", form+"; fix the URL.")
	}
	prefix := strings.Trim(u.Path, "/")
	if strings.Contains(prefix, "//") {
		return sources.Invalid(rng, "Invalid gs registry", "the path has an empty folder (\"//\"); "+form+".")
	}
	if err := (folders.Location{Bucket: u.Host, Prefix: prefix}).Check("gs://<bucket>/<path-prefix>"); err != nil {
		return sources.Invalid(rng, "Invalid gs registry", err.Error()+"; "+form+".")
	}
	return Config{Bucket: u.Host, Prefix: prefix}, nil
}

// openURL fetches gs://<bucket>/<key>.
func openURL(ctx context.Context, raw string, opts sources.Options) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	key := strings.TrimPrefix(u.Path, "/")
	src, err := New(Config{Bucket: u.Host}, opts)
	if err != nil {
		return nil, err
	}
	return src.OpenKey(ctx, key)
}

// Scheme is "gs".
func (Config) Scheme() string { return SchemeName }

// New builds the source.
func (c Config) New(opts sources.Options) (sources.Source, error) { return New(c, opts) }

var _ sources.Settings = Config{}
