package config

import (
	"context"
	"io"

	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/assets"
	"github.com/dewy-agent/dewy-agent/runners/container"
	"github.com/dewy-agent/dewy-agent/runners/server"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/file"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
	grpcsrc "github.com/dewy-agent/dewy-agent/sources/grpc"
	"github.com/dewy-agent/dewy-agent/sources/gs"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/s3"
)

// This file is the one table of the runner kinds and registry schemes this
// build has. Each entry is owned by its package (its block's or URL's schema,
// defaults, validation and constructor); config hands it the runner block or
// the registry URL and keeps the result in App. Adding a runner or a registry
// is a new package and one line here, in the order messages list them.

// runnerKinds are the runner kinds, by block label.
func runnerKinds() []runners.Kind {
	return []runners.Kind{
		assets.Kind(),
		container.Kind(),
		server.Kind(),
	}
}

// schemes are the registry schemes, by URL scheme.
func schemes() []sources.Scheme {
	return []sources.Scheme{
		file.Scheme(),
		ghr.Scheme(),
		gs.Scheme(),
		grpcsrc.Scheme(),
		oci.Scheme(),
		s3.Scheme(),
	}
}

// named is what the table holds: runner kinds and registry schemes, each
// known by its name.
type named interface{ Name() string }

// findNamed returns the entry of all named name.
func findNamed[T named](all []T, name string) (T, bool) {
	for _, x := range all {
		if x.Name() == name {
			return x, true
		}
	}
	var none T
	return none, false
}

// nameList is the entries' names, for messages.
func nameList[T named](all []T) []string {
	names := make([]string, len(all))
	for i, x := range all {
		names[i] = x.Name()
	}
	return names
}

// runnerKind returns the kind named name.
func runnerKind(name string) (runners.Kind, bool) { return findNamed(runnerKinds(), name) }

// runnerKindNames are the kinds' names, for messages.
func runnerKindNames() []string { return nameList(runnerKinds()) }

// scheme returns the scheme named name.
func scheme(name string) (sources.Scheme, bool) { return findNamed(schemes(), name) }

// schemeNames are the schemes' names, for messages.
func schemeNames() []string { return nameList(schemes()) }

// Openers are the artifact URL openers of every scheme that has one, built
// with opts, for sources whose server names artifacts by URL
// (sources.Options.Openers).
func Openers(opts sources.Options) map[string]sources.Opener {
	m := map[string]sources.Opener{}
	for _, s := range schemes() {
		if o, ok := s.(sources.URLOpener); ok {
			m[s.Name()] = func(ctx context.Context, raw string) (io.ReadCloser, error) {
				return o.OpenURL(ctx, raw, opts)
			}
		}
	}
	return m
}
