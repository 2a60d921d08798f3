package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/fleet/fleetlock"
	"github.com/dewy-agent/dewy-agent/releasestore"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// This file is the agent's part in a fleet (the config's fleet block, issue
// 12; the rules are in docs/fleet.md). Without a fleet block none of it runs.
// With one:
//
//   - the agent joins the fleet at Run (one fleet.Member) and gives each
//     worker a fleetApp (one fleet.AppHandle per app);
//   - only the app's poller polls the registry; it publishes the chosen
//     release with what the others need to download it (the source's asset
//     refs and the artifact's SHA-256); the others poll nothing and take the
//     release from the watch, verifying their download against that digest;
//   - before a deploy the worker asks Gate (canary, bake, slots, fleet-bad
//     versions, pause, etcd unreachable) and waits, showing why in status;
//   - after the deploy it reports the outcome and hands the slot back
//     (Healthy keeps it min_healthy_time longer).

// FleetStatus is an app's part in the fleet, in Status.
type FleetStatus struct {
	// Phase is this host's phase for the app, or the phase it waits in.
	Phase string `json:"phase"`
	// Wait says what the host waits for before it deploys; "" when it does not.
	Wait string `json:"wait,omitempty"`
	// Rollout is the fleet-wide phase of the published release's rollout.
	Rollout string `json:"rollout,omitempty"`
	// Release is the version the fleet published.
	Release string `json:"release,omitempty"`
	// Poller: this host polls the registry for the fleet.
	Poller bool `json:"poller"`
	// Bad are the versions bad for the whole fleet.
	Bad []string `json:"bad,omitempty"`
	// Available is false while etcd cannot be reached.
	Available   bool   `json:"available"`
	Unavailable string `json:"unavailable,omitempty"`
}

// fleetApp is one worker's part in the fleet. h is nil with the FleetLock
// backend, which only gates deploys.
type fleetApp struct {
	h     *fleet.AppHandle
	host  string // this host's id in the fleet
	gater fleet.Gater
	lock  *fleetlock.Client

	wake chan struct{} // a new release was published: followers look now

	mu       sync.Mutex
	changed  chan struct{} // closed when the published release changes
	decided  fleet.Decision
	sumTag   string // the tag whose artifact digest sum is (poller's cache)
	sum      string
	stopSubs context.CancelFunc
}

// fleetState is the agent's membership: at most one of member and lock.
type fleetState struct {
	member *fleet.Member
	lock   *fleetlock.Client
}

// joinFleet joins the fleet of cfg's fleet block, if it has one. It does no
// network I/O: the member connects in the background and, until it can,
// on_unavailable decides.
func (a *Agent) joinFleet(ctx context.Context, cfg *config.File) error {
	if cfg.Fleet == nil {
		return nil
	}
	fc, err := config.FleetOf(cfg)
	if err != nil {
		return err
	}
	logger := a.opts.Logger.With("fleet", fc.HostID)
	a.fleet = &fleetState{}
	if fc.FleetLock.Enabled() {
		a.fleet.lock = fleetlock.New(fc.FleetLock, fc.HostID, a.opts.HTTPClient, 0, logger)
		logger.Info("fleet: deploys gated by fleetlock", "group", fc.FleetLock.Group)
		return nil
	}
	m, err := fleet.Join(ctx, fc, fleet.Options{Logger: logger, Counter: a.opts.FleetCounter})
	if err != nil {
		return fmt.Errorf("join the fleet: %w", err)
	}
	a.fleet.member = m
	logger.Info("fleet: joining", "endpoints", fc.Etcd.Endpoints, "prefix", fc.Etcd.Prefix, "labels", fc.Labels)
	return nil
}

// leaveFleet closes the membership after every worker stopped.
func (a *Agent) leaveFleet() {
	if a.fleet == nil || a.fleet.member == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.fleet.member.Close(ctx); err != nil {
		a.opts.Logger.Warn("fleet: leave", "err", err)
	}
}

// fleetFor returns app's part in the fleet, or nil without a fleet.
func (a *Agent) fleetFor(app config.App) *fleetApp {
	if a.fleet == nil {
		return nil
	}
	fa := &fleetApp{wake: make(chan struct{}, 1), changed: make(chan struct{})}
	if a.fleet.lock != nil {
		fa.gater, fa.lock = a.fleet.lock, a.fleet.lock
		return fa
	}
	var r fleet.Rollout
	if app.Rollout != nil {
		r = *app.Rollout
	}
	fa.h, fa.host = a.fleet.member.App(app.Name, r), a.fleet.member.HostID()
	fa.gater = fa.h
	return fa
}

