// Package fleetagents tests many agents (the real agent code, one goroutine
// each) in one fleet on an embedded etcd cluster. It is a package of its own
// because the embedded cluster's peer connections outlive it for a moment,
// which the agent package's leak check would count.
package fleetagents

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// fleetWorld is many agents (the real agent code, one goroutine each) on
// one file:// registry and one embedded 3-member etcd cluster.
type fleetWorld struct {
	t      *testing.T
	dir    string
	reg    string
	cl     *etcdtest.Cluster
	prefix string
	agents []*agent.Agent // by host number; the last agent of a killed host stays
	hosts  []*fleetHost   // nil for a killed host
	chk    *fleetChecker
}

// newFleetWorld returns a fleet world whose registry holds v1.0.0. It starts
// an etcd cluster and then agents (what says how many and for how long), so
// under -short it skips the test instead.
func newFleetWorld(t *testing.T, what string) *fleetWorld {
	t.Helper()
	testkit.Slow(t, "starts an etcd cluster and "+what)
	dir := t.TempDir()
	w := &fleetWorld{t: t, dir: dir, reg: filepath.Join(dir, "registry"), cl: etcdtest.Start(t, 3), prefix: "/test/" + t.Name()}
	w.chk = startFleetChecker(t, w.cl.Endpoints(), w.prefix, "site")
	w.publish("v1.0.0", site("v1.0.0"))
	return w
}

func (w *fleetWorld) publish(v string, artifact []byte) {
	w.t.Helper()
	d := filepath.Join(w.reg, v)
	if err := os.MkdirAll(d, 0o755); err != nil {
		w.t.Fatal(err)
	}
	// Written under a hidden name and renamed, as publishers do.
	tmp := filepath.Join(d, ".site.tar.gz")
	if err := os.WriteFile(tmp, artifact, 0o644); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d, "site.tar.gz")); err != nil {
		w.t.Fatal(err)
	}
}

// start runs n agents; host h0 is labelled role = canary.
func (w *fleetWorld) start(n int, rollout string) {
	w.t.Helper()
	for range n {
		w.add(rollout, "", nil)
	}
}

// fleetHost is one running agent of the world.
type fleetHost struct {
	name string
	a    *agent.Agent
	stop func() error // cancels Run and waits for it (testkit.Go)
	// proxy is the host's own way to etcd, when it was started behind one
	// (so a test can cut it).
	proxy *etcdtest.Proxy
}

// add starts the next host (h0 is labelled role = canary), with extra
// lines in its app block (hooks). With a proxy the host reaches etcd only
// through it.
func (w *fleetWorld) add(rollout, appExtra string, proxy *etcdtest.Proxy) int {
	w.t.Helper()
	i := len(w.hosts)
	w.hosts = append(w.hosts, nil)
	w.agents = append(w.agents, nil)
	w.run(i, rollout, appExtra, proxy)
	return i
}

// run starts host i's agent (again, after kill, with the same state dir).
func (w *fleetWorld) run(i int, rollout, appExtra string, proxy *etcdtest.Proxy) {
	w.t.Helper()
	host := fmt.Sprintf("h%d", i)
	labels := `zone = "a"`
	if i == 0 {
		labels = `role = "canary"`
	}
	eps := w.cl.Endpoints()
	if proxy != nil {
		eps = []string{proxy.Endpoint()}
	}
	path := filepath.Join(w.dir, host+".hcl")
	if err := os.WriteFile(path, []byte(testkit.FleetHost{
		StateDir: filepath.Join(w.dir, host), HostID: host, Labels: labels, Endpoints: eps,
		Prefix: w.prefix, Registry: w.reg, Rollout: rollout, AppExtra: appExtra,
	}.Config()), 0o644); err != nil {
		w.t.Fatal(err)
	}
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		w.t.Fatal(diags)
	}
	a := agent.New(cfg, agent.Options{Logger: testkit.Logger(w.t, slog.LevelInfo).With("host", host)})
	h := &fleetHost{name: host, a: a, stop: testkit.Go(w.t, "Run "+host, a.Run), proxy: proxy}
	w.hosts[i], w.agents[i] = h, a
}

// stop stops h's agent and waits until Run returned.
func (w *fleetWorld) stop(h *fleetHost) {
	w.t.Helper()
	if err := h.stop(); err != nil {
		w.t.Errorf("Run %s: %v", h.name, err)
	}
}

// kill stops host i as a crash would, for the fleet: its etcd connection is
// cut first, so its lease is not revoked and its keys (poll, slot) live
// until session_ttl passes. The host must have been started behind a proxy.
// kill does not wait for the agent's end (its try to revoke the lease takes
// a while to give up); the test's cleanup does.
func (w *fleetWorld) kill(i int) {
	w.t.Helper()
	h := w.hosts[i]
	if h.proxy == nil {
		w.t.Fatalf("%s has no proxy to cut", h.name)
	}
	h.proxy.Cut()
	go h.stop() //nolint:errcheck // a killed host's end says nothing
	w.hosts[i] = nil
}

// proxy returns a new proxy to the cluster's members.
func (w *fleetWorld) proxy() *etcdtest.Proxy { return etcdtest.NewProxy(w.t, w.cl.Endpoints()...) }

// status returns host i's status of the app.
func (w *fleetWorld) status(i int) agent.Status {
	for _, s := range w.agents[i].Statuses() {
		if s.Name == "site" {
			return s
		}
	}
	return agent.Status{}
}

