package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// AppHandle is one app of this host in the fleet, made by [Member.App]. It is
// meant for one app loop (like the agent's worker):
//
//   - Every poll: if IsPoller, poll the registry and PublishRelease the chosen
//     release; otherwise poll nothing and read the release from Latest or
//     WatchRelease.
//   - Before a deploy: skip versions IsBad says are bad; call Gate, which
//     blocks until the host may deploy and returns a Slot.
//   - After the deploy: ReportOutcome, then Slot.Healthy (it worked) or
//     Slot.Release (it did not).
//   - At start: SetDeployed with the version the host already runs.
//
// Methods are safe for concurrent use; Gate may run while the others are
// called (status, metrics). Every method that talks to etcd returns when its
// ctx ends; none keeps ctx. The handle watches its app's keys with one etcd
// watch, so at rest it sends nothing beyond the member's lease keep-alives.
type AppHandle struct {
	m      *Member
	name   string
	logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kickCh chan struct{}

	mu          sync.Mutex
	rollout     Rollout
	view        *appView // nil until the watch is in sync
	kvs         map[string]*mvccpb.KeyValue
	changed     chan struct{}
	leaderKey   string
	leaderRev   int64
	deployed    string
	phase       Phase
	target      string
	wait        string
	waitPhase   Phase
	local       *Release // release published while acting alone
	subs        []chan Release
	bakeStart   map[string]time.Time
	slotTimer   *time.Timer // releases pendingSlot after min_healthy_time
	pendingSlot *etcdSlot
	baked       time.Duration // the bake this host measured before its deploy
	// active is the slot of the deploy under way, until it is given back
	// (ReportOutcome may give it back with the outcome).
	active *etcdSlot
	// releaseOnReturn: a slot was released while etcd was away; delete its
	// key when etcd is back (unless a new deploy took it over).
	releaseOnReturn bool
}

// App returns the handle of app, starting it on first use. Calling App again
// with the same name updates the rollout and returns the same handle. The
// rollout has its defaults applied here.
func (m *Member) App(name string, r Rollout) *AppHandle {
	r = r.WithDefaults()
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.apps[name]; h != nil {
		h.mu.Lock()
		h.rollout = r
		h.mu.Unlock()
		return h
	}
	ctx, cancel := context.WithCancel(m.ctx)
	h := &AppHandle{
		m: m, name: name, logger: m.logger.With("app", name), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), kickCh: make(chan struct{}, 1), rollout: r,
		changed: make(chan struct{}), phase: PhaseIdle, bakeStart: map[string]time.Time{},
	}
	m.apps[name] = h
	go h.loop()
	return h
}

// Name is the app's name.
func (h *AppHandle) Name() string { return h.name }

// Close removes the app from this host's part in the fleet (the app was
// removed from the config; not for agent shutdown, which is Member.Close):
// it gives up the poll, its slot, and its entry in the host record.
func (h *AppHandle) Close(ctx context.Context) error {
	h.m.mu.Lock()
	if h.m.apps[h.name] == h {
		delete(h.m.apps, h.name)
	}
	h.m.mu.Unlock()
	h.mu.Lock()
	key := h.leaderKey
	h.mu.Unlock()
	h.stop()
	if ok, _ := h.m.Available(); !ok {
		return nil
	}
	ops := []clientv3.Op{clientv3.OpDelete(h.m.keys.slot(h.name, h.m.cfg.HostID))}
	if key != "" {
		ops = append(ops, clientv3.OpDelete(key))
	}
	_, err := h.m.putHost(ctx, nil, ops...)
	return err
}

func (h *AppHandle) stop() {
	h.cancel()
	<-h.done
}

func (h *AppHandle) kick() {
	select {
	case h.kickCh <- struct{}{}:
	default:
	}
}

// loop keeps, per session, one election campaign and one watch of the app's
// keys running.
func (h *AppHandle) loop() {
	defer close(h.done)
	for h.ctx.Err() == nil {
		sess, sctx, ch := h.m.session()
		if sess == nil {
			select {
			case <-h.ctx.Done():
				return
			case <-ch:
			case <-h.kickCh:
			}
			continue
		}
		ctx, cancel := context.WithCancel(sctx)
		stop := context.AfterFunc(h.ctx, cancel)
		if _, err := h.m.putHost(ctx, nil); err != nil && ctx.Err() == nil {
			h.logger.Debug("fleet: register app", "err", err)
		}
		campaigned := make(chan struct{})
		h.m.campaigns.Add(1)
		go func() {
			defer h.m.campaigns.Done()
			defer close(campaigned)
			h.campaign(ctx, sess)
		}()
		h.watch(ctx)
		cancel()
		stop()
		select {
		case <-campaigned:
		case <-h.ctx.Done():
			// The handle stops. etcd's Campaign, cancelled while it waits,
			// resigns on the client's own context: cut off from etcd that
			// lasts until etcd answers or Member.Close closes the client,
			// which then waits for it (m.campaigns).
		}
		h.mu.Lock()
		h.view = nil
		h.mu.Unlock()
		h.broadcast()
		if h.ctx.Err() != nil {
			return
		}
		// Wait for the supervisor to say something changed (or a short backoff
		// when the watch ended on its own).
		select {
		case <-h.ctx.Done():
			return
		case <-ch:
		case <-time.After(backoff(2, h.m.opts.MaxBackoff)):
		}
	}
}

