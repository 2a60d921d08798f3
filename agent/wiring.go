package agent

import (
	"fmt"
	"log/slog"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/assets"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/file"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
)

// This file is the one place that knows every source scheme and runner kind.

func (a *Agent) sourceOptions(logger *slog.Logger, app config.App) sources.Options {
	return sources.Options{
		Logger:     logger.With("source", app.Registry.Scheme),
		HTTPClient: a.metrics.appClient(a.opts.HTTPClient, app.Name),
		Now:        a.opts.Now,
	}
}

// newSource builds the source for the app's registry URL. config has already
// refused schemes this build does not have.
func newSource(app config.App, opts sources.Options) (sources.Source, error) {
	r := app.Registry
	switch r.Scheme {
	case "file":
		return file.New(r.Path, opts)
	case "ghr":
		return ghr.New(r.Host, r.Path, opts)
	}
	return nil, fmt.Errorf("registry %s: scheme %q is not supported", r.URL, r.Scheme)
}

// newRunner builds the runner for the app's runner block and says what it needs
// from a release.
func newRunner(app config.App, opts runners.Options) (runners.Runner, runners.Input, error) {
	switch app.Runner.Kind {
	case "assets":
		return assets.New(assets.Config{Link: app.Runner.Assets.Link}, opts), runners.Files, nil
	}
	return nil, "", fmt.Errorf("runner %q is not supported", app.Runner.Kind)
}
