package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
)

// TestRollout runs six agents through a good release (canaries, bake, waves
// of max_parallel), a bad one (stopped at the canaries), a good one again,
// and a seventh host that installs the rolled-out version at once.
func TestRollout(t *testing.T) {
	e := newEnv(t)
	r := Rollout{Canary: "2", Bake: 400 * time.Millisecond, MaxParallel: "2", MinHealthyTime: 50 * time.Millisecond, FailureThreshold: 1}
	var agents []*agent
	for i := range 6 {
		labels := map[string]string{"zone": "a"}
		if i == 3 {
			labels["role"] = "canary"
		}
		agents = append(agents, e.startAgent(e.join(e.config(fmt.Sprintf("h%d", i), labels)), r))
	}
	for _, a := range agents {
		a.fail = func(host, v string) string {
			if v == "v1.1.0" && host == "h3" {
				return "health check failed"
			}
			return ""
		}
	}
	rolledOut := func(v string) func() bool { return func() bool { return e.rolledOut(agents, v) } }

	e.reg.set("v1.0.0")
	eventually(t, 20*time.Second, "v1.0.0 rolled out to every host", rolledOut("v1.0.0"))
	st := e.appStatus()
	if !slices.Equal(st.Canaries, []string{"h3", "h0"}) {
		t.Errorf("canaries = %v; want the labelled h3 first, then h0", st.Canaries)
	}
	if st.MaxParallel != 2 || st.Phase != PhaseDone {
		t.Errorf("status = %+v; want max_parallel 2, phase done", st)
	}
	if deploys, _, most := e.chk.counts(); deploys < 6 || most != 2 {
		t.Errorf("checker saw %d deploys, at most %d at once; want >= 6 and exactly 2", deploys, most)
	}

	e.reg.set("v1.1.0")
	eventually(t, 10*time.Second, "v1.1.0 marked bad for the fleet", func() bool {
		for _, a := range agents {
			if !a.h.IsBad("v1.1.0") {
				return false
			}
		}
		return true
	})
	st = e.appStatus()
	if st.Phase != PhaseStopped || len(st.Bad) != 1 || st.Bad[0].Hosts["h3"] != "health check failed" {
		t.Errorf("after the bad release: %+v", st)
	}
	for _, a := range agents {
		if a.host != "h3" && a.host != "h0" && a.version() != "v1.0.0" {
			t.Errorf("%s left v1.0.0 for %s during a bad canary", a.host, a.version())
		}
	}

	e.reg.set("v1.2.0")
	eventually(t, 20*time.Second, "v1.2.0 rolled out to every host", rolledOut("v1.2.0"))

	late := e.startAgent(e.join(e.config("h6", nil)), r)
	eventually(t, 10*time.Second, "the new host installs v1.2.0", func() bool { return late.version() == "v1.2.0" })
	if _, installs, _ := e.chk.counts(); installs != 1 {
		t.Errorf("installs = %d; want 1 (the new host, at once)", installs)
	}
	if p := e.reg.pollers(); len(p) != 1 {
		t.Errorf("hosts that polled the registry: %v; want exactly one", p)
	}
	if st := e.status(); len(st.Hosts) != 7 {
		t.Errorf("status lists %d hosts; want 7", len(st.Hosts))
	}
}

// TestRequestsAtRest measures what a member sends to etcd once the fleet is
// at rest: lease keep-alives only (the benchmark hook).
func TestRequestsAtRest(t *testing.T) {
	e := newEnv(t)
	agents := e.startAgents(3, Rollout{MaxParallel: "3"})
	e.reg.set("v1")
	eventually(t, 10*time.Second, "v1 rolled out", func() bool { return e.appStatus().Done == "v1" })
	eventually(t, 5*time.Second, "slots released", func() bool { return len(e.appStatus().Slots) == 0 })
	before := make([]int64, len(agents))
	for i, a := range agents {
		before[i], _ = a.m.opts.Counter.Requests()
	}
	start := time.Now()
	// The measurement window: two keep-alive periods (ttl/3 each).
	eventually(t, 5*time.Second, "two lease keep-alives sent", func() bool {
		return agents[0].m.opts.Counter.Snapshot()[KeepAlive] >= 2 && time.Since(start) > testTTL
	})
	for i, a := range agents {
		after, kinds := a.m.opts.Counter.Requests()
		t.Logf("%s: %d etcd requests beyond keep-alives in %s at rest; keep-alives %d", a.host, after-before[i], time.Since(start).Round(time.Millisecond), a.m.opts.Counter.Snapshot()[KeepAlive])
		if after != before[i] {
			t.Errorf("%s sent %d requests at rest (%v); want none beyond keep-alives", a.host, after-before[i], kinds)
		}
	}
}

