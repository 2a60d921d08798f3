package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/sources"
)

// Check builds every app's source and runner the way the agent would, without
// starting anything (constructors do no I/O), and returns what refuses to be
// built: the checks that belong to an implementation rather than to the file's
// schema (a container volume that would expose the Docker socket, a gRPC
// target without a port). validate, the agent's start and every reload run it,
// so such an app never replaces a running one.
func Check(cfg *config.File) error {
	var errs []error
	for _, app := range cfg.Apps {
		if err := checkApp(app); err != nil {
			errs = append(errs, fmt.Errorf("app %q: %w", app.Name, err))
		}
	}
	return errors.Join(errs...)
}

func checkApp(app config.App) error {
	discard := slog.New(slog.DiscardHandler)
	src, err := newSource(app, sources.Options{Logger: discard, HTTPClient: DefaultHTTPClient()})
	if err != nil {
		return err
	}
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
	_, _, err = newRunner(app, runners.Options{Logger: discard, AppDir: "/nonexistent"}, nil)
	return err
}
