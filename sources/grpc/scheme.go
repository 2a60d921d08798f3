package grpcsrc

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
)

// SchemeName is the URL scheme of gRPC registries: grpc://host:port.
const SchemeName = "grpc"

// noTLSOption is ?no-tls=true: plaintext instead of TLS.
const noTLSOption = "no-tls"

// Scheme is the grpc:// scheme, for config's table.
func Scheme() sources.Scheme {
	// The server decides, but it is told the artifact name the app asks for
	// (Dewy's artifact option), and reads its tag with the app's calver.
	return sources.NewScheme(SchemeName, sources.Traits{Options: []string{sources.ArtifactOption, sources.CalVerOption, noTLSOption}, Decides: true}, decode, nil)
}

// decode checks grpc://<host>[:port], which has no path, and ?no-tls. A
// target without a port is refused with no-tls (TLS uses DefaultTLSPort).
func decode(u *url.URL, options map[string]string, rng hcl.Range) (sources.Settings, hcl.Diagnostics) {
	const form = `a gRPC registry is "grpc://<host>[:port]", e.g. "grpc://registry.example.com:9000" (add ?no-tls=true for plaintext)`
	if u.Opaque != "" || u.Host == "" {
		return sources.Invalid(rng, "Invalid grpc registry", form+"; fix the URL.")
	}
	if strings.Trim(u.Path, "/") != "" {
		return sources.Invalid(rng, "Invalid grpc registry", "a gRPC registry URL has no path; "+form+".")
	}
	cfg := Config{Target: u.Host}
	if v, ok := options[noTLSOption]; ok {
		if v != "true" && v != "false" {
			return sources.Invalid(rng, "Invalid no-tls option", fmt.Sprintf("?no-tls=%s must be true or false.", v))
		}
		cfg.NoTLS = v == "true"
	}
	if _, err := normalizeTarget(cfg.Target, !cfg.NoTLS); err != nil {
		return sources.Invalid(rng, "Invalid grpc registry", err.Error()+"; "+form+".")
	}
	return cfg, nil
}

// Scheme is "grpc".
func (Config) Scheme() string { return SchemeName }

// New builds the source. Artifact URLs of other registries are fetched
// through opts.Openers, and reports name opts.Runner as the command, unless
// c sets its own.
func (c Config) New(opts sources.Options) (sources.Source, error) {
	if c.Openers == nil && len(opts.Openers) > 0 {
		c.Openers = make(map[string]Opener, len(opts.Openers))
		for scheme, op := range opts.Openers {
			c.Openers[scheme] = op
		}
	}
	if c.Command == "" {
		c.Command = opts.Runner
	}
	return New(c, opts)
}

var _ sources.Settings = Config{}
