package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/dewy-agent/dewy-agent/runners"
)

// Deploys in flight and resume retries (issue 18).
//
// A deploy is recorded in state.json (State.Deploying) before `current`
// switches, through update, and cleared in the same save that records the
// deployed version. A restart that finds it knows `current` may name a
// release state.json does not: it rolls the deploy back (current points again
// at the release state.json names) before resuming, so what resumes is
// exactly what was live before, under its own name, never a mix. The next
// poll tries the version again.

// DeployInFlight is a deploy that had begun to switch `current`.
type DeployInFlight struct {
	// Version is the version being deployed; Previous the one deployed before
	// it ("" for a first deploy).
	Version  string `json:"version"`
	Previous string `json:"previous,omitempty"`
	// Release is the new release dir, relative to the app dir.
	Release string `json:"release,omitempty"`
	// Phase is "activating" (current is about to switch or has switched) or
	// "rolling-back" (the runner is switching current back).
	Phase string    `json:"phase"`
	At    time.Time `json:"at"`
}

// Phases of DeployInFlight.
const (
	phaseActivating  = "activating"
	phaseRollingBack = "rolling-back"
)

// trackInFlight wraps the deployment's Activate and Rollback so that the
// deploy is recorded before `current` switches either way.
func (w *worker) trackInFlight(d *runners.Deployment, release string) {
	tag := d.Version
	if act := d.Activate; act != nil {
		d.Activate = func() error {
			w.update(func(st *State) {
				st.Deploying = &DeployInFlight{Version: tag, Previous: st.Version, Release: release, Phase: phaseActivating, At: w.now()}
			})
			return act()
		}
	}
	if rb := d.Rollback; rb != nil {
		d.Rollback = func() error {
			w.update(func(st *State) {
				if st.Deploying != nil {
					in := *st.Deploying
					in.Phase = phaseRollingBack
					st.Deploying = &in
				}
			})
			return rb()
		}
	}
}

// endInFlight clears the record of a deploy that ended (deployed or rolled
// back).
func (w *worker) endInFlight() {
	w.update(func(st *State) { st.Deploying = nil })
}

// settleInFlight handles a deploy an earlier agent life left in flight: the
// release state.json names is made current again. It runs before resume.
func (w *worker) settleInFlight() error {
	in := w.st.Deploying
	if in == nil {
		return nil
	}
	w.logger.Warn("a deploy was in flight when the agent stopped; rolling it back", "version", in.Version, "previous", in.Previous, "phase", in.Phase)
	if w.st.Release != "" {
		if err := w.pipe.restore(filepath.Join(w.dir, w.st.Release)); err != nil {
			return fmt.Errorf("roll back the deploy of %s in flight: %w", in.Version, err)
		}
	}
	w.endInFlight()
	return nil
}

// resumeRetry is the state of retrying a failed resume.
type resumeRetry struct {
	pending  bool
	failures int
	next     time.Time
}

// retryResume tries the failed resume again when its backoff has passed, unless
// a deploy has made it moot. It returns the longest wait before the next try.
func (w *worker) retryResume(ctx context.Context, r *resumeRetry) time.Duration {
	if !r.pending {
		return 0
	}
	if w.now().Before(r.next) {
		return r.next.Sub(w.now())
	}
	err := w.resume(ctx)
	if err == nil {
		r.pending, r.failures = false, 0
		w.setStatus(func(s *Status) { s.ResumeError = "" })
		w.logger.Info("resume succeeded on retry", "version", w.st.Version)
		return 0
	}
	r.failures++
	wait := backoff(r.failures, w.app.Interval)
	r.next = w.now().Add(wait)
	w.logger.Error("resume failed", "err", err, "retry_in", wait)
	w.recordError(err)
	w.setStatus(func(s *Status) { s.ResumeError = err.Error() })
	return wait
}
