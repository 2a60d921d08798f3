package ghr

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/sources"
)

// SchemeName is the URL scheme of GitHub releases: ghr://owner/repo.
const SchemeName = "ghr"

// Config is a GitHub registry's settings, from its URL.
type Config struct {
	Owner, Repo string
}

// Scheme is the ghr:// scheme, for config's table.
func Scheme() sources.Scheme {
	return sources.NewScheme(SchemeName, sources.Traits{
		Options:     []string{sources.PreReleaseOption, sources.ArtifactOption, sources.CalVerOption},
		Credentials: "credentials do not belong in the URL; use GITHUB_TOKEN (or GH_TOKEN) in the agent's environment and remove the user:password@ part.",
	}, decode, openURL)
}

// decode checks ghr://<owner>/<repo>: the owner is the URL host, the
// repository the one path segment.
func decode(u *url.URL, _ map[string]string, rng hcl.Range) (sources.Settings, hcl.Diagnostics) {
	const form = `a GitHub registry is "ghr://<owner>/<repo>"`
	if u.Opaque != "" {
		return sources.Invalid(rng, "Invalid ghr registry", form+` with two slashes after "ghr:"; fix the URL.`)
	}
	owner, repo := u.Host, strings.TrimPrefix(u.Path, "/")
	if owner == "" || repo == "" || strings.Contains(repo, "/") {
		return sources.Invalid(rng, "Invalid ghr registry", form+" with exactly two non-empty parts, the owner and the repository; fix the URL.")
	}
	var diags hcl.Diagnostics
	if !onlyChars(owner, "-") {
		diags = append(diags, hclsettings.Error(rng, "Invalid GitHub owner", fmt.Sprintf(
			"owner %q is not a GitHub user or organization name (letters, digits and \"-\"); fix the URL.", owner)))
	}
	if !onlyChars(repo, "-_.") || checkName("repository", repo) != nil {
		diags = append(diags, hclsettings.Error(rng, "Invalid GitHub repository", fmt.Sprintf(
			"repository %q is not a GitHub repository name (letters, digits, \"-\", \"_\" and \".\"); fix the URL.", repo)))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return Config{Owner: owner, Repo: repo}, nil
}

// onlyChars reports whether s holds only ASCII letters, digits and the runes
// of extra.
func onlyChars(s, extra string) bool {
	for _, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && !strings.ContainsRune(extra, c) {
			return false
		}
	}
	return true
}

// openURL fetches ghr://<owner>/<repo>/<tag>/<asset>, or Dewy's form
// ghr://<owner>/<repo>/tag/<tag>/<asset>: the named asset of the release with
// that tag.
func openURL(ctx context.Context, raw string, opts sources.Options) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) == 4 && parts[1] == "tag" {
		parts = []string{parts[0], parts[2], parts[3]} // Dewy's form
	}
	if len(parts) != 3 || slices.Contains(parts, "") {
		return nil, fmt.Errorf("artifact_url %s: want ghr://<owner>/<repo>/<tag>/<asset> or ghr://<owner>/<repo>/tag/<tag>/<asset>", raw)
	}
	src, err := New(u.Host, parts[0], opts)
	if err != nil {
		return nil, err
	}
	rels, err := src.Releases(ctx)
	if err != nil {
		return nil, err
	}
	for _, rel := range rels {
		if rel.Tag != parts[1] {
			continue
		}
		for _, a := range rel.Assets {
			if a.Name == parts[2] {
				return src.Open(ctx, rel, a)
			}
		}
	}
	return nil, fmt.Errorf("artifact_url %s: no such release asset: %w", raw, sources.ErrNotFound)
}

// Scheme is "ghr".
func (Config) Scheme() string { return SchemeName }

// New builds the source.
func (c Config) New(opts sources.Options) (sources.Source, error) { return New(c.Owner, c.Repo, opts) }

var _ sources.Settings = Config{}
