package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

const testTTL = 2 * time.Second

// env is one test's fleet: an etcd cluster, a fake registry and a checker.
type env struct {
	t      *testing.T
	cl     *etcdtest.Cluster // nil on a real etcd (newEnvOn)
	eps    []string
	prefix string
	app    string
	reg    *registry
	chk    *checker
	op     *Operator
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cl := etcdtest.Start(t, 3)
	e := newEnvOn(t, cl.Endpoints())
	e.cl = cl
	return e
}

// newEnvOn is an env on the etcd at endpoints.
func newEnvOn(t *testing.T, endpoints []string) *env {
	t.Helper()
	e := &env{t: t, eps: endpoints, prefix: "/test/" + strings.ReplaceAll(t.Name(), "/", "_"), app: "web", reg: &registry{polls: map[string]int{}}}
	op, err := NewOperator(Fleet{Etcd: Etcd{Endpoints: NewEndpoints(endpoints...), Prefix: e.prefix}, SessionTTL: testTTL}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Close() })
	e.op = op
	e.chk = startChecker(t, op.client, keys{e.prefix}, e.app)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := json.MarshalIndent(e.status(), "", "  ")
			t.Logf("fleet status at the failure:\n%s", b)
			buf := make([]byte, 1<<22)
			buf = buf[:runtime.Stack(buf, true)]
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "fleet.(*agent)") {
					t.Logf("%s", g)
				}
			}
		}
	})
	return e
}

func (e *env) config(host string, labels map[string]string, endpoints ...string) Fleet {
	if len(endpoints) == 0 {
		endpoints = e.eps
	}
	return Fleet{HostID: host, Labels: NewLabels(labels), SessionTTL: testTTL, OnUnavailable: Hold,
		Etcd: Etcd{Endpoints: NewEndpoints(endpoints...), Prefix: e.prefix}}
}

func (e *env) join(cfg Fleet) *Member {
	e.t.Helper()
	var logger *slog.Logger
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	m, err := Join(e.t.Context(), cfg, Options{Logger: logger, Counter: NewRequestCounter(), OpTimeout: time.Second, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		e.t.Fatalf("join %s: %v", cfg.HostID, err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(e.t.Context(), 15*time.Second)
	defer cancel()
	if err := m.WaitAvailable(ctx); err != nil {
		e.t.Fatalf("%s: etcd never available: %v", cfg.HostID, err)
	}
	return m
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			if testing.Verbose() {
				buf := make([]byte, 1<<22)
				buf = buf[:runtime.Stack(buf, true)]
				for _, g := range strings.Split(string(buf), "\n\n") {
					if strings.Contains(g, "fleet.(*agent)") {
						t.Logf("%s", g)
					}
				}
			}
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) status() Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := e.op.Status(ctx)
	if err != nil {
		return Status{}
	}
	return st
}

func (e *env) appStatus() AppStatus {
	for _, a := range e.status().Apps {
		if a.Name == e.app {
			return a
		}
	}
	return AppStatus{}
}

// registry is the fake registry: it counts polls by host.
type registry struct {
	mu    sync.Mutex
	rel   Release
	polls map[string]int
}

func (r *registry) set(version string) {
	r.mu.Lock()
	r.rel = Release{Version: version, Artifact: "web_linux_amd64.tar.gz", SHA256: fmt.Sprintf("%064x", len(version)), Published: time.Unix(1700000000, 0).UTC()}
	r.mu.Unlock()
}

func (r *registry) poll(host string) Release {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.polls[host]++
	return r.rel
}

func (r *registry) pollers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for h := range r.polls {
		out = append(out, h)
	}
	return out
}

// agent is the app loop of one host, shaped like agent/worker.go: poll when
// poller, otherwise follow the published release; gate; deploy; report.
type agent struct {
	host       string
	m          *Member
	h          *AppHandle
	reg        *registry
	deployTime time.Duration
	fail       func(host, version string) string // reason, or "" for success

	mu       sync.Mutex
	deployed string
	localBad map[string]bool
	gates    atomic.Int32
}

func (a *agent) run(ctx context.Context) {
	rel := a.h.WatchRelease()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if a.h.IsPoller() {
			if r := a.reg.poll(a.host); r.Version != "" {
				_ = a.h.PublishRelease(ctx, r)
			}
		}
		if r, ok := a.h.Latest(); ok {
			a.try(ctx, r.Version)
		}
		select {
		case <-ctx.Done():
			return
		case <-rel:
		case <-tick.C:
		}
	}
}

func (a *agent) version() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.deployed
}

