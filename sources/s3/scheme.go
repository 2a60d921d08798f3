package s3

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
)

// SchemeName is the URL scheme of S3 registries: s3://<region>/<bucket>/<prefix>.
const SchemeName = "s3"

// endpointOption is ?endpoint=, an S3-compatible service's base URL.
const endpointOption = "endpoint"

// Scheme is the s3:// scheme, for config's table.
func Scheme() sources.Scheme {
	return sources.NewScheme(SchemeName, sources.Traits{
		Options:     []string{sources.PreReleaseOption, sources.ArtifactOption, sources.CalVerOption, endpointOption},
		Credentials: "credentials do not belong in the URL; the AWS default chain supplies them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared files, instance roles). Remove the user:password@ part.",
	}, decode, openURL)
}

// decode checks s3://<region>/<bucket>/<path-prefix> (the prefix may be
// empty) and the endpoint option.
func decode(u *url.URL, options map[string]string, rng hcl.Range) (sources.Settings, hcl.Diagnostics) {
	const form = `an S3 registry is "s3://<region>/<bucket>/<path-prefix>", e.g. "s3://ap-northeast-1/my-releases/myapp"`
	region, rest := u.Host, strings.Trim(u.Path, "/")
	bucket, prefix, _ := strings.Cut(rest, "/")
	switch {
	case u.Opaque != "" || region == "" || bucket == "":
		return sources.Invalid(rng, "Invalid s3 registry", form+"; fix the URL.")
	case strings.ContainsFunc(region, func(r rune) bool { return !isNameRune(r) }):
		return sources.Invalid(rng, "Invalid S3 region", fmt.Sprintf("region %q is not an AWS region name such as \"us-east-1\"; %s.", region, form))
	case strings.Contains(rest, "//"):
		return sources.Invalid(rng, "Invalid s3 registry", "the path has an empty folder (\"//\"); "+form+".")
	}
	cfg := Config{Region: region, Bucket: bucket, Prefix: prefix}
	if v, ok := options[endpointOption]; ok {
		if eu, err := url.Parse(v); err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
			return sources.Invalid(rng, "Invalid endpoint option",
				"?endpoint= must be the http(s) URL of an S3-compatible service without credentials, e.g. https://s3.example.com.")
		}
		cfg.Endpoint = v
	}
	if err := validate(cfg); err != nil {
		return sources.Invalid(rng, "Invalid s3 registry", err.Error()+"; "+form+".")
	}
	return cfg, nil
}

// isNameRune: region names are ASCII letters, digits and "-".
func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
}

// openURL fetches s3://<region>/<bucket>/<key>.
func openURL(ctx context.Context, raw string, opts sources.Options) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	// Dewy's servers name S3-compatible services as ?endpoint=; New checks it.
	src, err := New(Config{Region: u.Host, Bucket: bucket, Endpoint: u.Query().Get(endpointOption)}, opts)
	if err != nil {
		return nil, err
	}
	return src.OpenKey(ctx, key)
}

// Scheme is "s3".
func (Config) Scheme() string { return SchemeName }

// New builds the source.
func (c Config) New(opts sources.Options) (sources.Source, error) { return New(c, opts) }

var _ sources.Settings = Config{}