func (h *AppHandle) campaign(ctx context.Context, sess *concurrency.Session) {
	e := concurrency.NewElection(sess, strings.TrimSuffix(h.m.keys.poller(h.name), "/"))
	if err := e.Campaign(ctx, h.m.cfg.HostID); err != nil {
		if ctx.Err() == nil {
			h.m.failed(fmt.Errorf("fleet: campaign for %s: %w", h.name, err))
		}
		return
	}
	h.mu.Lock()
	h.leaderKey, h.leaderRev = e.Key(), e.Rev()
	h.mu.Unlock()
	h.logger.Info("fleet: this host polls the registry for the fleet", "term", e.Rev())
	h.broadcast()
	<-ctx.Done()
	h.mu.Lock()
	h.leaderKey, h.leaderRev = "", 0
	h.mu.Unlock()
	if h.m.ctx.Err() == nil && h.ctx.Err() != nil {
		// The app was removed: let another host poll at once.
		rctx, cancel := context.WithTimeout(context.Background(), h.m.opts.OpTimeout)
		_ = e.Resign(rctx)
		cancel()
	}
}

// watch lists the app's keys and follows them until ctx ends or the watch
// fails.
func (h *AppHandle) watch(ctx context.Context) {
	prefix := h.m.keys.app(h.name)
	octx, cancel := h.m.opCtx(ctx)
	resp, err := h.m.cli().Get(octx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			h.m.failed(fmt.Errorf("fleet: list %s: %w", h.name, err))
		}
		return
	}
	v := buildView(h.m.keys, h.name, resp.Header.Revision, resp.Kvs)
	h.apply(v)
	if err := h.finishLost(ctx); err != nil && ctx.Err() == nil {
		h.logger.Warn("fleet: check a rollout this host finished without reporting", "err", err)
	}
	wch := h.m.cli().Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			if ctx.Err() == nil {
				h.m.failed(fmt.Errorf("fleet: watch %s: %w", h.name, err))
			}
			return
		}
		if len(wr.Events) == 0 {
			continue
		}
		v = v.next(h.m.keys, h.name, wr.Header.Revision, wr.Events)
		h.apply(v)
	}
}

// apply makes v the handle's view and tells waiters.
func (h *AppHandle) apply(v *appView) {
	h.mu.Lock()
	old := h.view
	h.view = v
	var notify []chan Release
	if v.release != nil && (old == nil || old.release == nil || !old.release.same(*v.release)) {
		notify = h.subs
	}
	h.mu.Unlock()
	for _, ch := range notify {
		sendLatest(ch, *v.release)
	}
	h.broadcast()
}

