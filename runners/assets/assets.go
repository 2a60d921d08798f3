// Package assets is the runner for static files: after a release is extracted, the
// app's `current` link is switched to it, and an optional extra link (for example
// /var/www/html) is kept pointing at the same release. There is no process: stopping
// the app or the agent leaves the files in place.
package assets

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
	"github.com/dewy-agent/dewy-agent/runners"
)

// Config is the `runner "assets" {}` block.
type Config struct {
	// Link, when set, is an absolute path kept as a symlink to the current release.
	Link string
}

// Assets deploys static files.
type Assets struct {
	cfg    Config
	logger *slog.Logger
}

// New returns an assets runner. It does no I/O.
func New(cfg Config, opts runners.Options) *Assets {
	return &Assets{cfg: cfg, logger: opts.Logger}
}

// Resume makes sure the extra link points at the deployed release: the link may
// have been added to the config since the release was deployed.
func (a *Assets) Resume(_ context.Context, d runners.Deployment) error {
	return a.link(d.Dir)
}

// Deploy switches `current` to the release, then the extra link. If the extra
// link cannot be switched, `current` is switched back.
func (a *Assets) Deploy(_ context.Context, d runners.Deployment) error {
	if err := d.Activate(); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	if err := a.link(d.Dir); err != nil {
		if rerr := d.Rollback(); rerr != nil {
			return fmt.Errorf("%w (and switching current back failed: %v)", err, rerr)
		}
		return err
	}
	return nil
}

// Stop does nothing: static files stay in place whether the app is removed from the
// file or the agent stops, so the web server that serves them keeps serving.
func (a *Assets) Stop(context.Context, runners.StopReason) error { return nil }

func (a *Assets) link(dir string) error {
	if a.cfg.Link == "" || dir == "" {
		return nil
	}
	if err := atomicfile.Symlink(dir, a.cfg.Link); err != nil {
		return fmt.Errorf("assets: link %s: %w", a.cfg.Link, err)
	}
	a.logger.Debug("link switched", "link", a.cfg.Link, "target", dir)
	return nil
}

var _ runners.Runner = (*Assets)(nil)