// start follows the app's published release until ctx ends.
func (f *fleetApp) start(ctx context.Context) {
	if f == nil || f.h == nil {
		return
	}
	ctx, f.stopSubs = context.WithCancel(ctx)
	ch := f.h.WatchRelease()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				f.mu.Lock()
				close(f.changed)
				f.changed = make(chan struct{})
				f.mu.Unlock()
				select {
				case f.wake <- struct{}{}:
				default:
				}
			}
		}
	}()
}

// stop ends start's goroutine; an app removed from the file also leaves the
// fleet's app (its poll, its slot, its host entry).
func (f *fleetApp) stop(why runners.StopReason) {
	if f == nil {
		return
	}
	if f.stopSubs != nil {
		f.stopSubs()
	}
	if f.h != nil && why == runners.AppRemoved {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.h.Close(ctx)
	}
}

// fleetWake is the channel that tells the loop a new release was published,
// or nil (never ready) without a fleet.
func (w *worker) fleetWake() <-chan struct{} {
	if w.fleet == nil || w.fleet.h == nil {
		return nil
	}
	return w.fleet.wake
}

// fleetResumed tells the fleet what this host runs, once resumed.
func (w *worker) fleetResumed(ctx context.Context) {
	if w.fleet == nil || w.fleet.h == nil {
		return
	}
	w.fleet.start(ctx)
	if err := w.fleet.h.SetDeployed(ctx, w.st.Version); err != nil && ctx.Err() == nil {
		w.logger.Warn("fleet: record the deployed version", "err", err)
	}
}

// published is what the poller publishes besides the version: enough for
// the other hosts' source to fetch the same artifact.
type published struct {
	Release  version.Release `json:"release"`
	Artifact version.Asset   `json:"artifact"`
}

// choose returns the release to deploy: the registry's newest allowed one
// when this host polls (the poller, or no fleet), else the one the fleet's
// poller published, without any registry request.
func (w *worker) choose(ctx context.Context) (*version.Candidate, error) {
	if w.fleet == nil || w.fleet.h == nil {
		return check(ctx, w.src, w.policy, w.now(), w.logger)
	}
	h := w.fleet.h
	if h.IsPoller() {
		cand, err := check(ctx, w.src, w.policy, w.now(), w.logger)
		if err != nil || cand == nil {
			return cand, err
		}
		if err := w.publishRelease(ctx, cand); err != nil && ctx.Err() == nil {
			w.logger.Warn("fleet: release not published", "version", cand.Version.Original(), "err", err)
		}
		if w.st.Version == "" {
			return w.firstInstall(cand)
		}
		return cand, nil
	}
	if w.st.Version == "" {
		return w.firstInstall(nil)
	}
	return w.latestPublished()
}

// latestPublished is the release the fleet's poller published last, or nil
// before it published one.
func (w *worker) latestPublished() (*version.Candidate, error) {
	rel, ok := w.fleet.h.Latest()
	if !ok {
		w.logger.Debug("fleet: no release published yet")
		return nil, nil
	}
	return candidateOf(rel, w.app.CalVer)
}

// firstInstall is what a host with nothing deployed installs: the fleet's
// last fully rolled-out version, even while a newer one (cand, or the
// published release) is rolling out; the newer one comes after, by the
// rollout's rules. Until the fleet's state is read it installs nothing (the
// watch wakes the loop).
func (w *worker) firstInstall(cand *version.Candidate) (*version.Candidate, error) {
	h := w.fleet.h
	rel, ok, known := h.FirstInstall()
	switch {
	case !known:
		w.logger.Debug("fleet: reading the fleet's state before a first install")
		return nil, nil
	case ok:
		if cand == nil || cand.Version.Original() != rel.Version {
			w.logger.Info("fleet: nothing deployed; installing the fleet's rolled-out version first", "version", rel.Version)
		}
		return candidateOf(rel, w.app.CalVer)
	case cand != nil:
		return cand, nil
	}
	return w.latestPublished()
}

// publishRelease publishes cand for the fleet, with its artifact's SHA-256: from
// the release's checksum file, or else computed from the artifact once per
// version (so every host can verify its download).
func (w *worker) publishRelease(ctx context.Context, cand *version.Candidate) error {
	tag := cand.Version.Original()
	if cur, ok := w.fleet.h.Latest(); ok && cur.Version == tag && cur.Leader == w.fleet.host {
		return nil
	}
	rel := fleet.Release{Version: tag, Artifact: cand.Artifact.Name, Published: cand.Release.Created, Digest: cand.Release.Image}
	if cand.Release.Image == "" {
		sum, err := w.artifactSum(ctx, cand)
		if err != nil {
			return err
		}
		rel.SHA256 = sum
	}
	b, err := json.Marshal(published{Release: cand.Release, Artifact: cand.Artifact})
	if err != nil {
		return err
	}
	rel.Source = b
	return w.fleet.h.PublishRelease(ctx, rel)
}