// TestPollerFailover kills the poller without revoking its lease: another
// host polls within session_ttl and publishes in its own term.
func TestPollerFailover(t *testing.T) {
	e := newEnv(t)
	agents := e.startAgents(3, Rollout{MaxParallel: "3"})
	e.reg.set("v1")
	eventually(t, 10*time.Second, "v1 published", func() bool { _, ok := agents[1].h.Latest(); return ok })
	var poller *agent
	for _, a := range agents {
		if a.h.IsPoller() {
			poller = a
		}
	}
	if poller == nil {
		t.Fatal("no poller")
	}
	first, _ := poller.h.Latest()
	killed := time.Now()
	poller.m.abandon()
	var next *agent
	eventually(t, testTTL+2*time.Second, "another host polls", func() bool {
		for _, a := range agents {
			if a != poller && a.h.IsPoller() {
				next = a
				return true
			}
		}
		return false
	})
	took := time.Since(killed)
	t.Logf("new poller %s after %s (session_ttl %s)", next.host, took.Round(time.Millisecond), testTTL)
	if took > testTTL+time.Second {
		t.Errorf("takeover took %s; want within session_ttl %s", took, testTTL)
	}
	e.reg.set("v2")
	eventually(t, 10*time.Second, "v2 published by the new poller", func() bool {
		r, ok := next.h.Latest()
		return ok && r.Version == "v2" && r.Leader == next.host && r.Term > first.Term
	})
}

// TestOrphanedSlotFreed: a host that dies holding the only slot frees it
// within session_ttl.
func TestOrphanedSlotFreed(t *testing.T) {
	e := newEnv(t)
	r := Rollout{MaxParallel: "1"}
	a := e.join(e.config("a", nil)).App(e.app, r)
	b := e.join(e.config("b", nil)).App(e.app, r)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	eventually(t, 5*time.Second, "watches in sync", func() bool { return a.State().Synced && b.State().Synced })
	d, err := a.Gate(ctx, "v1")
	if err != nil || !d.Allowed {
		t.Fatalf("a: Gate = %+v, %v", d, err)
	}
	got := make(chan Decision, 1)
	go func() { d, _ := b.Gate(ctx, "v1"); got <- d }()
	eventually(t, 5*time.Second, "b waits for the slot", func() bool { return b.State().Phase == PhaseSlot })
	killed := time.Now()
	a.m.abandon()
	select {
	case d := <-got:
		if !d.Allowed {
			t.Fatalf("b: Gate = %+v", d)
		}
		t.Logf("slot freed %s after its holder died", time.Since(killed).Round(time.Millisecond))
		if time.Since(killed) > testTTL+time.Second {
			t.Errorf("slot freed after %s; want within session_ttl %s", time.Since(killed), testTTL)
		}
	case <-ctx.Done():
		t.Fatal("the dead host's slot was never freed")
	}
}

