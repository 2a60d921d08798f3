package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// problem is one thing wrong with a registry URL; the caller turns it into a
// diagnostic on the registry attribute. Messages never repeat the URL itself
// or the values of unknown options, which may carry secrets.
type problem struct {
	summary, detail string
}

// parsedRegistry is a registry URL with the options that map to app
// attributes taken out. preRelease and artifact are nil when the URL does not
// set them.
type parsedRegistry struct {
	registry   Registry
	preRelease *bool
	artifact   *string
}

// Registry query options shared by every scheme of this build; they are folded
// into App.PreRelease and App.Artifact.
const (
	optPreRelease = "pre-release"
	optArtifact   = "artifact"
	optEndpoint   = "endpoint" // s3: an S3-compatible service's URL
	optNoTLS      = "no-tls"   // grpc: plaintext instead of TLS
)

// supportedSchemes are the registry schemes this build can use.
func supportedSchemes() []string { return []string{"file", "ghr", "gs", "grpc", "img", "s3"} }

// schemeOptions are the query options each supported scheme accepts. A new
// scheme is a case here and in parseRegistry.
func schemeOptions(scheme string) []string {
	switch scheme {
	case "ghr", "file", "gs":
		return []string{optPreRelease, optArtifact}
	case "s3":
		return []string{optPreRelease, optArtifact, optEndpoint}
	case "grpc":
		return []string{optNoTLS}
	case "img":
		return []string{optPreRelease}
	}
	return nil
}

const registryExample = `for example "ghr://owner/repo" or "file:///srv/releases/myapp"`