func (a *agent) try(ctx context.Context, v string) {
	a.mu.Lock()
	skip := v == a.deployed || a.localBad[v]
	a.mu.Unlock()
	if skip || a.h.IsBad(v) {
		return
	}
	a.gates.Add(1)
	d, err := a.h.Gate(ctx, v)
	if err != nil || !d.Allowed {
		return
	}
	time.Sleep(a.deployTime) // the deploy itself
	reason := ""
	if a.fail != nil {
		reason = a.fail(a.host, v)
	}
	_ = a.h.ReportOutcome(ctx, v, reason == "", reason)
	a.mu.Lock()
	if reason == "" {
		a.deployed = v
	} else {
		a.localBad[v] = true
	}
	a.mu.Unlock()
	if reason == "" {
		_ = d.Slot.Healthy(ctx)
	} else {
		_ = d.Slot.Release(ctx)
	}
}

// rolledOut is true when every agent runs v and the fleet recorded it done.
func (e *env) rolledOut(agents []*agent, v string) bool {
	for _, a := range agents {
		if a.version() != v {
			return false
		}
	}
	return e.appStatus().Done == v
}

func (e *env) startAgent(m *Member, r Rollout) *agent {
	a := &agent{host: m.HostID(), m: m, h: m.App(e.app, r), reg: e.reg, deployTime: 40 * time.Millisecond, localBad: map[string]bool{}}
	testkit.Go(e.t, "agent "+a.host, func(ctx context.Context) error {
		a.run(ctx)
		return nil
	})
	return a
}

// startAgents starts n agents without labels, h0 to h<n-1>, each a member
// of its own that follows rollout r.
func (e *env) startAgents(n int, r Rollout) []*agent {
	var agents []*agent
	for i := range n {
		agents = append(agents, e.startAgent(e.join(e.config(fmt.Sprintf("h%d", i), nil)), r))
	}
	return agents
}

// checker watches every key of the fleet and records each broken rule.
type checker struct {
	t    *testing.T
	keys keys
	app  string

	mu         sync.Mutex
	violations []string
	kvs        map[string]*mvccpb.KeyValue // Follow's, read in process only
	healthyAt  map[string]time.Time
	state      map[string]HostApp // host -> last seen app state
	termLeader map[int64]string
	// lost: hosts whose record vanished (their session's lease expired)
	// while they deployed, and the version they were deploying. Such a host
	// finishes that deploy without its slot, as docs/fleet.md says; it is
	// counted in sessionsLost, not as a broken rule.
	lost         map[string]string
	sessionsLost int
	maxHolders   int
	deploys      int
	installs     int
	releases     int
}

// bakeTolerance absorbs the difference between when the checker and a host
// saw the canaries healthy.
const bakeTolerance = 150 * time.Millisecond

func startChecker(t *testing.T, client *clientv3.Client, k keys, app string) *checker {
	c := &checker{t: t, keys: k, app: app, healthyAt: map[string]time.Time{},
		state: map[string]HostApp{}, termLeader: map[int64]string{}, lost: map[string]string{}}
	// Registered before Follow, so it runs once the watch has stopped.
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, v := range c.violations {
			t.Errorf("checker: %s", v)
		}
		t.Logf("checker: %d deploys, %d installs, %d releases, at most %d slot holders deploying at once; %d sessions lost mid-deploy", c.deploys, c.installs, c.releases, c.maxHolders, c.sessionsLost)
	})
	etcdtest.Follow(t, client, k.prefix+"/", c.process)
	return c
}

func (c *checker) violate(format string, a ...any) {
	c.violations = append(c.violations, fmt.Sprintf(format, a...))
}

// process checks the fleet as it stands after revision rev.
func (c *checker) process(rev int64, kvs map[string]*mvccpb.KeyValue, evs []*clientv3.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kvs = kvs
	for _, ev := range evs {
		if ev.Type == clientv3.EventTypePut && string(ev.Kv.Key) == c.keys.release(c.app) {
			c.checkRelease(ev.Kv)
		}
	}
	c.check(rev)
}

// checkRelease: a release is published by the leader of the term it names.
func (c *checker) checkRelease(kv *mvccpb.KeyValue) {
	var r Release
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		c.violate("unreadable release: %v", err)
		return
	}
	c.releases++
	v := c.view(kv.ModRevision)
	if len(v.leaders) == 0 {
		c.violate("release %s published with no poller elected", r.Version)
		return
	}
	if l := v.leaders[0]; l.Rev != r.Term || l.Host != r.Leader {
		c.violate("release %s published by %s in term %d while the poller is %s in term %d", r.Version, r.Leader, r.Term, l.Host, l.Rev)
	}
	if prev, ok := c.termLeader[r.Term]; ok && prev != r.Leader {
		c.violate("two pollers in term %d: %s and %s", r.Term, prev, r.Leader)
	}
	c.termLeader[r.Term] = r.Leader
}