// artifactSum is the artifact's SHA-256, cached per version.
func (w *worker) artifactSum(ctx context.Context, c *version.Candidate) (string, error) {
	tag := c.Version.Original()
	w.fleet.mu.Lock()
	if w.fleet.sumTag == tag {
		s := w.fleet.sum
		w.fleet.mu.Unlock()
		return s, nil
	}
	w.fleet.mu.Unlock()
	var sum string
	if c.Checksum != nil {
		r, err := w.src.Open(ctx, c.Release, *c.Checksum)
		if err != nil {
			return "", fmt.Errorf("fetch checksum file %s: %w", c.Checksum.Name, err)
		}
		sum, err = version.ParseChecksums(r, c.Artifact.Name)
		r.Close()
		if err != nil {
			return "", fmt.Errorf("checksum file %s: %w", c.Checksum.Name, err)
		}
	} else {
		r, err := w.src.Open(ctx, c.Release, c.Artifact)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", c.Artifact.Name, err)
		}
		hash := sha256.New()
		_, err = io.Copy(hash, r)
		r.Close()
		if err != nil {
			return "", fmt.Errorf("read %s: %w", c.Artifact.Name, err)
		}
		sum = hex.EncodeToString(hash.Sum(nil))
	}
	w.fleet.mu.Lock()
	w.fleet.sumTag, w.fleet.sum = tag, sum
	w.fleet.mu.Unlock()
	return sum, nil
}

// candidateOf rebuilds the poller's candidate from the published release.
// Its checksum file is dropped: the published SHA-256 is what the download
// is verified against (publishedSum).
func candidateOf(rel fleet.Release, calver string) (*version.Candidate, error) {
	var p published
	if err := json.Unmarshal(rel.Source, &p); err != nil {
		return nil, fmt.Errorf("fleet: published release %s is unreadable: %w", rel.Version, err)
	}
	v, ok := version.ParseTag(rel.Version, calver)
	if !ok {
		return nil, fmt.Errorf("fleet: published version %q is not a version this app reads", rel.Version)
	}
	return &version.Candidate{Release: p.Release, Version: v, Artifact: p.Artifact}, nil
}

// publishedSum is the SHA-256 the fleet published for tag, or "".
func (f *fleetApp) publishedSum(tag string) string {
	if f == nil || f.h == nil {
		return ""
	}
	if r, ok := f.h.ReleaseOf(tag); ok { // the latest, or an older one a first install takes
		return r.SHA256
	}
	return ""
}

// releaseChanged is closed when the published release changes.
func (f *fleetApp) releaseChanged() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// fleetGate asks the fleet whether this host may deploy tag now. It waits
// (the app's status says for what) until the answer is yes, or a refusal
// waiting will not change, or the published release changes, or an admin
// retry is asked for, or (on the poller, which must poll the registry) the
// next poll is due. proceed is false when the deploy must not happen now.
func (w *worker) fleetGate(ctx context.Context, tag string) (slot fleet.Slot, proceed bool, err error) {
	if w.fleet == nil {
		return nil, true, nil
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var changed <-chan struct{}
	if w.fleet.h != nil {
		changed = w.fleet.releaseChanged()
	}
	go func() {
		defer cancel()
		for {
			tick, stopTick := w.clock.After(w.app.Interval)
			select {
			case <-gctx.Done():
				stopTick()
				return
			case <-changed:
				stopTick()
				return
			case <-w.retry:
				// An admin retry: leave the gate and hand the request back
				// to the loop, which forgets bad versions and polls now.
				stopTick()
				w.requestRetry()
				return
			case <-tick:
			}
			// The poller (and every host under FleetLock) polls the registry
			// again. A follower learns of a new release only from the watch
			// (changed), so it keeps waiting in the gate: leaving it would
			// leave its place in the slot queue unused until its next poll.
			if w.fleet.h == nil || w.fleet.h.IsPoller() {
				return
			}
		}
	}()
	d, err := w.fleet.gater.Gate(gctx, tag)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if gctx.Err() != nil {
			return nil, false, nil // look again at the next poll
		}
		return nil, false, fmt.Errorf("fleet: %w", err)
	}
	w.fleet.mu.Lock()
	w.fleet.decided = d
	w.fleet.mu.Unlock()
	if !d.Allowed {
		w.logger.Info("fleet: not deploying now", "version", tag, "phase", string(d.Phase), "why", d.Wait)
		return nil, false, nil
	}
	w.logger.Info("fleet: deploy allowed", "version", tag, "phase", string(d.Phase))
	return d.Slot, true, nil
}

