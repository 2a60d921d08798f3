package file

import (
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
)

// SchemeName is the URL scheme of a folder registry: file:///srv/releases/app.
const SchemeName = "file"

// Config is a file registry's settings, from its URL.
type Config struct {
	// Path is the absolute, cleaned folder path.
	Path string
}

// Scheme is the file:// scheme, for config's table.
func Scheme() sources.Scheme {
	return sources.NewScheme(SchemeName, sources.Traits{
		Options:     []string{sources.PreReleaseOption, sources.ArtifactOption, sources.CalVerOption},
		Credentials: "credentials do not belong in the URL, and a file registry takes none; remove the user:password@ part.",
	}, decode, nil)
}

// decode checks file:///abs/path: an empty host and an absolute path.
func decode(u *url.URL, _ map[string]string, rng hcl.Range) (sources.Settings, hcl.Diagnostics) {
	const form = `a file registry is "file://" followed by an absolute folder path, which makes three slashes: "file:///srv/releases/myapp"`
	switch {
	case u.Opaque != "":
		return sources.Invalid(rng, "Relative file registry", form+"; relative paths are not allowed.")
	case u.Host != "":
		return sources.Invalid(rng, "Invalid file registry", fmt.Sprintf("%q after \"file://\" is read as a host name, not a folder; %s.", u.Host, form))
	case u.Path == "":
		return sources.Invalid(rng, "Invalid file registry", "the URL has no folder path; "+form+".")
	}
	return Config{Path: filepath.Clean(u.Path)}, nil
}

// Scheme is "file".
func (Config) Scheme() string { return SchemeName }

// New builds the source.
func (c Config) New(opts sources.Options) (sources.Source, error) { return New(c.Path, opts) }

var _ sources.Settings = Config{}