func sendLatest(ch chan Release, r Release) {
	for {
		select {
		case ch <- r:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

func (h *AppHandle) broadcast() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func (h *AppHandle) unavailable() bool {
	ok, _ := h.m.Available()
	return !ok
}

func (h *AppHandle) actsAlone() bool {
	return h.m.cfg.OnUnavailable == Local && h.unavailable()
}

// IsPoller reports whether this host polls the registry for the app now: it
// holds the app's election, or etcd is unreachable and on_unavailable is
// "local". The answer can change at any time; PublishRelease is the check
// that counts.
func (h *AppHandle) IsPoller() bool {
	if h.actsAlone() {
		return true
	}
	down := h.unavailable()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leaderKey != "" && !down
}

// PublishRelease publishes r as the app's release for the fleet. Only the
// poller may: the write is a transaction that holds only while this host's
// election key is the one that won (ErrNotLeader otherwise). Publishing the
// release that is already published writes nothing. It also fixes the plan
// of r.Version (its canaries).
func (h *AppHandle) PublishRelease(ctx context.Context, r Release) error {
	if h.actsAlone() {
		h.mu.Lock()
		r.Leader = h.m.cfg.HostID
		h.local = &r
		subs := h.subs
		h.mu.Unlock()
		for _, ch := range subs {
			sendLatest(ch, r)
		}
		return nil
	}
	h.mu.Lock()
	key, rev, view := h.leaderKey, h.leaderRev, h.view
	h.mu.Unlock()
	if key == "" || h.unavailable() {
		return ErrNotLeader
	}
	if view != nil && view.release != nil && view.release.same(r) {
		return nil
	}
	r.Leader, r.Term = h.m.cfg.HostID, rev
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	octx, cancel := h.m.opCtx(ctx)
	defer cancel()
	resp, err := h.m.cli().Txn(octx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpPut(h.m.keys.release(h.name), string(b)),
			// Kept per version: a host that starts with nothing deployed
			// installs the last rolled-out version after a newer one replaced
			// it in "release".
			clientv3.OpPut(h.m.keys.releaseOf(h.name, r.Version), string(b))).
		Commit()
	if err != nil {
		h.m.failed(err)
		return fmt.Errorf("fleet: publish %s %s: %w", h.name, r.Version, err)
	}
	if !resp.Succeeded {
		return ErrNotLeader
	}
	h.logger.Info("fleet: published release", "version", r.Version, "term", rev)
	if _, err := h.ensurePlan(ctx, r.Version); err != nil {
		return err
	}
	return nil
}

// Latest returns the release published for the app, if any.
func (h *AppHandle) Latest() (Release, bool) {
	down := h.unavailable()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.local != nil && down {
		return *h.local, true
	}
	if h.view == nil || h.view.release == nil {
		return Release{}, false
	}
	return *h.view.release, true
}

// WatchRelease returns a channel that receives the app's release each time
// it changes (the newest only: a slow reader misses nothing but stale
// values). The channel is never closed; stop reading when the app loop ends.
func (h *AppHandle) WatchRelease() <-chan Release {
	ch := make(chan Release, 1)
	h.mu.Lock()
	h.subs = append(h.subs, ch)
	h.mu.Unlock()
	if r, ok := h.Latest(); ok {
		sendLatest(ch, r)
	}
	return ch
}

// IsBad reports whether version is bad for the whole fleet.
func (h *AppHandle) IsBad(version string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.view != nil && h.view.bad[version].Version != ""
}

// LastRolledOut returns the fleet's last fully rolled-out version, if known.
// A host with nothing deployed may install it at once (Gate allows it).
func (h *AppHandle) LastRolledOut() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.view == nil {
		return ""
	}
	return h.view.done
}

// ReleaseOf returns the release record of version as the poller published
// it, if it is known: the current release, or an earlier one whose rollout
// keys are still there.
func (h *AppHandle) ReleaseOf(version string) (Release, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.view == nil {
		return Release{}, false
	}
	if r := h.view.releaseOf(version); r != nil {
		return *r, true
	}
	return Release{}, false
}

// FirstInstall returns what this host installs when it has nothing deployed:
// the fleet's last fully rolled-out version (Gate allows it at once), not a
// newer release still rolling out, which the host joins afterwards like every
// other host. ok is false when the host runs something or the fleet has no
// rolled-out version to give (or etcd is unreachable); known is false while the handle has not read
// the fleet's state yet (ask again when WatchRelease sends).
func (h *AppHandle) FirstInstall() (r Release, ok, known bool) {
	if h.unavailable() {
		return Release{}, false, true // no fleet to follow: on_unavailable decides
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.deployed != "" {
		return Release{}, false, true
	}
	if h.view == nil {
		return Release{}, false, false
	}
	if rel := h.view.firstInstall(); rel != nil {
		return *rel, true, true
	}
	return Release{}, false, true
}

// AppState is this host's view of the app, for status and metrics.
type AppState struct {
	Deployed string
	// Phase is this host's phase (deploying, healthy, idle) or, while Gate
	// waits, the phase it waits in; Wait says for what.
	Phase Phase
	Wait  string
	// Fleet is the fleet-wide phase of the published release's rollout.
	Fleet       Phase
	Release     *Release
	Poller      bool
	Bad         []string
	Available   bool
	Unavailable string
	// Synced: the handle has read the app's keys and follows them.
	Synced bool
}

// State returns this host's view of the app.
func (h *AppHandle) State() AppState {
	ok, why := h.m.Available()
	poller := h.IsPoller()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := AppState{Deployed: h.deployed, Phase: h.phase, Poller: poller, Available: ok, Unavailable: why}
	if h.waitPhase != "" {
		s.Phase, s.Wait = h.waitPhase, h.wait
	}
	if v := h.view; v != nil {
		s.Synced = true
		if v.release != nil {
			r := *v.release
			s.Release = &r
			s.Fleet = v.phase(r.Version)
		}
		for b := range v.bad {
			s.Bad = append(s.Bad, b)
		}
		sort.Strings(s.Bad)
	}
	if !ok {
		s.Fleet = PhaseHold
		if h.m.cfg.OnUnavailable == Local {
			s.Fleet = PhaseLocal
		}
	}
	return s
}

func (h *AppHandle) hostApp() HostApp {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := HostApp{Version: h.deployed, Phase: h.phase, Target: h.target}
	if h.phase == PhaseDeploying {
		a.Baked = h.baked
	}
	return a
}

// SetDeployed tells the fleet which version this host runs (at start, after
// resuming). It writes the host record when etcd is reachable.
func (h *AppHandle) SetDeployed(ctx context.Context, version string) error {
	h.mu.Lock()
	h.deployed = version
	h.mu.Unlock()
	if h.unavailable() {
		return nil
	}
	if _, err := h.m.putHost(ctx, nil); err != nil {
		return err
	}
	return h.finishLost(ctx)
}

// finishLost handles a host that (re)joins running the published release's
// version with no outcome for it: it deployed and then crashed, or lost its
// outcome, before reporting, so it will never report that version. A host
// that reported before may have counted on this host's old slot key
// (laterReporter) and not looked at the host records; so this host deletes
// that key, if its view still shows it, in the transaction that writes its
// host record, and then looks itself (markDone). Whichever of the two writes
// comes second sees the other: the host that reports after finds the slot key
// changed and looks; this host, looking after, finds that host's record. It
// writes no outcome: it does not know the deploy was healthy. Nothing is read
// unless the host runs the release, has no outcome for it, and done is behind.
func (h *AppHandle) finishLost(ctx context.Context) error {
	me := h.m.cfg.HostID
	h.mu.Lock()
	v, version := h.view, h.deployed
	busy := h.active != nil || h.pendingSlot != nil
	h.mu.Unlock()
	if v == nil || busy || version == "" || v.done == version || v.release == nil || v.release.Version != version {
		return nil
	}
	if r := v.rollouts[version]; r != nil {
		if _, ok := r.outcomes[me]; ok {
			return nil // it reported, and looked or knew who would
		}
	}
	for _, s := range v.slots {
		if s.Host != me || s.Version != version {
			continue
		}
		key := h.m.keys.slot(h.name, me)
		ok, err := h.m.putHost(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", s.Rev)}, clientv3.OpDelete(key))
		if err != nil {
			return err
		}
		if !ok {
			if _, err := h.m.putHost(ctx, nil); err != nil {
				return err
			}
		}
	}
	h.logger.Info("fleet: this host runs the release but never reported it (a crash or a lost outcome); checking whether the rollout is complete", "version", version)
	return h.markDone(ctx, version)
}

// ensurePlan returns the plan of version, fixing it when nobody did yet.
func (h *AppHandle) ensurePlan(ctx context.Context, version string) (Plan, error) {
	octx, cancel := h.m.opCtx(ctx)
	defer cancel()
	resp, err := h.m.cli().Get(octx, h.m.keys.hosts(), clientv3.WithPrefix())
	if err != nil {
		h.m.failed(err)
		return Plan{}, fmt.Errorf("fleet: list hosts: %w", err)
	}
	var hosts []HostRecord
	seen := false
	for _, kv := range resp.Kvs {
		var r HostRecord
		if json.Unmarshal(kv.Value, &r) != nil {
			continue
		}
		if _, ok := r.Apps[h.name]; ok {
			hosts = append(hosts, r)
			seen = seen || r.Host == h.m.cfg.HostID
		}
	}
	if !seen {
		hosts = append(hosts, h.m.record())
	}
	h.mu.Lock()
	ro := h.rollout
	h.mu.Unlock()
	p := choosePlan(version, h.m.cfg.HostID, ro, hosts)
	b, err := json.Marshal(p)
	if err != nil {
		return Plan{}, err
	}
	key := h.m.keys.plan(h.name, version)
	tr, err := h.m.cli().Txn(octx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		h.m.failed(err)
		return Plan{}, fmt.Errorf("fleet: plan %s %s: %w", h.name, version, err)
	}
	if tr.Succeeded {
		h.logger.Info("fleet: rollout planned", "version", version, "canaries", p.Canaries, "max_parallel", p.MaxParallel, "hosts", p.Hosts)
		return p, nil
	}
	kvs := tr.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 1 && json.Unmarshal(kvs[0].Value, &p) == nil {
		return p, nil
	}
	return Plan{}, fmt.Errorf("fleet: plan %s %s: unreadable", h.name, version)
}

func (h *AppHandle) setWait(p Phase, wait string) {
	h.mu.Lock()
	h.waitPhase, h.wait = p, wait
	h.mu.Unlock()
}

// unavailableDecision is the answer while etcd cannot be reached.
func (h *AppHandle) unavailableDecision() Decision {
	_, why := h.m.Available()
	if h.m.cfg.OnUnavailable == Local {
		h.setWait("", "")
		return Decision{Allowed: true, Phase: PhaseLocal, Slot: noSlot{}}
	}
	d := Decision{Phase: PhaseHold, Wait: "etcd unreachable (" + why + "); keeping what runs, deploying nothing new"}
	h.setWait(d.Phase, d.Wait)
	return d
}

// Gate implements [Gater] for the fleet's rollout rules (docs/fleet.md):
// bad versions are refused; a paused app waits; a host with nothing deployed
// installs the fleet's last rolled-out version at once; canaries go first;
// the others wait until every canary is healthy and then bake on this host's
// monotonic clock (or until an operator promotes); then every host takes a
// deploy slot, at most max_parallel at once. While etcd is unreachable it
// returns at once: not allowed (hold) or allowed without a slot (local).
// After Member.Close or AppHandle.Close it returns ErrClosed.
func (h *AppHandle) Gate(ctx context.Context, version string) (Decision, error) {
	defer h.setWait("", "")
	var planned *Plan
	for {
		if err := ctx.Err(); err != nil {
			return Decision{}, err
		}
		if h.ctx.Err() != nil {
			return Decision{}, ErrClosed
		}
		h.mu.Lock()
		v, changed, deployed := h.view, h.changed, h.deployed
		h.mu.Unlock()
		if h.unavailable() {
			return h.unavailableDecision(), nil
		}
		var timer <-chan time.Time
		stopTimer := func() bool { return false }
		wait := func(p Phase, why string) {
			h.setWait(p, why)
		}
		var r *rolloutView
		if v != nil {
			r = v.rollouts[version]
		}
		var plan *Plan
		if r != nil && r.plan != nil {
			plan = r.plan
		} else if planned != nil {
			plan = planned
		}
		switch {
		case v == nil:
			wait(PhaseHold, "reading the fleet's state from etcd")
		case v.bad[version].Version != "":
			return Decision{Phase: PhaseStopped, Wait: fmt.Sprintf("%s is bad for the fleet (%s); waiting for a newer version", version, badReasons(v.bad[version]))}, nil
		case v.paused:
			wait(PhasePaused, "the app's rollout is paused (fleet resume)")
		case deployed == "" && v.done == version:
			ok, err := h.commit(ctx, version, PhaseInstall)
			if err != nil {
				return h.unavailableDecision(), nil
			}
			if ok {
				return Decision{Allowed: true, Phase: PhaseInstall, Slot: &etcdSlot{h: h, version: version, noKey: true}}, nil
			}
			wait(PhaseInstall, "the fleet changed; looking again")
		case deployed == "" && v.firstInstall() != nil && v.done != version:
			// A new host neither jumps ahead of a rollout under way nor
			// waits for it with nothing running: it installs the rolled-out
			// version first (FirstInstall), then joins the rollout.
			return Decision{Phase: PhaseInstall, Wait: fmt.Sprintf("nothing deployed: installing the fleet's rolled-out %s first", v.done)}, nil
		case plan == nil:
			p, err := h.ensurePlan(ctx, version)
			if err != nil {
				if ctx.Err() != nil {
					return Decision{}, ctx.Err()
				}
				return h.unavailableDecision(), nil
			}
			planned = &p
			continue
		default:
			d, w, p, why, err := h.step(ctx, v, r, plan, version)
			if err != nil {
				if ctx.Err() != nil {
					return Decision{}, ctx.Err()
				}
				return h.unavailableDecision(), nil
			}
			if d != nil {
				return *d, nil
			}
			if p == "" {
				continue // something changed here: look again at once
			}
			wait(p, why)
			if w > 0 {
				t := time.NewTimer(w)
				stopTimer = t.Stop
				timer = t.C
			}
		}
		_, _, availCh := h.m.session()
		select {
		case <-ctx.Done():
		case <-h.ctx.Done():
		case <-changed:
		case <-availCh:
		case <-timer:
		}
		stopTimer()
	}
}

// step decides for a version with a plan: a decision, or what to wait for
// (phase, why, and how long at most), or neither (look again at once).
func (h *AppHandle) step(ctx context.Context, v *appView, r *rolloutView, plan *Plan, version string) (*Decision, time.Duration, Phase, string, error) {
	me := h.m.cfg.HostID
	if r == nil {
		r = &rolloutView{plan: plan, outcomes: map[string]Outcome{}}
	}
	h.mu.Lock()
	h.baked = 0
	h.mu.Unlock()
	if !plan.isCanary(me) && !r.promoted {
		rv := *r
		rv.plan = plan
		if ok, waiting := rv.canariesHealthy(); !ok {
			return nil, 0, PhaseCanary, fmt.Sprintf("waiting for canaries %s to be healthy on %s", strings.Join(waiting, ", "), version), nil
		}
		if plan.Bake > 0 {
			h.mu.Lock()
			start, ok := h.bakeStart[version]
			if !ok {
				start = time.Now()
				h.bakeStart[version] = start
			}
			h.mu.Unlock()
			baked := time.Since(start)
			h.mu.Lock()
			h.baked = baked
			h.mu.Unlock()
			if left := plan.Bake - baked; left > 0 {
				return nil, left, PhaseBake, fmt.Sprintf("canaries healthy; baking %s for %s more", version, left.Round(time.Second)), nil
			}
		}
	}
	h.mu.Lock()
	t, pending := h.slotTimer, h.pendingSlot
	h.slotTimer, h.pendingSlot = nil, nil
	h.mu.Unlock()
	if t != nil {
		// The slot of the last deploy is still held for min_healthy_time:
		// give it back and queue again, so a slot never serves two deploys.
		t.Stop()
		if err := pending.Release(ctx); err != nil {
			return nil, 0, "", "", err
		}
		return nil, 0, "", "", nil
	}
	h.mu.Lock()
	h.releaseOnReturn = false // this deploy takes over any slot key left
	h.mu.Unlock()
	rank, has := v.slotRank(me)
	if !has {
		if err := h.createSlot(ctx, version); err != nil {
			return nil, 0, "", "", err
		}
		return nil, 0, PhaseSlot, "waiting for a deploy slot", nil
	}
	if rank >= plan.MaxParallel {
		return nil, 0, PhaseSlot, fmt.Sprintf("waiting for a deploy slot: %d hosts ahead, max_parallel %d", rank-plan.MaxParallel+1, plan.MaxParallel), nil
	}
	ok, err := h.commit(ctx, version, PhaseDeploying)
	if err != nil {
		return nil, 0, "", "", err
	}
	if !ok {
		return nil, 0, PhaseSlot, "the fleet changed; looking again", nil
	}
	phase := PhaseRollout
	if plan.isCanary(me) {
		phase = PhaseCanary
	}
	s := &etcdSlot{h: h, version: version, minHealthy: plan.MinHealthyTime}
	h.mu.Lock()
	h.active = s
	h.mu.Unlock()
	return &Decision{Allowed: true, Phase: phase, Slot: s}, 0, "", "", nil
}

func badReasons(b BadVersion) string {
	var parts []string
	for host, why := range b.Hosts {
		parts = append(parts, host+": "+why)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// createSlot adds this host's slot key (bound to its lease) at the end of the
// app's queue, unless it has one.
func (h *AppHandle) createSlot(ctx context.Context, version string) error {
	sess, _, _ := h.m.session()
	if sess == nil {
		return ErrUnavailable
	}
	key := h.m.keys.slot(h.name, h.m.cfg.HostID)
	b, _ := json.Marshal(SlotRecord{Host: h.m.cfg.HostID, Version: version})
	octx, cancel := h.m.opCtx(ctx)
	defer cancel()
	_, err := h.m.cli().Txn(octx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b), clientv3.WithLease(sess.Lease()))).
		Commit()
	if err != nil {
		h.m.failed(err)
		return fmt.Errorf("fleet: take a slot for %s: %w", h.name, err)
	}
	return nil
}

// commit records in the host record that this host starts deploying
// version, in a transaction that holds only if the version is not bad, the
// app not paused, and (for a slot deploy) this host's slot key is still there.
func (h *AppHandle) commit(ctx context.Context, version string, phase Phase) (bool, error) {
	h.mu.Lock()
	if phase == PhaseInstall {
		h.baked = 0
	}
	prevPhase, prevTarget := h.phase, h.target
	h.phase, h.target = phase, version
	h.mu.Unlock()
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(h.m.keys.bad(h.name, version)), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(h.m.keys.paused(h.name)), "=", 0),
	}
	if phase == PhaseDeploying {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(h.m.keys.slot(h.name, h.m.cfg.HostID)), ">", 0))
	}
	ok, err := h.m.putHost(ctx, cmps)
	if err != nil || !ok {
		h.mu.Lock()
		h.phase, h.target = prevPhase, prevTarget
		h.mu.Unlock()
	}
	return ok, err
}