func (c *checker) view(rev int64) *appView {
	var list []*mvccpb.KeyValue
	for _, kv := range c.kvs {
		list = append(list, kv)
	}
	return buildView(c.keys, c.app, rev, list)
}

func (c *checker) check(rev int64) {
	v := c.view(rev)
	now := time.Now()
	for ver, r := range v.rollouts {
		if r.plan == nil || !c.healthyAt[ver].IsZero() {
			continue
		}
		if ok, _ := r.canariesHealthy(); ok {
			c.healthyAt[ver] = now
		}
	}
	holders, limit := 0, 0
	seen := map[string]bool{}
	for key, kv := range c.kvs {
		if !strings.HasPrefix(key, c.keys.hosts()) {
			continue
		}
		var rec HostRecord
		if json.Unmarshal(kv.Value, &rec) != nil {
			c.violate("unreadable host record %s", key)
			continue
		}
		a, ok := rec.Apps[c.app]
		if !ok {
			continue
		}
		seen[rec.Host] = true
		prev := c.state[rec.Host]
		c.state[rec.Host] = a
		fresh := a.Target != "" && (prev.Target != a.Target || prev.Phase != a.Phase)
		if target, ok := c.lost[rec.Host]; ok {
			if (a.Phase == PhaseDeploying || a.Phase == PhaseHealthy) && a.Target == target {
				continue // the deploy its lost session began; its slot went with the lease
			}
			delete(c.lost, rec.Host)
		}
		switch a.Phase {
		case PhaseDeploying, PhaseHealthy:
			holders++
			r := v.rollouts[a.Target]
			if r == nil || r.plan == nil {
				c.violate("rev %d: %s deploys %s which has no plan", rev, rec.Host, a.Target)
				continue
			}
			limit = max(limit, r.plan.MaxParallel)
			rank, has := v.slotRank(rec.Host)
			if !has || rank >= r.plan.MaxParallel {
				c.violate("rev %d: %s deploys %s without one of the %d slots (has key %v, rank %d)", rev, rec.Host, a.Target, r.plan.MaxParallel, has, rank)
			}
			if !fresh || a.Phase != PhaseDeploying {
				continue
			}
			c.deploys++
			if _, bad := v.bad[a.Target]; bad {
				c.violate("rev %d: %s deploys %s, bad for the fleet", rev, rec.Host, a.Target)
			}
			if r.plan.isCanary(rec.Host) || r.promoted {
				continue
			}
			if ok, waiting := r.canariesHealthy(); !ok {
				c.violate("rev %d: %s deploys %s before canaries %v are healthy", rev, rec.Host, a.Target, waiting)
			} else if a.Baked < r.plan.Bake {
				c.violate("rev %d: %s deploys %s after a bake of %s on its clock; bake is %s", rev, rec.Host, a.Target, a.Baked, r.plan.Bake)
			} else if baked := now.Sub(c.healthyAt[a.Target]); baked < r.plan.Bake-max(bakeTolerance, r.plan.Bake/2) {
				c.violate("rev %d: %s deploys %s %s after the checker saw the canaries healthy; bake is %s", rev, rec.Host, a.Target, baked, r.plan.Bake)
			}
		case PhaseInstall:
			if !fresh {
				continue
			}
			c.installs++
			if _, bad := v.bad[a.Target]; bad {
				c.violate("rev %d: %s installs %s, bad for the fleet", rev, rec.Host, a.Target)
			}
			if v.done != a.Target {
				c.violate("rev %d: %s installs %s at once, but the fleet's rolled-out version is %q", rev, rec.Host, a.Target, v.done)
			}
		}
	}
	for h, a := range c.state {
		if seen[h] {
			continue
		}
		if a.Phase == PhaseDeploying || a.Phase == PhaseHealthy {
			c.lost[h] = a.Target
			c.sessionsLost++
			c.t.Logf("checker: rev %d: %s's session expired while it deployed %s", rev, h, a.Target)
		}
		delete(c.state, h)
	}
	if holders > limit && limit > 0 {
		c.violate("rev %d: %d hosts deploying; max_parallel %d", rev, holders, limit)
	}
	c.maxHolders = max(c.maxHolders, holders)
}

func (c *checker) counts() (deploys, installs, maxHolders int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deploys, c.installs, c.maxHolders
}