// parseRegistry parses the seed's registry URL syntax. Every problem found is
// returned; the Registry is filled as far as the URL allows, and its URL never
// carries credentials.
func parseRegistry(raw string) (parsedRegistry, []problem) {
	var p parsedRegistry
	if raw == "" {
		return p, []problem{{"Empty registry", "registry is empty; write the registry as a URL, " + registryExample + "."}}
	}
	if strings.TrimSpace(raw) != raw {
		return p, []problem{{"Invalid registry URL", "registry starts or ends with white space; remove it."}}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, credentials included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return p, []problem{{"Invalid registry URL", fmt.Sprintf("registry is not a valid URL (%v); write it "+registryExample+".", err)}}
	}

	var probs []problem
	p.registry.URL = withoutCredentials(raw, u)
	p.registry.Scheme = u.Scheme

	switch u.Scheme {
	case "":
		return p, []problem{{"Missing registry scheme", "registry has no scheme; write it as a URL, " + registryExample + "."}}
	case "ghr":
		probs = checkGHR(u, &p.registry)
	case "file":
		probs = checkFileURL(u, &p.registry)
	case "s3":
		probs = checkS3(u, &p.registry)
	case "gs":
		probs = checkGS(u, &p.registry)
	case "grpc":
		probs = checkGRPC(u, &p.registry)
	case "img":
		probs = checkIMG(u, &p.registry)
	default:
		return p, []problem{{"Unknown registry scheme", fmt.Sprintf(
			"unknown registry scheme %q (supported: %s); write the registry %s.", u.Scheme, joinList(supportedSchemes()), registryExample)}}
	}

	if u.User != nil {
		probs = append(probs, credentialsProblem(u.Scheme))
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		probs = append(probs, problem{"Invalid registry URL", "registry has a #fragment, which means nothing to a registry; remove it."})
	}
	probs = append(probs, parseOptions(u, &p)...)
	return p, probs
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

func credentialsProblem(scheme string) problem {
	detail := "credentials do not belong in the URL; remove the user:password@ part."
	switch scheme {
	case "ghr":
		detail = "credentials do not belong in the URL; use GITHUB_TOKEN (or GH_TOKEN) in the agent's environment and remove the user:password@ part."
	case "file":
		detail = "credentials do not belong in the URL, and a file registry takes none; remove the user:password@ part."
	case "s3":
		detail = "credentials do not belong in the URL; the AWS default chain supplies them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared files, instance roles). Remove the user:password@ part."
	case "gs":
		detail = "credentials do not belong in the URL; Google application default credentials supply them (GOOGLE_APPLICATION_CREDENTIALS, workload identity). Remove the user:password@ part."
	case "img":
		detail = "credentials do not belong in the URL; run docker login <host> as the agent's user (the agent reads Docker's config.json and credential helpers). Remove the user:password@ part."
	}
	return problem{"Credentials in registry URL", detail}
}

// checkGHR checks ghr://<owner>/<repo>: the owner is the URL host, the
// repository the one path segment.
func checkGHR(u *url.URL, reg *Registry) []problem {
	const form = `a GitHub registry is "ghr://<owner>/<repo>"`
	if u.Opaque != "" {
		return []problem{{"Invalid ghr registry", form + ` with two slashes after "ghr:"; fix the URL.`}}
	}
	owner, repo := u.Host, strings.TrimPrefix(u.Path, "/")
	if owner == "" || repo == "" || strings.Contains(repo, "/") {
		return []problem{{"Invalid ghr registry", form + " with exactly two non-empty parts, the owner and the repository; fix the URL."}}
	}
	reg.Host, reg.Path = owner, repo
	var probs []problem
	if !onlyChars(owner, "-") {
		probs = append(probs, problem{"Invalid GitHub owner", fmt.Sprintf(
			"owner %q is not a GitHub user or organization name (letters, digits and \"-\"); fix the URL.", owner)})
	}
	if !onlyChars(repo, "-_.") {
		probs = append(probs, problem{"Invalid GitHub repository", fmt.Sprintf(
			"repository %q is not a GitHub repository name (letters, digits, \"-\", \"_\" and \".\"); fix the URL.", repo)})
	}
	return probs
}

// checkS3 checks s3://<region>/<bucket>/<path-prefix>; Path becomes
// "<bucket>/<path-prefix>" (the prefix may be empty).
func checkS3(u *url.URL, reg *Registry) []problem {
	const form = `an S3 registry is "s3://<region>/<bucket>/<path-prefix>", e.g. "s3://ap-northeast-1/my-releases/myapp"`
	region, rest := u.Host, strings.Trim(u.Path, "/")
	bucket, _, _ := strings.Cut(rest, "/")
	if u.Opaque != "" || region == "" || bucket == "" {
		return []problem{{"Invalid s3 registry", form + "; fix the URL."}}
	}
	if !onlyChars(region, "-") {
		return []problem{{"Invalid S3 region", fmt.Sprintf("region %q is not an AWS region name such as \"us-east-1\"; %s.", region, form)}}
	}
	if strings.Contains(rest, "//") {
		return []problem{{"Invalid s3 registry", "the path has an empty folder (\"//\"); " + form + "."}}
	}
	reg.Host, reg.Path = region, rest
	return nil
}

// checkGS checks gs://<bucket>/<path-prefix>; Path is the prefix (may be empty).
func checkGS(u *url.URL, reg *Registry) []problem {
	const form = `a Google Cloud Storage registry is "gs://<bucket>/<path-prefix>", e.g. "gs://my-releases/myapp"`
	if u.Opaque != "" || u.Host == "" {
		return []problem{{"Invalid gs registry", form + "; fix the URL."}}
	}
	prefix := strings.Trim(u.Path, "/")
	if strings.Contains(prefix, "//") {
		return []problem{{"Invalid gs registry", "the path has an empty folder (\"//\"); " + form + "."}}
	}
	reg.Host, reg.Path = u.Host, prefix
	return nil
}

// checkGRPC checks grpc://<host>[:port], which has no path.
func checkGRPC(u *url.URL, reg *Registry) []problem {
	const form = `a gRPC registry is "grpc://<host>[:port]", e.g. "grpc://registry.example.com:9000" (add ?no-tls=true for plaintext)`
	if u.Opaque != "" || u.Host == "" {
		return []problem{{"Invalid grpc registry", form + "; fix the URL."}}
	}
	if strings.Trim(u.Path, "/") != "" {
		return []problem{{"Invalid grpc registry", "a gRPC registry URL has no path; " + form + "."}}
	}
	reg.Host = u.Host
	return nil
}

// checkIMG checks img://<host>/<repository>, or Docker Hub's short forms
// img://<owner>/<repository> and img://<image>. Host is the URL's host part and
// Path the rest; together they are the repository as written.
func checkIMG(u *url.URL, reg *Registry) []problem {
	const form = `an OCI registry is "img://<host>/<repository>", e.g. "img://ghcr.io/owner/app", or "img://owner/app" for Docker Hub`
	if u.Opaque != "" || u.Host == "" {
		return []problem{{"Invalid img registry", form + "; fix the URL."}}
	}
	path := strings.Trim(u.Path, "/")
	if strings.Contains(path, "//") {
		return []problem{{"Invalid img registry", "the repository has an empty part (\"//\"); " + form + "."}}
	}
	if strings.ContainsAny(path, ":@") {
		return []problem{{"Invalid img registry", "give the repository without a tag or digest: the agent chooses the tag by semantic version; " + form + "."}}
	}
	reg.Host, reg.Path = u.Host, path
	return nil
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

// checkFileURL checks file:///abs/path: an empty host and an absolute path.
func checkFileURL(u *url.URL, reg *Registry) []problem {
	const form = `a file registry is "file://" followed by an absolute folder path, which makes three slashes: "file:///srv/releases/myapp"`
	switch {
	case u.Opaque != "":
		return []problem{{"Relative file registry", form + "; relative paths are not allowed."}}
	case u.Host != "":
		return []problem{{"Invalid file registry", fmt.Sprintf(
			"%q after \"file://\" is read as a host name, not a folder; %s.", u.Host, form)}}
	case u.Path == "":
		return []problem{{"Invalid file registry", "the URL has no folder path; " + form + "."}}
	}
	reg.Path = filepath.Clean(u.Path)
	return nil
}

// parseOptions checks the query options against the scheme's allowed set and
// takes out pre-release and artifact.
func parseOptions(u *url.URL, p *parsedRegistry) []problem {
	allowed := schemeOptions(u.Scheme)
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
			if u.Scheme == "grpc" && (k == optPreRelease || k == optArtifact) {
				detail = fmt.Sprintf("a gRPC registry server chooses the version and the artifact itself, so %q cannot be used with grpc://; remove it.", k)
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
		case optPreRelease:
			switch v {
			case "true", "false":
				b := v == "true"
				p.preRelease = &b
			default:
				probs = append(probs, problem{"Invalid pre-release option", fmt.Sprintf(
					"?pre-release=%s must be true or false.", v)})
			}
		case optArtifact:
			switch {
			case v == "":
				probs = append(probs, problem{"Empty artifact option",
					"?artifact= is empty; name the release asset, or remove the option to choose by OS and architecture."})
			case strings.ContainsAny(v, `/\`):
				probs = append(probs, problem{"Invalid artifact option", fmt.Sprintf(
					"?artifact=%s is a path; give the file name of the release asset only.", v)})
			default:
				p.artifact = &v
			}
		case optNoTLS:
			if v != "true" && v != "false" {
				probs = append(probs, problem{"Invalid no-tls option", fmt.Sprintf("?no-tls=%s must be true or false.", v)})
				continue
			}
			fallthrough
		default:
			if k == optEndpoint {
				if eu, err := url.Parse(v); err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
					probs = append(probs, problem{"Invalid endpoint option",
						"?endpoint= must be the http(s) URL of an S3-compatible service without credentials, e.g. https://s3.example.com."})
					continue
				}
			}
			if p.registry.Options == nil {
				p.registry.Options = map[string]string{}
			}
			p.registry.Options[k] = v
		}
	}
	return probs
}