// fleetDone reports the deploy's outcome to the fleet and gives the slot
// back: after min_healthy_time when it worked (Healthy), at once when it did
// not. Only a failure that marks the version bad on this host (the release
// is broken, not the network) counts towards the fleet's failure_threshold.
func (w *worker) fleetDone(ctx context.Context, slot fleet.Slot, tag string, deployErr error) {
	if slot == nil {
		return
	}
	// The outcome is recorded even when the agent is stopping.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	bad := errors.Is(deployErr, runners.ErrBadRelease) || errors.Is(deployErr, releasestore.ErrBadArtifact)
	if w.fleet.h != nil && (deployErr == nil || bad) {
		reason := ""
		if deployErr != nil {
			reason = deployErr.Error()
		}
		if err := w.fleet.h.ReportOutcome(ctx, tag, deployErr == nil, reason); err != nil {
			w.logger.Warn("fleet: outcome not recorded", "version", tag, "err", err)
		}
	}
	var err error
	if deployErr == nil {
		err = slot.Healthy(ctx)
	} else {
		err = slot.Release(ctx)
	}
	if err != nil {
		w.logger.Warn("fleet: slot not given back; it ends with this host's session", "version", tag, "err", err)
	}
}

// fleetStatus is the app's part in the fleet for Status, or nil.
func (w *worker) fleetStatus() *FleetStatus {
	if w.fleet == nil {
		return nil
	}
	w.fleet.mu.Lock()
	d := w.fleet.decided
	w.fleet.mu.Unlock()
	if w.fleet.h == nil {
		fs := &FleetStatus{Phase: string(fleet.PhaseIdle), Available: true, Wait: w.fleet.lock.Wait()}
		if fs.Wait != "" {
			fs.Phase = string(fleet.PhaseSlot)
		}
		return fs
	}
	s := w.fleet.h.State()
	fs := &FleetStatus{
		Phase: string(s.Phase), Wait: s.Wait, Rollout: string(s.Fleet), Poller: s.Poller,
		Bad: s.Bad, Available: s.Available, Unavailable: s.Unavailable,
	}
	if s.Release != nil {
		fs.Release = s.Release.Version
	}
	// The last refusal stands until the next Gate call shows a wait.
	if fs.Wait == "" && !d.Allowed && d.Phase != "" && s.Release != nil {
		fs.Phase, fs.Wait = string(d.Phase), d.Wait
	}
	if !s.Available {
		fs.Phase = string(s.Fleet)
		if fs.Wait == "" {
			fs.Wait = "etcd unreachable (" + s.Unavailable + ")"
		}
	}
	return fs
}

var _ fleet.Gater = (*fleetlock.Client)(nil)

// planFleet fills in, for each item, what the fleet allows (PlanItem.Fleet):
// it reads the fleet's state from etcd once, without joining. Without a
// fleet block it does nothing.
func planFleet(ctx context.Context, cfg *config.File, items []PlanItem) {
	if cfg.Fleet == nil {
		return
	}
	fc, err := config.FleetOf(cfg)
	if err == nil && fc.FleetLock.Enabled() {
		for i := range items {
			items[i].Fleet = "fleetlock group " + fc.FleetLock.Group + ": one host of the group deploys at a time"
		}
		return
	}
	var st fleet.Status
	if err == nil {
		var op *fleet.Operator
		if op, err = fleet.NewOperator(fc, nil, 5*time.Second); err == nil {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			st, err = op.Status(ctx)
			cancel()
			op.Close()
		}
	}
	for i := range items {
		if err != nil {
			items[i].Fleet = "unknown: " + err.Error()
			continue
		}
		items[i].Fleet = fleetAllows(st, items[i])
	}
}

// fleetAllows says in words what the fleet allows for one app.
func fleetAllows(st fleet.Status, it PlanItem) string {
	var a *fleet.AppStatus
	for i := range st.Apps {
		if st.Apps[i].Name == it.App {
			a = &st.Apps[i]
		}
	}
	if a == nil {
		return "no host of the fleet runs the app yet: the first to start polls and publishes"
	}
	for _, b := range a.Bad {
		if b.Version == it.Newest {
			return it.Newest + " is bad for the fleet: nobody deploys it (fleet retry forgets it)"
		}
	}
	if a.Paused {
		return "paused: no new deploy starts (fleet resume)"
	}
	if a.Release == nil {
		return "no release published yet"
	}
	s := fmt.Sprintf("%s published by %s; rollout %s", a.Release.Version, dash(a.Poller), a.Phase)
	if len(a.Slots) > 0 || a.MaxParallel > 0 {
		s += fmt.Sprintf(", %d/%d slots held", len(a.Slots), max(a.MaxParallel, 1))
	}
	if it.Deployed == "" && a.Done != "" {
		s += "; a new host installs " + a.Done + " at once"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