// ReportOutcome records whether version worked on this host (ok: deployed
// and healthy) or failed (reason says why). The first success of a canary
// counts towards the bake; failure_threshold failures mark the version bad
// for the fleet. When etcd is unreachable the outcome is kept and written
// when it is back. Call it before Slot.Healthy or Slot.Release. A success of
// a deploy whose plan has min_healthy_time 0 gives the slot back in the
// outcome's own transaction; Healthy then has nothing left to do.
func (h *AppHandle) ReportOutcome(ctx context.Context, version string, ok bool, reason string) error {
	h.mu.Lock()
	if ok {
		h.deployed = version
	}
	if h.phase == PhaseInstall {
		h.phase, h.target = PhaseIdle, ""
	}
	h.mu.Unlock()
	if h.unavailable() {
		h.m.queue(pendingOutcome{app: h.name, version: version, ok: ok, reason: reason})
		h.logger.Warn("fleet: etcd unreachable; the outcome is recorded when it is back", "version", version, "ok", ok)
		return nil
	}
	err := h.writeOutcome(ctx, version, ok, reason)
	if err != nil && ctx.Err() == nil {
		h.m.queue(pendingOutcome{app: h.name, version: version, ok: ok, reason: reason})
		return nil
	}
	return err
}

// writeOutcome writes this host's outcome for version with its host record.
// A success also gives back the deploy's slot in the same transaction when
// min_healthy_time is 0, and asks etcd, in the same round trip, whether
// another host will report after this one (laterReporter); only when none
// will may this host be the last, and only then does it read the host records
// to see whether version is rolled out. A failure counts the failures.
func (h *AppHandle) writeOutcome(ctx context.Context, version string, ok bool, reason string) error {
	me := h.m.cfg.HostID
	b, _ := json.Marshal(Outcome{OK: ok, Reason: reason})
	ops := []clientv3.Op{clientv3.OpPut(h.m.keys.outcome(h.name, version, me), string(b))}
	if !ok {
		if _, err := h.m.putHost(ctx, nil, ops...); err != nil {
			return err
		}
		return h.countFailures(ctx, version)
	}
	freed := h.freeWithOutcome(version)
	if freed {
		ops = append(ops, clientv3.OpDelete(h.m.keys.slot(h.name, me)))
	}
	cmps := h.laterReporter(version)
	later, err := h.m.putHostAnyway(ctx, cmps, ops...)
	if err != nil {
		if freed {
			// Deleted when etcd is back, as Release would.
			h.mu.Lock()
			h.releaseOnReturn = true
			h.mu.Unlock()
		}
		return err
	}
	if len(cmps) > 0 && later {
		return nil
	}
	return h.markDone(ctx, version)
}