// all is true when cond holds on every live host.
func (w *fleetWorld) all(cond func(agent.Status) bool) func() bool {
	return func() bool {
		for i := range w.agents {
			if w.hosts[i] != nil && !cond(w.status(i)) {
				return false
			}
		}
		return true
	}
}

func (w *fleetWorld) describe() string {
	var b strings.Builder
	for i := range w.agents {
		s := w.status(i)
		fmt.Fprintf(&b, "h%d: deployed=%s state=%s err=%q fleet=%+v\n", i, s.Deployed, s.State, s.LastError, s.Fleet)
	}
	return b.String()
}

func (w *fleetWorld) eventually(d time.Duration, what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s:\n%s", what, w.describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleetRolloutGoodThenBad runs six agents: a good release rolls out
// canary, bake, then waves of max_parallel; a broken release fails on the
// canary, becomes bad for the fleet and reaches nobody else. The checker
// fails the test on any broken rule, and exactly one host polls the
// registry.
func TestFleetRolloutGoodThenBad(t *testing.T) {
	w := newFleetWorld(t, "six agents; about 15s")
	w.start(6, `canary = 1
    bake = "1s"
    max_parallel = 2
    min_healthy_time = "200ms"`)

	w.eventually(30*time.Second, "every host runs v1.0.0", w.all(func(s agent.Status) bool { return s.Deployed == "v1.0.0" }))
	pollers := 0
	for i := range w.agents {
		if f := w.status(i).Fleet; f != nil && f.Poller {
			pollers++
		}
	}
	if pollers != 1 {
		t.Errorf("%d hosts poll the registry, want 1:\n%s", pollers, w.describe())
	}

	w.publish("v1.1.0", site("v1.1.0"))
	w.eventually(30*time.Second, "every host runs v1.1.0", w.all(func(s agent.Status) bool { return s.Deployed == "v1.1.0" }))
	if d := w.chk.deployersOf("v1.1.0"); len(d) != 6 || d[0] != "h0" {
		t.Errorf("deployers of v1.1.0 = %v, want the canary h0 first and all six", d)
	}
	for i := range w.agents {
		body, err := os.ReadFile(filepath.Join(w.dir, fmt.Sprintf("h%d", i), "apps", "site", "current", "index.html"))
		if err != nil || string(body) != "v1.1.0\n" {
			t.Errorf("h%d serves %q (%v)", i, body, err)
		}
	}

	// A release whose archive escapes its folder: the canary refuses it.
	w.publish("v1.2.0", testkit.TarGz(map[string]string{"../../../../evil.html": "owned"}))
	w.eventually(30*time.Second, "v1.2.0 bad for the fleet on every host", w.all(func(s agent.Status) bool {
		return s.Fleet != nil && slices.Contains(s.Fleet.Bad, "v1.2.0")
	}))
	if d := w.chk.deployersOf("v1.2.0"); !slices.Equal(d, []string{"h0"}) {
		t.Errorf("deployers of v1.2.0 = %v, want the canary h0 only", d)
	}
	for i := range w.agents {
		if s := w.status(i); s.Deployed != "v1.1.0" {
			t.Errorf("h%d runs %s, want v1.1.0", i, s.Deployed)
		}
	}
	w.eventually(10*time.Second, "the rollout of v1.2.0 shows stopped", w.all(func(s agent.Status) bool {
		return s.Fleet.Rollout == string(fleet.PhaseStopped)
	}))
}

// site is a release's artifact: a tarball serving the version.
func site(v string) []byte { return testkit.TarGz(map[string]string{"index.html": v + "\n"}) }

// TestFleetHoldWhileEtcdUnreachable starts an agent whose etcd never
// answers: with on_unavailable = hold it deploys nothing and its status says
// it holds, and why.
func TestFleetHoldWhileEtcdUnreachable(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	reg := filepath.Join(dir, "registry")
	os.MkdirAll(filepath.Join(reg, "v1.0.0"), 0o755)
	os.WriteFile(filepath.Join(reg, "v1.0.0", "site.tar.gz"), site("v1.0.0"), 0o644)
	path := filepath.Join(dir, "dewy.hcl")
	os.WriteFile(path, []byte(fmt.Sprintf(`agent {
  state_dir = %q
  admin = ""
}
fleet {
  host_id = "lonely"
  session_ttl = "2s"
  etcd { endpoints = [%q] }
}
app "site" {
  registry = "file://%s"
  artifact = "site.tar.gz"
  interval = "1s"
  runner "assets" {}
}
`, filepath.Join(dir, "state"), dead, reg)), 0o644)
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := agent.New(cfg, agent.Options{Logger: testkit.Logger(t, slog.LevelInfo)})
	testkit.Go(t, "Run", a.Run)
	var s agent.Status
	testkit.Eventually(t, 20*time.Second, "status says hold", func() bool {
		st := a.Statuses()
		if len(st) != 1 || st[0].Fleet == nil {
			return false
		}
		s = st[0]
		return !s.Fleet.Available && s.Fleet.Phase == string(fleet.PhaseHold) && strings.Contains(s.Fleet.Wait, "etcd unreachable") && s.LastCheck.After(time.Time{})
	})
	if s.Deployed != "" {
		t.Errorf("deployed %s while etcd was unreachable under hold", s.Deployed)
	}
}
