package oci

import (
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
)

// SchemeName is the URL scheme of OCI image registries: img://ghcr.io/owner/app.
const SchemeName = "img"

// Scheme is the img:// scheme, for config's table.
func Scheme() sources.Scheme {
	return sources.NewScheme(SchemeName, sources.Traits{
		Options:     []string{sources.PreReleaseOption, sources.CalVerOption},
		Images:      true,
		NoReports:   true,
		Credentials: "credentials do not belong in the URL; run docker login <host> as the agent's user (the agent reads Docker's config.json and credential helpers). Remove the user:password@ part.",
	}, decode, nil)
}

// decode checks img://<host>/<repository>, or Docker Hub's short forms
// img://<owner>/<repository> and img://<image>.
func decode(u *url.URL, _ map[string]string, rng hcl.Range) (sources.Settings, hcl.Diagnostics) {
	const form = `an OCI registry is "img://<host>/<repository>", e.g. "img://ghcr.io/owner/app", or "img://owner/app" for Docker Hub`
	if u.Opaque != "" || u.Host == "" {
		return sources.Invalid(rng, "Invalid img registry", form+"; fix the URL.")
	}
	path := strings.Trim(u.Path, "/")
	if strings.Contains(path, "//") {
		return sources.Invalid(rng, "Invalid img registry", "the repository has an empty part (\"//\"); "+form+".")
	}
	if strings.ContainsAny(path, ":@") {
		return sources.Invalid(rng, "Invalid img registry", "give the repository without a tag or digest: the agent chooses the tag by semantic version; "+form+".")
	}
	repo := u.Host
	if path != "" {
		repo += "/" + path
	}
	cfg := Config{Repository: repo}
	if _, err := parseRepository(cfg); err != nil {
		return sources.Invalid(rng, "Invalid img registry", err.Error()+"; "+form+".")
	}
	return cfg, nil
}

// Scheme is "img".
func (Config) Scheme() string { return SchemeName }

// New builds the source.
func (c Config) New(opts sources.Options) (sources.Source, error) { return New(c, opts) }

var _ sources.Settings = Config{}