// TestCutConnection cuts one member's connection to etcd mid-deploy: it holds
// (deploys nothing new), finishes the deploy it holds a slot for, and records
// its outcome when it is back. A member with on_unavailable = local acts alone.
func TestCutConnection(t *testing.T) {
	e := newEnv(t)
	other := e.join(e.config("other", nil)).App(e.app, Rollout{})
	px := etcdtest.NewProxy(t, e.cl.Endpoints()...)
	cut := e.join(e.config("cut", nil, px.Endpoint())).App(e.app, Rollout{})
	lpx := etcdtest.NewProxy(t, e.cl.Endpoints()...)
	lcfg := e.config("alone", nil, lpx.Endpoint())
	lcfg.OnUnavailable = Local
	alone := e.join(lcfg).App(e.app, Rollout{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	eventually(t, 5*time.Second, "watches in sync", func() bool { return cut.State().Synced && other.State().Synced && alone.State().Synced })

	d, err := cut.Gate(ctx, "v1")
	if err != nil || !d.Allowed {
		t.Fatalf("Gate before the cut = %+v, %v", d, err)
	}
	px.Cut()
	lpx.Cut()
	eventually(t, testTTL+3*time.Second, "the cut member knows etcd is gone", func() bool { return !cut.State().Available })
	// The deploy under way finishes locally.
	if err := cut.ReportOutcome(ctx, "v1", true, ""); err != nil {
		t.Fatalf("ReportOutcome while cut: %v", err)
	}
	if err := d.Slot.Healthy(ctx); err != nil {
		t.Fatalf("Healthy while cut: %v", err)
	}
	d2, err := cut.Gate(ctx, "v2")
	if err != nil || d2.Allowed || d2.Phase != PhaseHold {
		t.Errorf("Gate while cut = %+v, %v; want hold", d2, err)
	}
	if s := cut.State(); s.Fleet != PhaseHold || s.Unavailable == "" {
		t.Errorf("state while cut = %+v; want hold with a reason", s)
	}
	eventually(t, testTTL+3*time.Second, "the local member knows etcd is gone", func() bool { return !alone.State().Available })
	if d, err := alone.Gate(ctx, "v2"); err != nil || !d.Allowed || d.Phase != PhaseLocal || !alone.IsPoller() {
		t.Errorf("local member while cut: Gate = %+v, %v, poller %v; want allowed alone", d, err, alone.IsPoller())
	}

	px.Restore()
	lpx.Restore()
	eventually(t, 15*time.Second, "the outcome recorded after the cut", func() bool {
		v := statusVersion(e, "cut")
		return v == "v1" && slices.Contains(outcomeHosts(e, "v1"), "cut")
	})
	// Back in the fleet, it deploys again under the rules.
	eventually(t, 10*time.Second, "the cut member in sync again", func() bool { return cut.State().Synced && cut.State().Available })
	if d, err := cut.Gate(ctx, "v2"); err != nil || !d.Allowed || d.Phase != PhaseRollout {
		t.Errorf("Gate after the cut = %+v, %v; want allowed", d, err)
	} else if err := d.Slot.Release(ctx); err != nil {
		t.Errorf("release: %v", err)
	}
}

func statusVersion(e *env, host string) string {
	for _, h := range e.status().Hosts {
		if h.Host == host {
			return h.Apps[e.app].Version
		}
	}
	return ""
}

func outcomeHosts(e *env, version string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := e.op.client.Get(ctx, e.op.keys.outcomes(e.app, version), clientv3.WithPrefix())
	if err != nil {
		return nil
	}
	var hosts []string
	for _, kv := range resp.Kvs {
		hosts = append(hosts, unesc(string(kv.Key[len(e.op.keys.outcomes(e.app, version)):])))
	}
	return hosts
}

// TestQuorumLoss stops two of three etcd members: every member holds; when
// they are back the fleet continues.
func TestQuorumLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("slow fault case (quorum loss and recovery); runs without -short")
	}
	e := newEnv(t)
	agents := e.startAgents(3, Rollout{Canary: "1", MaxParallel: "1"})
	e.reg.set("v1")
	eventually(t, 15*time.Second, "v1 rolled out", func() bool { return e.appStatus().Done == "v1" })
	e.cl.Stop(1)
	e.cl.Stop(2)
	eventually(t, testTTL+5*time.Second, "every member holds", func() bool {
		for _, a := range agents {
			if a.h.State().Available {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if d, err := agents[0].h.Gate(ctx, "v2"); err != nil || d.Allowed || d.Phase != PhaseHold {
		t.Errorf("Gate without quorum = %+v, %v; want hold", d, err)
	}
	e.cl.Restart(1, 2)
	eventually(t, 20*time.Second, "every member available again", func() bool {
		for _, a := range agents {
			if !a.h.State().Available {
				return false
			}
		}
		return true
	})
	e.reg.set("v2")
	eventually(t, 20*time.Second, "v2 rolled out after the outage", func() bool {
		for _, a := range agents {
			if a.version() != "v2" {
				return false
			}
		}
		return true
	})
}

// TestOperatorCommands: pause holds a rollout, resume lets it go, promote
// ends a bake, retry forgets a bad mark; status shows it all.
func TestOperatorCommands(t *testing.T) {
	e := newEnv(t)
	r := Rollout{Canary: "1", Bake: time.Hour, MaxParallel: "1"}
	canary := e.join(e.config("c", map[string]string{"role": "canary"})).App(e.app, r)
	other := e.join(e.config("o", nil)).App(e.app, r)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	eventually(t, 5*time.Second, "watches in sync", func() bool { return canary.State().Synced && other.State().Synced })
	e.reg.set("v1")
	poller := canary
	if other.IsPoller() {
		poller = other
	}
	eventually(t, 5*time.Second, "a poller", func() bool { return canary.IsPoller() || other.IsPoller() })
	if canary.IsPoller() {
		poller = canary
	}
	if err := poller.PublishRelease(ctx, e.reg.poll(poller.m.HostID())); err != nil {
		t.Fatalf("publish: %v", err)
	}

	if err := e.op.Pause(ctx, e.app); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "paused seen", func() bool { return canary.State().Fleet == PhasePaused })
	got := make(chan Decision, 1)
	go func() { d, _ := canary.Gate(ctx, "v1"); got <- d }()
	eventually(t, 5*time.Second, "the canary waits while paused", func() bool { return canary.State().Phase == PhasePaused })
	if err := e.op.Resume(ctx, e.app); err != nil {
		t.Fatal(err)
	}
	d := <-got
	if !d.Allowed || d.Phase != PhaseCanary {
		t.Fatalf("canary after resume: %+v", d)
	}
	if err := canary.ReportOutcome(ctx, "v1", true, ""); err != nil {
		t.Fatal(err)
	}
	if err := d.Slot.Healthy(ctx); err != nil {
		t.Fatal(err)
	}

	go func() { d, _ := other.Gate(ctx, "v1"); got <- d }()
	eventually(t, 5*time.Second, "the other host bakes", func() bool { return other.State().Phase == PhaseBake })
	if st := e.appStatus(); st.Phase != PhaseBake || !slices.Equal(st.Healthy, []string{"c"}) {
		t.Errorf("status during bake = %+v", st)
	}
	if v, err := e.op.Promote(ctx, e.app); err != nil || v != "v1" {
		t.Fatalf("promote = %q, %v", v, err)
	}
	if d := <-got; !d.Allowed || d.Phase != PhaseRollout {
		t.Fatalf("other after promote: %+v", d)
	} else {
		if st := e.appStatus(); len(st.Slots) != 1 || st.Slots[0].Host != "o" {
			t.Errorf("slot holders = %+v; want o", st.Slots)
		}
		_ = other.ReportOutcome(ctx, "v1", false, "crashed in its first minute")
		_ = d.Slot.Release(ctx)
	}
	eventually(t, 5*time.Second, "v1 bad after a failure", func() bool { return canary.IsBad("v1") })
	if d, err := canary.Gate(ctx, "v1"); err != nil || d.Allowed || d.Phase != PhaseStopped {
		t.Errorf("Gate of a bad version = %+v, %v", d, err)
	}
	if st := e.appStatus(); len(st.Bad) != 1 || st.Bad[0].Hosts["o"] != "crashed in its first minute" {
		t.Errorf("bad versions in status = %+v", st.Bad)
	}
	if err := e.op.Retry(ctx, e.app, "v1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "v1 no longer bad", func() bool { return !canary.IsBad("v1") && !other.IsBad("v1") })
	if st := e.appStatus(); len(st.Failed) != 0 {
		t.Errorf("failures left after retry: %v", st.Failed)
	}
}

// TestCloseLeavesNoGoroutines: Member.Close ends every goroutine the member
// and its apps started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	e := newEnv(t)
	m := e.join(e.config("h", nil))
	h := m.App(e.app, Rollout{})
	eventually(t, 5*time.Second, "in sync and polling", func() bool { return h.State().Synced && h.IsPoller() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	d, err := h.Gate(ctx, "v1")
	if err != nil || !d.Allowed {
		t.Fatalf("Gate = %+v, %v", d, err)
	}
	if err := e.op.Pause(ctx, e.app); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { _, err := h.Gate(ctx, "v2"); waiting <- err }()
	eventually(t, 5*time.Second, "a second Gate waits", func() bool { return h.State().Phase == PhasePaused })
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Errorf("Gate across Close = %v; want ErrClosed", err)
	}
	// The cluster, the checker and the operator keep their own goroutines;
	// look for the member's.
	eventually(t, 5*time.Second, "the member's goroutines end", func() bool {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "fleet.(*Member)") || strings.Contains(g, "fleet.(*AppHandle)") || strings.Contains(g, "concurrency.(*Election)") {
				return false
			}
		}
		return true
	})
}

// TestUnreachableAtStart: with no etcd at all, Join succeeds, the member
// holds and says why, and the password shows up nowhere.
func TestUnreachableAtStart(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	cfg := Fleet{HostID: "h", SessionTTL: testTTL, OnUnavailable: Hold,
		Etcd: Etcd{Endpoints: "http://127.0.0.1:1", Prefix: "/x", Username: "dewy", Password: "pw-never-shown"}}
	m, err := Join(t.Context(), cfg, Options{Logger: logger, OpTimeout: 200 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Join without etcd: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = m.Close(ctx)
	}()
	h := m.App("web", Rollout{})
	eventually(t, 15*time.Second, "a reason for being unavailable", func() bool { // authenticating waits up to 5s
		ok, why := m.Available()
		return !ok && why != "connecting"
	})
	d, err := h.Gate(t.Context(), "v1")
	if err != nil || d.Allowed || d.Phase != PhaseHold || !strings.Contains(d.Wait, "etcd unreachable") {
		t.Errorf("Gate = %+v, %v; want hold", d, err)
	}
	if h.IsPoller() {
		t.Error("a held member polls")
	}
	_, why := m.Available()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String()+why+d.Wait+fmt.Sprint(h.State()), "pw-never-shown") {
		t.Errorf("the password leaked: %s %s", logs.String(), why)
	}
	if !strings.Contains(logs.String(), "etcd unavailable") {
		t.Errorf("no log says etcd is unavailable: %s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestAuth runs a member as an etcd user limited to its environment's prefix,
// the way docs/fleet.md tells operators to; a wrong password keeps the member
// on hold and shows nowhere.
func TestAuth(t *testing.T) {
	cl := etcdtest.Start(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second) // bcrypt is slow under -race
	defer cancel()
	root, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	steps := []func() error{
		func() error { _, err := root.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := root.RoleAdd(ctx, "root"); return err }, // etcd makes no root role itself
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.UserAdd(ctx, "dewy", "dewy-pw"); return err },
		func() error { _, err := root.RoleAdd(ctx, "dewy-prod"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "dewy-prod", "/dewy/prod/", clientv3.GetPrefixRangeEnd("/dewy/prod/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx, "dewy", "dewy-prod"); return err },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
	if _, err := root.AuthEnable(ctx); err != nil {
		t.Fatalf("auth enable: %v", err)
	}
	cfg := Fleet{HostID: "h", SessionTTL: testTTL, OnUnavailable: Hold,
		Etcd: Etcd{Endpoints: NewEndpoints(cl.Endpoints()...), Prefix: "/dewy/prod", Username: "dewy", Password: "dewy-pw"}}
	m, err := Join(ctx, cfg, Options{OpTimeout: 5 * time.Second, MaxBackoff: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close(context.Background()) }()
	if err := m.WaitAvailable(ctx); err != nil {
		_, why := m.Available()
		t.Fatalf("member with a good password: %v (%s)", err, why)
	}
	h := m.App("web", Rollout{})
	eventually(t, 20*time.Second, "in sync and polling", func() bool { return h.State().Synced && h.IsPoller() })
	if d, err := h.Gate(ctx, "v1"); err != nil || !d.Allowed {
		t.Fatalf("Gate with auth = %+v, %v", d, err)
	}

	bad := cfg
	bad.HostID, bad.Etcd.Password = "h2", "wrong-pw-xyz"
	m2, err := Join(ctx, bad, Options{OpTimeout: time.Second, MaxBackoff: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m2.Close(context.Background()) }()
	eventually(t, 30*time.Second, "a wrong password is reported", func() bool {
		ok, why := m2.Available()
		return !ok && strings.Contains(why, "authentication failed")
	})
	if _, why := m2.Available(); strings.Contains(why, "wrong-pw-xyz") {
		t.Errorf("the reason shows the password: %s", why)
	}
}