// freeWithOutcome reports whether the slot of this host's deploy of version
// goes with the outcome's transaction: it has a key and min_healthy_time is
// 0. It then counts as given back (Healthy and Release do nothing more) and
// the host record says idle.
func (h *AppHandle) freeWithOutcome(version string) bool {
	h.mu.Lock()
	s := h.active
	h.mu.Unlock()
	if s == nil || s.version != version || s.noKey || s.minHealthy > 0 {
		return false
	}
	took := false
	s.once.Do(func() {
		took = true
		h.mu.Lock()
		if h.active == s {
			h.active = nil
		}
		if h.phase == PhaseDeploying || h.phase == PhaseHealthy {
			h.phase, h.target = PhaseIdle, ""
		}
		h.mu.Unlock()
	})
	return took
}

// laterReporter returns compares that hold when another host will report an
// outcome for version after this one: its slot key, queued for version, is
// still the one this host's view shows, and it has no outcome for version
// yet. That host looks at the host records after its own outcome, so this
// one need not. The candidate is the last such host in the view's queue (the
// least likely to have reported by now); nil when the view shows none. The
// compares are checked at the revision of this host's outcome, so a stale
// view can only make this host look when it need not, never the reverse. A
// host that never reports (it left the queue for a newer version) does not
// run version, so version is not rolled out then either; one that runs it
// but never reported (it crashed first) looks when it is back (finishLost).
func (h *AppHandle) laterReporter(version string) []clientv3.Cmp {
	me := h.m.cfg.HostID
	h.mu.Lock()
	v := h.view
	h.mu.Unlock()
	if v == nil {
		return nil
	}
	var reported map[string]Outcome
	if r := v.rollouts[version]; r != nil {
		reported = r.outcomes
	}
	for i := len(v.slots) - 1; i >= 0; i-- {
		s := v.slots[i]
		if s.Host == me || s.Version != version {
			continue
		}
		if _, ok := reported[s.Host]; ok {
			continue
		}
		return []clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(h.m.keys.slot(h.name, s.Host)), "=", s.Rev),
			clientv3.Compare(clientv3.CreateRevision(h.m.keys.outcome(h.name, version, s.Host)), "=", 0),
		}
	}
	return nil
}

