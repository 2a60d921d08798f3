package agent

import (
	"context"
	"errors"
	"io"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// PlanItem is what the agent would do for one app right now.
type PlanItem struct {
	App      string
	Registry string
	Runner   string
	// Deployed is the version recorded in state.json; empty when none.
	Deployed string
	// Newest is the newest allowed version with a matching artifact; empty when
	// the registry has none (see Err) or the newest is waiting for its artifact.
	Newest string
	// Artifact is the file that would be fetched, or the image for img://
	// registries.
	Artifact string
	// Action is "deploy", "none" (up to date), "wait" (artifact not uploaded
	// yet), "skip" (the newest version is marked bad on this host, see Bad),
	// "no release" (the registry answered but holds nothing the app allows) or
	// "error" (the registry could not be read). The last two are failures: the
	// agent reports them as such, and plan exits non-zero.
	Action string
	// Bad is why the newest version was marked bad, when Action is "skip".
	Bad string
	Err error
	// Fleet says what the fleet allows for the app; "" without a fleet
	// block (agent/fleet.go).
	Fleet string
}

// Plan asks every app's registry for its newest allowed release and compares it
// with what is deployed. It deploys nothing and writes nothing: registry state is
// read from state.json but not saved back.
func Plan(ctx context.Context, cfg *config.File, opts Options) []PlanItem {
	a := New(cfg, opts)
	items := make([]PlanItem, len(cfg.Apps))
	done := make(chan struct{}, len(cfg.Apps))
	for i, app := range cfg.Apps {
		go func() {
			defer func() { done <- struct{}{} }()
			items[i] = a.planApp(ctx, cfg, app)
		}()
	}
	for range cfg.Apps {
		<-done
	}
	planFleet(ctx, cfg, items)
	return items
}

func (a *Agent) planApp(ctx context.Context, cfg *config.File, app config.App) PlanItem {
	it := PlanItem{App: app.Name, Registry: app.Registry.URL, Runner: app.Runner.Kind(), Action: "error"}
	st, err := loadState(appDir(cfg, app.Name))
	if err != nil {
		it.Err = err
		return it
	}
	it.Deployed = st.Version
	logger := a.opts.Logger.With("app", app.Name)
	opts, _ := a.sourceOptions(logger, app)
	src, err := newSource(app, opts)
	if err != nil {
		it.Err = err
		return it
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	if s, ok := src.(sources.Stateful); ok && len(st.Source) > 0 {
		_ = s.LoadState(st.Source) // a stale cache only costs a full request
	}
	cand, err := check(ctx, src, policy(app), a.opts.Now(), logger)
	switch {
	case errors.Is(err, version.ErrNoVersion):
		it.Action, it.Err = "no release", err
	case err != nil:
		it.Err = err
	case cand == nil:
		it.Action = "wait"
	default:
		it.Newest, it.Artifact = cand.Version.Original(), cand.Artifact.Name
		if cand.Release.Image != "" {
			it.Artifact = cand.Release.Image // the tag; the deploy pins it to a digest
		}
		it.Action = "deploy"
		// The worker's test: a mark applies to the artifact (and signatures)
		// it was made for.
		if b, bad := st.isBad(it.Newest, identityFor(ctx, app, &st, src, "", cand)); bad && it.Newest != it.Deployed {
			it.Action, it.Bad = "skip", b.Reason
		}
		if it.Newest == it.Deployed {
			it.Action = "none"
		}
	}
	return it
}
