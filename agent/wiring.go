package agent

import (
	"fmt"
	"log/slog"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/sources"
)

// The agent knows sources and runners only through the settings config
// decoded (sources.Settings, runners.Settings): each builds its own
// implementation. config/table.go is the one place that lists them.

// sourceOptions are the options of the app's source; its client notes the
// registry's Retry-After answers in the retryAfters returned.
func (a *Agent) sourceOptions(logger *slog.Logger, app config.App) (sources.Options, *retryAfters) {
	client, limits := noteRetryAfters(withStallGuard(a.metrics.appClient(a.opts.HTTPClient, app.Name), a.opts.StallTimeout), a.opts.Now)
	opts := sources.Options{
		Logger:     logger.With("source", app.Registry.Scheme),
		HTTPClient: client,
		Now:        a.opts.Now,
		Runner:     app.Runner.Kind(),
	}
	opts.Openers = config.Openers(opts)
	return opts, limits
}

// newSource builds the source for the app's registry URL.
func newSource(app config.App, opts sources.Options) (sources.Source, error) {
	src, err := app.Registry.Settings.New(opts)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", app.Registry.URL, err)
	}
	return src, nil
}

// newRunner builds the runner for the app's runner block and says what it needs
// from a release. A runner handed over from the app's previous worker is kept.
func newRunner(app config.App, opts runners.Options, prev runners.Runner) (runners.Runner, runners.Input, error) {
	input := app.Runner.Input()
	if prev != nil {
		return prev, input, nil
	}
	run, err := app.Runner.New(opts)
	if err != nil {
		return nil, "", fmt.Errorf("runner %q: %w", app.Runner.Kind(), err)
	}
	return run, input, nil
}