// markDone records version as the app's rolled-out version when every host
// running the app runs it.
func (h *AppHandle) markDone(ctx context.Context, version string) error {
	octx, cancel := h.m.opCtx(ctx)
	defer cancel()
	resp, err := h.m.cli().Get(octx, h.m.keys.hosts(), clientv3.WithPrefix())
	if err != nil {
		h.m.failed(err)
		return fmt.Errorf("fleet: list hosts: %w", err)
	}
	for _, kv := range resp.Kvs {
		var r HostRecord
		if json.Unmarshal(kv.Value, &r) != nil {
			continue
		}
		if a, ok := r.Apps[h.name]; ok && a.Version != version {
			return nil
		}
	}
	h.mu.Lock()
	already := h.view != nil && h.view.done == version
	h.mu.Unlock()
	if already {
		return nil
	}
	if _, err := h.m.cli().Put(octx, h.m.keys.done(h.name), version); err != nil {
		h.m.failed(err)
		return fmt.Errorf("fleet: record %s rolled out: %w", version, err)
	}
	h.logger.Info("fleet: version rolled out to every host", "version", version)
	return nil
}

// countFailures marks version bad for the fleet once failure_threshold hosts
// reported it failed.
func (h *AppHandle) countFailures(ctx context.Context, version string) error {
	octx, cancel := h.m.opCtx(ctx)
	defer cancel()
	resp, err := h.m.cli().Get(octx, h.m.keys.outcomes(h.name, version), clientv3.WithPrefix())
	if err != nil {
		h.m.failed(err)
		return fmt.Errorf("fleet: count failures: %w", err)
	}
	bad := BadVersion{Version: version, Hosts: map[string]string{}}
	for _, kv := range resp.Kvs {
		var o Outcome
		if json.Unmarshal(kv.Value, &o) == nil && !o.OK {
			bad.Hosts[unesc(strings.TrimPrefix(string(kv.Key), h.m.keys.outcomes(h.name, version)))] = o.Reason
		}
	}
	threshold := h.threshold(version)
	if len(bad.Hosts) < threshold {
		return nil
	}
	bb, _ := json.Marshal(bad)
	key := h.m.keys.bad(h.name, version)
	tr, err := h.m.cli().Txn(octx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(bb))).Commit()
	if err != nil {
		h.m.failed(err)
		return fmt.Errorf("fleet: mark %s bad: %w", version, err)
	}
	if tr.Succeeded {
		h.logger.Warn("fleet: version is bad for the whole fleet; the rollout stops", "version", version, "failed_hosts", len(bad.Hosts))
	}
	return nil
}

