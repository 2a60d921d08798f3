package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dewy-agent/dewy-agent/agent/hooks"
	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/notify"
	"github.com/dewy-agent/dewy-agent/releasestore"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// worker is one app's loop: poll the registry, pick the newest allowed release,
// deploy it through the runner. It is owned by the Agent: started with start,
// ended with stop.
type worker struct {
	app    config.App
	dir    string
	logger *slog.Logger
	src    sources.Source
	runner runners.Runner
	pipe   pipeline        // files or image, chosen at wiring time
	scrub  *hooks.Scrubber // the secrets hook output is scrubbed of
	policy version.Policy
	now    func() time.Time
	clock  Clock        // the timers between polls
	queue  *deployQueue // the agent's bound on deploys in flight; nil: none

	metrics *metrics
	client  *http.Client // for notifiers
	host    string       // this machine's name, for deployment reports
	polls   atomic.Int64 // polls started, for tests and benchmarks
	polled  atomic.Int64 // polls ended (status updated), for tests

	st State // touched only by the loop goroutine, changed only through update

	// progress is the download in flight, shown in status; set by the file
	// pipeline.
	progress *progress

	mu     sync.Mutex
	status Status // guarded by mu; read by the admin API

	// handedOver: the runner came from the app's previous worker and runs the
	// deployed release already, so resume does not start it again.
	handedOver bool

	tries map[string]int // transient deploy failures per version and artifact (see failed)

	retry  chan struct{} // a request to forget bad versions and poll now
	fleet  *fleetApp     // the app's part in the fleet; nil without one (fleet.go)
	limits *retryAfters  // the registry's Retry-After answers (ratelimit.go)
	events *events       // deploy events to the app's and the agent's notifiers

	// statfs measures the app directory's file system, to wait for room
	// after disk_full (diskfull.go).
	statfs func(path string) (releasestore.Space, error)

	cancel context.CancelFunc
	done   chan struct{}
}

