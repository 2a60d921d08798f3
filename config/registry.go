package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// This file is the part of registry URL parsing common to every scheme: the
// URL syntax, the scheme, no credentials, no fragment, known and unrepeated
// options, and the pre-release and artifact options folded into the app. The
// rest of the URL belongs to the scheme's package (table.go), which decodes it
// into the app's sources.Settings.

// problem is one thing wrong with a registry URL; it becomes a diagnostic on
// the registry attribute. Messages never repeat the URL itself or the values
// of unknown options, which may carry secrets.
type problem struct {
	summary, detail string
}

// parsedRegistry is a registry URL with the options that map to app
// attributes taken out. preRelease and artifact are nil when the URL does not
// set them.
type parsedRegistry struct {
	registry   Registry
	traits     sources.Traits
	preRelease *bool
	artifact   *string
	calver     *string
	// options are the scheme's own options, for its Decode.
	options map[string]string
}

const registryExample = `for example "ghr://owner/repo" or "file:///srv/releases/myapp"`

// parseRegistry parses a registry URL at rng, the registry attribute. Every
// problem found is returned as a diagnostic there; the Registry is filled as
// far as the URL allows, and its URL never carries credentials.
func parseRegistry(raw string, rng hcl.Range) (parsedRegistry, hcl.Diagnostics) {
	p, probs, u, sch := parseCommon(raw)
	var diags hcl.Diagnostics
	for _, pr := range probs {
		diags = append(diags, hclsettings.Error(rng, pr.summary, pr.detail))
	}
	if sch == nil {
		return p, diags
	}
	settings, sdiags := sch.Decode(u, p.options, rng)
	diags = append(diags, sdiags...)
	if !sdiags.HasErrors() {
		p.registry.Settings = settings
	}
	return p, diags
}

// quoted matches a Go-quoted string (%q) in an error message.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// parseCommon checks what every registry URL shares and finds its scheme.
// The scheme is nil when the URL has none this build knows (reported).
func parseCommon(raw string) (parsedRegistry, []problem, *url.URL, sources.Scheme) {
	var p parsedRegistry
	if raw == "" {
		return p, []problem{{"Empty registry", "registry is empty; write the registry as a URL, " + registryExample + "."}}, nil, nil
	}
	if strings.TrimSpace(raw) != raw {
		return p, []problem{{"Invalid registry URL", "registry starts or ends with white space; remove it."}}, nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, credentials included: keep only the
		// cause, without the part of the URL it quotes (`invalid port
		// ":secret" after host` for "//user:secret" without a host).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		cause := quoted.ReplaceAllString(err.Error(), "…")
		return p, []problem{{"Invalid registry URL", fmt.Sprintf("registry is not a valid URL (%s); write it "+registryExample+".", cause)}}, nil, nil
	}

	p.registry.URL = withoutCredentials(raw, u)
	p.registry.Scheme = u.Scheme
	if u.Scheme == "" {
		return p, []problem{{"Missing registry scheme", "registry has no scheme; write it as a URL, " + registryExample + "."}}, nil, nil
	}
	sch, ok := scheme(u.Scheme)
	if !ok {
		return p, []problem{{"Unknown registry scheme", fmt.Sprintf(
			"unknown registry scheme %q (supported: %s); write the registry %s.", u.Scheme, joinList(schemeNames()), registryExample)}}, nil, nil
	}
	p.traits = sch.Traits()

	var probs []problem
	if u.User != nil {
		detail := p.traits.Credentials
		if detail == "" {
			detail = "credentials do not belong in the URL; remove the user:password@ part."
		}
		probs = append(probs, problem{"Credentials in registry URL", detail})
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		probs = append(probs, problem{"Invalid registry URL", "registry has a #fragment, which means nothing to a registry; remove it."})
	}
	probs = append(probs, parseOptions(u, &p)...)
	return p, probs, u, sch
}

// withoutCredentials returns the URL as written, or, when it has user info,
// the URL rebuilt without it.
func withoutCredentials(raw string, u *url.URL) string {
	if u.User == nil {
		return raw
	}
	c := *u
	c.User = nil
	return c.String()
}

// parseOptions checks the query options against the scheme's allowed set and
// takes out pre-release and artifact.
func parseOptions(u *url.URL, p *parsedRegistry) []problem {
	allowed := p.traits.Options
	values, err := url.ParseQuery(u.RawQuery)
	var probs []problem
	if err != nil {
		probs = append(probs, problem{"Invalid registry options", fmt.Sprintf(
			"the URL's query cannot be read (%v); write options as ?name=value&name=value.", err)})
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := values[k]
		if !slices.Contains(allowed, k) {
			detail := fmt.Sprintf("%s registries do not take the option %q; the options are: %s.", u.Scheme, k, joinList(allowed))
			if p.traits.Decides && (k == sources.PreReleaseOption || k == sources.ArtifactOption) {
				detail = fmt.Sprintf("a %s registry's server chooses the version and the artifact itself, so %q cannot be used with %s://; remove it.", u.Scheme, k, u.Scheme)
			}
			probs = append(probs, problem{"Unknown registry option", detail})
			continue
		}
		if len(vs) > 1 {
			probs = append(probs, problem{"Repeated registry option", fmt.Sprintf(
				"the option %q appears %d times; give it once.", k, len(vs))})
			continue
		}
		v := vs[0]
		switch k {
		case sources.PreReleaseOption:
			switch v {
			case "true", "false":
				b := v == "true"
				p.preRelease = &b
			default:
				probs = append(probs, problem{"Invalid pre-release option", fmt.Sprintf(
					"?pre-release=%s must be true or false.", v)})
			}
		case sources.ArtifactOption:
			switch {
			case v == "":
				probs = append(probs, problem{"Empty artifact option",
					"?artifact= is empty; name the release asset, or remove the option to choose by OS and architecture."})
			case strings.ContainsAny(v, `/\`):
				probs = append(probs, problem{"Invalid artifact option", fmt.Sprintf(
					"?artifact=%s is a path; give the file name of the release asset only.", v)})
			case version.IsSignature(v):
				probs = append(probs, problem{"Invalid artifact option", fmt.Sprintf(
					"?artifact=%s names a signature file; name the artifact it signs.", v)})
			default:
				p.artifact = &v
			}
		case sources.CalVerOption:
			if err := checkCalVer(v); err != nil {
				probs = append(probs, problem{"Invalid calver option", fmt.Sprintf("?calver=: %v.", err)})
				continue
			}
			p.calver = &v
		default:
			// The scheme's own option: its Decode checks the value.
			if p.options == nil {
				p.options = map[string]string{}
			}
			p.options[k] = v
		}
	}
	return probs
}