func (h *AppHandle) threshold(version string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.view != nil {
		if r := h.view.rollouts[version]; r != nil && r.plan != nil && r.plan.FailureThreshold > 0 {
			return r.plan.FailureThreshold
		}
	}
	return h.rollout.FailureThreshold
}

// etcdSlot is a deploy slot: the key P/apps/<app>/slots/<host> on the
// session lease.
type etcdSlot struct {
	h          *AppHandle
	version    string
	minHealthy time.Duration
	noKey      bool // a first install: no slot key
	once       sync.Once
}

// Healthy keeps the slot min_healthy_time more, then releases it.
func (s *etcdSlot) Healthy(ctx context.Context) error {
	h := s.h
	h.mu.Lock()
	if h.phase == PhaseDeploying {
		h.phase = PhaseHealthy
	}
	h.mu.Unlock()
	if s.noKey || s.minHealthy <= 0 {
		return s.Release(ctx)
	}
	if !h.unavailable() {
		if _, err := h.m.putHost(ctx, nil); err != nil && ctx.Err() == nil {
			h.logger.Debug("fleet: record healthy", "err", err)
		}
	}
	h.mu.Lock()
	if h.slotTimer != nil {
		h.slotTimer.Stop()
	}
	h.pendingSlot = s
	h.slotTimer = time.AfterFunc(s.minHealthy, func() {
		h.mu.Lock()
		if h.pendingSlot == s {
			h.slotTimer, h.pendingSlot = nil, nil
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(h.m.ctx, h.m.opts.OpTimeout)
		defer cancel()
		if err := s.Release(ctx); err != nil {
			h.logger.Warn("fleet: release slot", "err", err)
		}
	})
	h.mu.Unlock()
	return nil
}

// Release gives the slot back now.
func (s *etcdSlot) Release(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		h := s.h
		h.mu.Lock()
		if h.active == s {
			h.active = nil
		}
		if h.phase == PhaseDeploying || h.phase == PhaseHealthy || h.phase == PhaseInstall {
			h.phase, h.target = PhaseIdle, ""
		}
		h.mu.Unlock()
		if s.noKey {
			if !h.unavailable() {
				_, err = h.m.putHost(ctx, nil)
			}
			return
		}
		if h.unavailable() {
			// The lease takes the key with it if we are away longer than
			// session_ttl; if we come back sooner, the member deletes it then.
			h.mu.Lock()
			h.releaseOnReturn = true
			h.mu.Unlock()
			return
		}
		if err = h.deleteSlot(ctx); err != nil {
			h.mu.Lock()
			h.releaseOnReturn = true
			h.mu.Unlock()
		}
	})
	return err
}

func (h *AppHandle) deleteSlot(ctx context.Context) error {
	_, err := h.m.putHost(ctx, nil, clientv3.OpDelete(h.m.keys.slot(h.name, h.m.cfg.HostID)))
	return err
}

// releaseLeftover deletes a slot that was given back while etcd was away.
func (h *AppHandle) releaseLeftover(ctx context.Context) error {
	h.mu.Lock()
	do := h.releaseOnReturn
	h.mu.Unlock()
	if !do {
		return nil
	}
	if err := h.deleteSlot(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	h.releaseOnReturn = false
	h.mu.Unlock()
	h.logger.Info("fleet: gave back a slot released while etcd was away")
	return nil
}

var (
	_ Gater = (*AppHandle)(nil)
	_ Slot  = (*etcdSlot)(nil)
	_ Slot  = noSlot{}
)