// Status is what the agent tells about one app.
type Status struct {
	Name       string    `json:"name"`
	Registry   string    `json:"registry"`
	Runner     string    `json:"runner"`
	Deployed   string    `json:"deployed_version,omitempty"`
	Newest     string    `json:"newest_version,omitempty"`
	State      string    `json:"state"`
	LastCheck  time.Time `json:"last_check,omitzero"`
	NextCheck  time.Time `json:"next_check,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	DeployedAt time.Time `json:"deployed_at,omitzero"`
	Deploys    int       `json:"deploys"`
	// ResumeError is why bringing up the deployed release after a restart
	// failed; it is retried with backoff until it works or a deploy replaces it.
	ResumeError string `json:"resume_error,omitempty"`
	// Workload is the runner's process, for runners that have one.
	Workload *runners.Workload `json:"workload,omitempty"`
	// Phase is the state in words a person reads at a glance (Phase*
	// constants); Detail says more when there is more (download progress,
	// the version being deployed).
	Phase  string `json:"phase"`
	Detail string `json:"detail,omitempty"`
	// Waiting: the newest release is waiting for its artifact to be uploaded.
	Waiting bool `json:"waiting_for_artifact,omitempty"`
	// Download is the download in flight, while there is one.
	Download *Progress `json:"download,omitempty"`
	// Queued is the app's place in the agent's deploy queue (1 = next) while
	// its deploy waits for one of max_parallel_deploys slots; 0 otherwise.
	Queued int `json:"queued,omitempty"`
	// Verified is what the deployed release's signature check found (the
	// method, key and minisign's trusted comment); "" when the app verifies
	// nothing.
	Verified string `json:"verified,omitempty"`
	// Bad are the versions marked bad on this host, with their reasons.
	Bad []BadVersion `json:"bad_versions,omitempty"`
	// History is the last deploys, newest first.
	History []DeployRecord `json:"history,omitempty"`
	// Fleet is the app's part in the fleet; nil without a fleet block.
	Fleet *FleetStatus `json:"fleet,omitempty"`
}

// App states shown in Status.State.
const (
	StateStarting  = "starting"
	StateIdle      = "idle"
	StateChecking  = "checking"
	StateDeploying = "deploying"
	StateFailed    = "failed"
	// StateDiskFull: the last deploy stopped for lack of disk space or
	// inodes above the reserve; it is tried again with backoff.
	StateDiskFull = "disk_full"
	StateStopped  = "stopped"
)

// start launches the loop. The loop ends when ctx is cancelled or stop is called.
func (w *worker) start(ctx context.Context) {
	w.events.own = newDispatcher(w.app.Notify, w.logger.With("notify", "app"), w.client, w.host)
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		w.loop(ctx)
	}()
}

// stop ends the loop and then the workload, for the given reason. An app removed
// from the file has its workload stopped; on agent shutdown each runner decides
// (see runners.StopReason).
func (w *worker) stop(ctx context.Context, why runners.StopReason) {
	w.cancel()
	<-w.done
	w.fleet.stop(why)
	if why == handover {
		w.logger.Debug("loop restarted with new settings; the runner's workload keeps running")
	} else if err := w.runner.Stop(ctx, why); err != nil {
		w.logger.Error("stop runner", "reason", string(why), "err", err)
	}
	if c, ok := w.src.(io.Closer); ok {
		c.Close()
	}
	if w.events.own != nil {
		w.events.own.Close() // delivers what is queued, within its drain bound
	}
	w.setStatus(func(s *Status) { s.State = StateStopped; s.NextCheck = time.Time{} })
}

// handover is a stop of the loop only: the app changed in ways that do not touch
// its runner block, so its runner (and its process or containers) passes to the
// app's next worker instead of being stopped.
const handover runners.StopReason = "handover"

func (w *worker) loop(ctx context.Context) {
	w.repair()
	var rr resumeRetry
	if err := w.resume(ctx); err != nil {
		w.logger.Error("resume failed", "err", err)
		w.recordError(err)
		w.setStatus(func(s *Status) { s.ResumeError = err.Error() })
		rr = resumeRetry{pending: true, failures: 1, next: w.now().Add(backoff(1, w.app.Interval))}
	}
	w.fleetResumed(ctx)
	failures := 0
	for {
		wait := jitter(w.app.Interval)
		deployed := w.st.Deploys
		err := w.poll(ctx)
		if rr.pending && w.st.Deploys != deployed {
			rr.pending = false // a deploy replaced what failed to resume
			w.setStatus(func(s *Status) { s.ResumeError = "" })
		}
		if d := w.retryResume(ctx, &rr); d > 0 && d < wait {
			wait = d
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			err, wait = w.rateLimited(err, backoff(failures, w.app.Interval))
			w.logger.Error("poll failed", "err", err, "retry_in", wait.Round(time.Millisecond))
			w.recordError(err)
		default:
			failures = 0
			w.limits.take() // a Retry-After the client's own retries got past
		}
		tick, stop, wait := w.after(err, wait) // disk_full waits for room (diskfull.go)
		next := w.now().Add(wait)
		w.setStatus(func(s *Status) {
			s.NextCheck = next
			if err == nil {
				s.State = StateIdle
			}
		})
		w.polled.Add(1)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-tick:
		case <-w.fleetWake():
			stop() // the fleet published a release
		case <-w.retry:
			stop()
			w.logger.Info("retry requested; bad versions forgotten", "bad", len(w.st.Bad))
			w.update(func(st *State) { st.Bad = nil })
			failures = 0
		}
	}
}

// resume reads state.json and brings up the workload of the deployed release,
// downloading nothing.
func (w *worker) resume(ctx context.Context) error {
	st, err := loadState(w.dir)
	if err != nil {
		return err
	}
	w.st = st
	if err := w.settleInFlight(); err != nil {
		return err
	}
	st = w.st
	if s, ok := w.src.(sources.Stateful); ok && len(st.Source) > 0 {
		if err := s.LoadState(st.Source); err != nil {
			w.logger.Warn("ignoring saved registry state", "err", err)
		}
	}
	w.publish()
	if st.Version == "" {
		if !w.handedOver {
			// Nothing is deployed, but an earlier agent life may have left a
			// process of a deploy in flight running: the runner stops it.
			return w.runner.Resume(ctx, runners.Deployment{})
		}
		return nil
	}
	d, ok, err := w.pipe.resume(st)
	if err != nil {
		return fmt.Errorf("resume %s: %w", st.Version, err)
	}
	if !ok {
		w.logger.Warn("deployed release is missing on disk; it will be deployed again", "version", st.Version)
		w.update(func(st *State) { st.Version = "" })
		return nil
	}
	if w.handedOver {
		return nil // the runner runs this release already
	}
	w.logger.Info("resuming", "version", st.Version)
	if err := w.runner.Resume(ctx, d); err != nil {
		return fmt.Errorf("resume %s: %w", st.Version, err)
	}
	return nil
}

// poll checks the registry once and deploys the chosen release when it differs from
// the deployed one.
func (w *worker) poll(ctx context.Context) error {
	w.polls.Add(1)
	w.setStatus(func(s *Status) { s.State = StateChecking; s.LastCheck = w.now() })
	cand, err := w.choose(ctx) // the registry's, or the fleet's (fleet.go)
	w.saveSourceState()
	if err != nil {
		if ctx.Err() == nil {
			w.metrics.polls.WithLabelValues(w.app.Name, "error").Inc()
			kind := notify.RegistryUnreachable
			if errors.Is(err, version.ErrNoVersion) {
				kind = notify.NoRelease // the registry answered: it is empty, not down
			}
			w.events.send(notify.Event{Kind: kind, Version: w.st.Version, Err: err.Error()})
		}
		return err
	}
	w.metrics.polls.WithLabelValues(w.app.Name, "ok").Inc()
	w.events.resolved(notify.RegistryUnreachable)
	w.events.resolved(notify.NoRelease)
	w.setStatus(func(s *Status) { s.Waiting = cand == nil })
	if cand == nil {
		return nil // the newest release is still waiting for its artifact
	}
	tag := cand.Version.Original()
	w.setStatus(func(s *Status) { s.Newest = tag })
	if tag == w.st.Version {
		w.logger.Debug("up to date", "version", tag)
		w.update(func(st *State) { st.LastError, st.LastErrorAt = "", time.Time{} })
		return nil
	}
	ident := w.identity(ctx, cand)
	if bad, ok := w.st.isBad(tag, ident); ok {
		w.logger.Debug("newest version is marked bad; staying on the deployed one", "version", tag, "deployed", w.st.Version)
		// The cause on the first line, which status's table shows; what to do
		// about it on the second.
		msg := fmt.Sprintf("%s is marked bad: %s\nit is not retried until a newer version appears or `dewy-agent retry -app %s` clears it", tag, bad.Reason, w.app.Name)
		w.update(func(st *State) {
			if st.LastError != msg {
				st.LastError, st.LastErrorAt = msg, w.now()
			}
		})
		return nil
	}
	slot, proceed, err := w.fleetGate(ctx, tag)
	if !proceed {
		return err
	}
	var outcome error
	defer func() { w.fleetDone(ctx, slot, tag, outcome) }()
	release, err := w.waitTurn(ctx)
	if err != nil {
		outcome = err // not deployed: the fleet slot is given back, not reported healthy
		return err
	}
	w.setStatus(func(s *Status) { s.State = StateDeploying })
	prev := w.st.Version
	start := time.Now()
	w.events.send(notify.Event{Kind: notify.DeployStarted, Version: tag, PreviousVersion: prev})
	err = w.deploy(ctx, cand)
	release() // the slot covers the deploy only, not the report and events after it
	took := time.Since(start)
	if ctx.Err() == nil {
		rec := DeployRecord{Version: tag, Previous: prev, At: start, Took: took, Outcome: outcomeOf(err)}
		if err != nil {
			rec.Err = err.Error()
		}
		w.recordDeploy(rec)
	}
	w.metrics.deployDuration.WithLabelValues(w.app.Name).Observe(took.Seconds())
	if w.app.Report && ctx.Err() == nil {
		w.report(ctx, cand, err)
	}
	if err != nil {
		outcome = err
		if ctx.Err() == nil {
			w.metrics.deploys.WithLabelValues(w.app.Name, "failure").Inc()
			w.failed(tag, prev, w.checkedIdentity(cand, err), took, err)
		}
		return deployFailure(tag, err)
	}
	w.succeeded()
	w.metrics.deploys.WithLabelValues(w.app.Name, "success").Inc()
	w.logger.Info("deployed", "version", tag, "previous", prev, "artifact", cand.Artifact.Name,
		"took", took.Round(time.Millisecond))
	w.events.send(notify.Event{Kind: notify.DeploySucceeded, Version: tag, PreviousVersion: prev, Duration: took})
	if h := w.app.Hooks.AfterDeploy; h != "" {
		res, err := hooks.Run(ctx, "after_deploy", w.hook(h), w.hookEnv(tag, prev, w.st.Release), w.logger)
		if err != nil && ctx.Err() == nil {
			// The deploy stands; the failure is reported.
			w.logger.Error("after_deploy hook failed; the deploy stands", "version", tag, "err", err)
			w.events.send(notify.Event{Kind: notify.HookFailed, Step: "after_deploy", Version: tag, PreviousVersion: prev, Err: err.Error(), Output: res.Output})
		}
	}
	return nil
}

// deployError is a deploy failure with the step it happened at, for
// notifications.
type deployError struct {
	step string
	// rolledBack: the new release had been made current and was switched back.
	rolledBack bool
	// output is a hook's output tail, when a hook failed.
	output string
	err    error
}

// Error is the cause alone: each step's callee names what it did (the
// runner, the release store, the hook), and the worker adds the version once.
func (e *deployError) Error() string { return e.err.Error() }
func (e *deployError) Unwrap() error { return e.err }

// failureEvent describes a failed deploy for notifiers.
func failureEvent(err error, tag, prev string, took time.Duration) notify.Event {
	ev := notify.Event{Kind: notify.DeployFailed, Version: tag, PreviousVersion: prev, Duration: took, Err: err.Error()}
	var de *deployError
	if errors.As(err, &de) {
		ev.Step, ev.Output, ev.Err = de.step, de.output, de.err.Error()
		switch {
		case de.step == "before_deploy":
			ev.Kind = notify.HookFailed
		case de.rolledBack:
			ev.Kind = notify.RolledBack
		}
	}
	return ev
}

// hookEnv is what a hook is told about the deploy. releaseDir may be relative
// to the app directory (as state.json keeps it).
func (w *worker) hookEnv(version, previous, releaseDir string) hooks.Env {
	if releaseDir != "" && !filepath.IsAbs(releaseDir) {
		releaseDir = filepath.Join(w.dir, releaseDir)
	}
	return hooks.Env{App: w.app.Name, Version: version, PreviousVersion: previous, ReleaseDir: releaseDir, Registry: w.app.Registry.URL}
}

// check asks the source for the newest release allowed by the policy. It returns a
// nil candidate when the newest release is within its artifact grace period.
func check(ctx context.Context, src sources.Source, p version.Policy, now time.Time, logger *slog.Logger) (*version.Candidate, error) {
	if d, ok := src.(sources.Deciding); ok {
		return d.Decide(ctx, p)
	}
	rels, err := src.Releases(ctx)
	if err != nil {
		return nil, err
	}
	sel, err := version.Select(rels, p, now)
	if err != nil {
		return nil, err
	}
	for _, s := range sel.Skipped {
		if s.Waiting {
			logger.Debug("release has no matching artifact yet; waiting", "tag", s.Tag, "reason", s.Reason)
		} else {
			logger.Warn("release skipped", "tag", s.Tag, "reason", s.Reason)
		}
	}
	return sel.Candidate, nil
}

// deploy makes the candidate ready through the pipeline, runs the
// before_deploy hook and hands the release to the runner. On failure what the
// pipeline made is removed and `current` is as before.
func (w *worker) deploy(ctx context.Context, c *version.Candidate) error {
	tag := c.Version.Original()
	rel, err := w.pipe.prepare(ctx, c)
	if err != nil {
		return err
	}
	if h := w.app.Hooks.BeforeDeploy; h != "" {
		res, err := hooks.Run(ctx, "before_deploy", w.hook(h), w.hookEnv(tag, w.st.Version, rel.d.Dir), w.logger)
		if err != nil {
			rel.discard()
			return &deployError{step: "before_deploy", output: res.Output, err: err}
		}
	}
	w.trackInFlight(&rel.d, rel.dir)
	if err := w.runner.Deploy(ctx, rel.d); err != nil {
		w.endInFlight()
		rel.discard()
		if ctx.Err() != nil {
			return err
		}
		return &deployError{step: "deploy", rolledBack: rel.activated, err: err}
	}
	w.update(func(st *State) {
		st.Version = tag
		st.Image = rel.d.Image
		st.Artifact = c.Artifact.Name
		st.SHA256 = rel.sha256
		st.Verified = rel.verified
		st.Release = rel.dir
		st.DeployedAt = w.now()
		st.Deploys++
		st.LastError, st.LastErrorAt = "", time.Time{}
		st.Deploying = nil
	})
	w.pipe.deployed()
	return nil
}

// report writes the deploy's outcome back to the registry (report = true).
// It is best effort: a failure is logged and the deploy's outcome stands.
func (w *worker) report(ctx context.Context, c *version.Candidate, deployErr error) {
	r, ok := w.src.(sources.Reporter)
	if !ok {
		w.logger.Debug("this registry takes no deployment reports")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep := sources.Report{App: w.app.Name, Host: w.host, Release: c.Release, Artifact: c.Artifact, Time: w.now(), Err: deployErr}
	if deployErr == nil {
		rep.Verified = w.st.Verified
	}
	if err := r.Report(ctx, rep); err != nil {
		w.logger.Warn("deployment report not written", "version", c.Version.Original(), "err", err)
		return
	}
	w.logger.Debug("deployment report written", "version", c.Version.Original())
}

// sigSuffixes are the signature files app checks beside an artifact (none
// without a verify block), for artifactIdentity.
func sigSuffixes(app config.App) []string {
	if app.Verify == nil {
		return nil
	}
	return app.Verify.FileSuffixes()
}

// maxBad bounds the bad versions remembered per app.
const maxBad = 20

// requestRetry asks the loop to forget bad versions and poll at once.
func (w *worker) requestRetry() {
	select {
	case w.retry <- struct{}{}:
	default: // one is already pending
	}
}

// markBad records version, offered as the artifact ident, as bad in
// state.json, with its deploy's error (which the loop then records as the
// last error; see recordError).
func (w *worker) markBad(version, ident string, err error) {
	w.logger.Error("version marked bad; it will not be retried until a newer version or another artifact appears", "version", version, "artifact", ident, "err", err)
	w.update(func(st *State) {
		st.Bad = append(st.Bad, BadVersion{Version: version, Artifact: ident, Reason: err.Error(), At: w.now()})
		if len(st.Bad) > maxBad {
			st.Bad = st.Bad[len(st.Bad)-maxBad:]
		}
		st.LastError, st.LastErrorAt = deployFailure(version, err).Error(), w.now()
	})
}

// deployFailure is how poll words a failed deploy of version.
func deployFailure(version string, err error) error {
	return fmt.Errorf("deploy %s: %w", version, err)
}

// saveSourceState keeps the source's own state (ETags and the like) in
// state.json when it changed.
func (w *worker) saveSourceState() {
	s, ok := w.src.(sources.Stateful)
	if !ok {
		return
	}
	b, err := s.SaveState()
	if err != nil || string(b) == string(w.st.Source) {
		return
	}
	w.update(func(st *State) { st.Source = b })
}

// recordError notes a failed poll, deploy or resume in state.json and status.
// The same error again (a registry down for several polls, a deploy already
// recorded by markBad) keeps the time it first happened and is not saved
// again.
func (w *worker) recordError(err error) {
	msg := err.Error()
	state := StateFailed
	if errors.Is(err, releasestore.ErrDiskFull) {
		state = StateDiskFull
	}
	w.setStatus(func(s *Status) { s.State = state })
	w.update(func(st *State) {
		if st.LastError != msg {
			st.LastError, st.LastErrorAt = msg, w.now()
		}
	})
}

// update is the one way the app's state changes: it applies change to the
// state, saves state.json once when anything changed, and brings status and
// metrics in line with it. It is called from the loop goroutine only.
func (w *worker) update(change func(*State)) {
	before := w.st
	before.Bad = slices.Clone(w.st.Bad) // change may append in place
	change(&w.st)
	if reflect.DeepEqual(before, w.st) {
		return
	}
	err := os.MkdirAll(w.dir, 0o755)
	if err == nil {
		err = w.st.save(w.dir)
	}
	if err != nil {
		if w.st.Version != before.Version {
			// The release is current; only the record failed. Say so loudly.
			w.logger.Error("deployed but could not record it", "version", w.st.Version, "err", err)
		} else {
			w.logger.Warn("save state", "err", err)
		}
	}
	w.publish()
}

// publish shows the state in status and metrics.
func (w *worker) publish() {
	st := w.st
	w.setStatus(func(s *Status) {
		s.Deployed, s.DeployedAt, s.Deploys, s.LastError = st.Version, st.DeployedAt, st.Deploys, st.LastError
		s.Bad = slices.Clone(st.Bad)
		s.Verified = st.Verified
	})
	w.metrics.setVersion(w.app.Name, st.Version)
	if !st.DeployedAt.IsZero() {
		w.metrics.lastDeploy.WithLabelValues(w.app.Name).Set(float64(st.DeployedAt.Unix()))
	}
}

func (w *worker) setStatus(f func(*Status)) {
	w.mu.Lock()
	f(&w.status)
	w.mu.Unlock()
}

func (w *worker) snapshot() Status {
	w.mu.Lock()
	s := w.status
	w.mu.Unlock()
	if o, ok := w.runner.(runners.Observable); ok {
		wl := o.Workload()
		s.Workload = &wl
	}
	s.Fleet = w.fleetStatus()
	if w.progress != nil {
		s.Download = w.progress.snapshot()
	}
	if w.queue != nil {
		s.Queued = w.queue.position(w.app.Name)
	}
	s.Phase = phase(s)
	switch s.Phase {
	case PhaseQueued:
		s.Detail = fmt.Sprintf("#%d in the deploy queue for %s", s.Queued, s.Newest)
	case PhaseDownloading:
		s.Detail = describeProgress(s.Download)
	case PhaseDeploying:
		s.Detail = s.Newest
	}
	return s
}

// jitter spreads polls of many apps: d ± 10%.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// backoff is the wait after n consecutive failures: 1s, 2s, 4s, ... capped at max.
func backoff(n int, max time.Duration) time.Duration {
	d := time.Second << min(n-1, 20)
	return min(d, max)
}
