package fleetagents

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/fleet"
)

// The first install of a new host, and the faults of issue 12, with real agents on a 3-member embedded etcd
// cluster: the poller dies, a slot holder dies mid-deploy, one host's etcd
// connection is cut, the cluster loses its quorum. The fleet checker fails
// each test on any broken rollout rule besides what the test asserts.

// fleetStatus reads the app's fleet-wide state.
func (w *fleetWorld) fleetStatus(op *fleet.Operator) fleet.AppStatus {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := op.Status(ctx)
	if err != nil {
		w.t.Fatalf("fleet status: %v", err)
	}
	for _, a := range st.Apps {
		if a.Name == "site" {
			return a
		}
	}
	return fleet.AppStatus{}
}

// startBehindProxies runs n hosts, each reaching etcd through its own proxy.
func (w *fleetWorld) startBehindProxies(n int, rollout, appExtra string) {
	w.t.Helper()
	for range n {
		w.add(rollout, appExtra, w.proxy())
	}
}

// poller returns the live host that polls for the fleet, or -1.
func (w *fleetWorld) poller() int {
	for i := range w.agents {
		if w.hosts[i] != nil {
			if f := w.status(i).Fleet; f != nil && f.Poller {
				return i
			}
		}
	}
	return -1
}

// TestFleetPollerKilled kills the host that polls the registry (its etcd
// connection goes first, so nothing revokes its lease): another host polls
// within session_ttl, publishes the next release, and its rollout reaches
// every live host.
func TestFleetPollerKilled(t *testing.T) {
	w := newFleetWorld(t, "four agents; about 15s")
	op := w.operator()
	const rollout = `canary = 1
    max_parallel = 2`
	w.startBehindProxies(4, rollout, "")
	w.eventually(30*time.Second, "every host runs v1.0.0", w.all(runs("v1.0.0")))
	w.eventually(10*time.Second, "one host polls", func() bool { return w.poller() >= 0 })
	dead := w.poller()
	deadName := fmt.Sprintf("h%d", dead)
	if p := w.fleetStatus(op).Poller; p != deadName {
		t.Fatalf("the election's leader is %q, the agents say %s", p, deadName)
	}

	killed := time.Now()
	w.kill(dead)
	w.eventually(15*time.Second, "another host polls", func() bool {
		p := w.poller()
		return p >= 0 && p != dead && w.fleetStatus(op).Poller == fmt.Sprintf("h%d", p)
	})
	// The lease is 2s; etcd checks expiry every 500ms and the agents see
	// the new leader through their watch.
	if took := time.Since(killed); took > 2*time.Second+3*time.Second {
		t.Errorf("the next poller took %s, want about session_ttl (2s)", took)
	}
	w.publish("v1.1.0", site("v1.1.0"))
	w.eventually(30*time.Second, "every live host runs v1.1.0", w.all(runs("v1.1.0")))
	if d := w.chk.deployersOf("v1.1.0"); len(d) != 3 || slices.Contains(d, deadName) {
		t.Errorf("deployers of v1.1.0 = %v, want the three live hosts", d)
	}
	a := w.fleetStatus(op)
	if a.Release == nil || a.Release.Version != "v1.1.0" || a.Release.Leader == deadName {
		t.Errorf("published release %+v, want v1.1.0 by a live host", a.Release)
	}
}

// TestFleetOrphanedSlot kills a host while it holds the only deploy slot
// (its before_deploy hook hangs): the slot key outlives it until its lease
// expires, nobody else deploys meanwhile, and then the next host in line
// takes the slot and the rollout reaches every live host.
func TestFleetOrphanedSlot(t *testing.T) {
	w := newFleetWorld(t, "four agents; about 15s")
	op := w.operator()
	block := func(host string) string { return filepath.Join(w.dir, "block-"+host) }
	const rollout = `max_parallel = 1`
	for range 4 {
		i := len(w.hosts)
		w.add(rollout, fmt.Sprintf(`hooks {
    before_deploy = "while [ -e %s ]; do sleep 0.05; done"
  }`, block(fmt.Sprintf("h%d", i))), w.proxy())
	}
	w.eventually(30*time.Second, "every host runs v1.0.0", w.all(runs("v1.0.0")))
	for i := range 4 {
		if err := os.WriteFile(block(fmt.Sprintf("h%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	w.publish("v1.1.0", site("v1.1.0"))
	var holder string
	w.eventually(30*time.Second, "a host holds the slot and deploys", func() bool {
		a := w.fleetStatus(op)
		if len(a.Slots) != 1 || a.Slots[0].Version != "v1.1.0" {
			return false
		}
		holder = a.Slots[0].Host
		return slices.Equal(w.chk.deployersOf("v1.1.0"), []string{holder})
	})
	var dead int
	fmt.Sscanf(holder, "h%d", &dead)
	w.kill(dead)
	if a := w.fleetStatus(op); len(a.Slots) != 1 || a.Slots[0].Host != holder {
		t.Fatalf("right after the kill the slot is %+v, want still %s's (no one revoked its lease)", a.Slots, holder)
	}
	for i := range 4 {
		os.Remove(block(fmt.Sprintf("h%d", i)))
	}
	w.eventually(15*time.Second, "the orphaned slot is freed", func() bool {
		for _, s := range append(w.fleetStatus(op).Slots, w.fleetStatus(op).Queued...) {
			if s.Host == holder {
				return false
			}
		}
		return true
	})
	w.eventually(30*time.Second, "every live host runs v1.1.0", w.all(runs("v1.1.0")))
	if d := w.chk.deployersOf("v1.1.0"); len(d) != 4 || d[0] != holder {
		t.Errorf("deployers of v1.1.0 = %v, want %s first, then the three others", d, holder)
	}
}

// TestFleetCutConnection cuts one host's etcd connection: it keeps running
// and serving v1.0.0, holds (its status says so) and deploys nothing while
// v1.1.0 rolls out on the others; when the connection is back it takes a
// slot like any host and gets v1.1.0.
func TestFleetCutConnection(t *testing.T) {
	w := newFleetWorld(t, "three agents; about 15s")
	const rollout = `canary = 1
    max_parallel = 1`
	w.start(2, rollout)
	p := w.proxy()
	cut := w.add(rollout, "", p)
	w.eventually(30*time.Second, "every host runs v1.0.0", w.all(runs("v1.0.0")))

	p.Cut()
	w.eventually(15*time.Second, "the cut host holds", func() bool {
		f := w.status(cut).Fleet
		return f != nil && !f.Available && f.Phase == string(fleet.PhaseHold)
	})
	w.publish("v1.1.0", site("v1.1.0"))
	published := time.Now()
	w.eventually(30*time.Second, "the others run v1.1.0", func() bool {
		return w.status(0).Deployed == "v1.1.0" && w.status(1).Deployed == "v1.1.0"
	})
	// The cut host has polled since v1.1.0 was in the registry, and still
	// holds with v1.0.0.
	w.eventually(10*time.Second, "the cut host polls again", func() bool {
		return w.status(cut).LastCheck.After(published.Add(time.Second))
	})
	s := w.status(cut)
	if s.Deployed != "v1.0.0" || s.Fleet.Available || s.Fleet.Phase != string(fleet.PhaseHold) {
		t.Errorf("cut host: deployed %s, fleet %+v; want v1.0.0, holding", s.Deployed, s.Fleet)
	}
	if got := w.serves(cut); got != "v1.0.0\n" {
		t.Errorf("the cut host serves %q, want v1.0.0", got)
	}
	if d := w.chk.deployersOf("v1.1.0"); slices.Contains(d, fmt.Sprintf("h%d", cut)) {
		t.Errorf("deployers of v1.1.0 = %v: the cut host deployed", d)
	}

	p.Restore()
	w.eventually(30*time.Second, "the cut host is back and runs v1.1.0", func() bool {
		s := w.status(cut)
		return s.Deployed == "v1.1.0" && s.Fleet.Available
	})
	if d := w.chk.deployersOf("v1.1.0"); len(d) != 3 || d[2] != fmt.Sprintf("h%d", cut) {
		t.Errorf("deployers of v1.1.0 = %v, want the cut host last, through a slot", d)
	}
	if got := w.serves(cut); got != "v1.1.0\n" {
		t.Errorf("the host serves %q after reconnecting, want v1.1.0", got)
	}
}

// TestFleetQuorumLoss stops two of the three etcd members: every agent
// keeps running and serving v1.0.0, holds, and deploys nothing although
// v1.1.0 is in the registry; when the members are back the fleet rolls
// v1.1.0 out.
func TestFleetQuorumLoss(t *testing.T) {
	w := newFleetWorld(t, "three agents; about 20s")
	const rollout = `canary = 1
    max_parallel = 1`
	w.start(3, rollout)
	w.eventually(30*time.Second, "every host runs v1.0.0", w.all(runs("v1.0.0")))

	w.cl.Stop(1)
	w.cl.Stop(2)
	w.eventually(20*time.Second, "every host holds", w.all(func(s agent.Status) bool {
		return s.Fleet != nil && !s.Fleet.Available && s.Fleet.Phase == string(fleet.PhaseHold)
	}))
	w.publish("v1.1.0", site("v1.1.0"))
	published := time.Now()
	w.eventually(10*time.Second, "every host polls since v1.1.0 is out", w.all(func(s agent.Status) bool {
		return s.LastCheck.After(published.Add(time.Second))
	}))
	for i := range w.agents {
		s := w.status(i)
		if s.Deployed != "v1.0.0" || s.Fleet.Available {
			t.Errorf("h%d without quorum: deployed %s, fleet %+v; want v1.0.0, holding", i, s.Deployed, s.Fleet)
		}
		if got := w.serves(i); got != "v1.0.0\n" {
			t.Errorf("h%d serves %q without quorum, want v1.0.0", i, got)
		}
	}
	if d := w.chk.deployersOf("v1.1.0"); len(d) != 0 {
		t.Errorf("deployers of v1.1.0 without quorum = %v", d)
	}

	w.cl.Restart(1, 2)
	w.eventually(45*time.Second, "every host runs v1.1.0 with the quorum back", w.all(func(s agent.Status) bool {
		return s.Deployed == "v1.1.0" && s.Fleet.Available
	}))
	if d := w.chk.deployersOf("v1.1.0"); len(d) != 3 {
		t.Errorf("deployers of v1.1.0 = %v, want all three", d)
	}
}

// operator returns an operator on the world's etcd, closed when the test
// ends.
func (w *fleetWorld) operator() *fleet.Operator {
	w.t.Helper()
	cfg := fleet.Fleet{Etcd: fleet.Etcd{Endpoints: fleet.NewEndpoints(w.cl.Endpoints()...), Prefix: w.prefix}, SessionTTL: 2 * time.Second}
	op, err := fleet.NewOperator(cfg, nil, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { op.Close() })
	return op
}

// promote ends the bake of the published release, which must be v.
func (w *fleetWorld) promote(op *fleet.Operator, v string) {
	w.t.Helper()
	w.eventually(20*time.Second, v+" published", w.all(func(s agent.Status) bool { return s.Fleet != nil && s.Fleet.Release == v }))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := op.Promote(ctx, "site")
	if err != nil || got != v {
		w.t.Fatalf("promote = %q, %v; want %s", got, err, v)
	}
}

// serves returns what host i's app serves (the assets runner's current
// release).
func (w *fleetWorld) serves(i int) string {
	b, err := os.ReadFile(filepath.Join(w.dir, fmt.Sprintf("h%d", i), "apps", "site", "current", "index.html"))
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

func runs(v string) func(agent.Status) bool {
	return func(s agent.Status) bool { return s.Deployed == v }
}

// TestFleetNewHostInstallsRolledOutVersion: while v1.1.0 bakes after its
// canary, a host that joins with nothing deployed, and one that restarts
// with its state gone, install the fleet's last rolled-out version v1.0.0 at
// once (neither jumping ahead to v1.1.0 nor waiting with nothing), then wait
// in the bake like everyone else and get v1.1.0 when it is promoted.
func TestFleetNewHostInstallsRolledOutVersion(t *testing.T) {
	w := newFleetWorld(t, "four agents; about 15s")
	op := w.operator()
	const rollout = `canary = 1
    bake = "1h"
    max_parallel = 1`
	w.start(3, rollout)
	w.promote(op, "v1.0.0") // the first rollout needs no hour of bake
	w.eventually(30*time.Second, "v1.0.0 rolled out", w.all(func(s agent.Status) bool {
		return s.Deployed == "v1.0.0" && s.Fleet.Rollout == string(fleet.PhaseDone)
	}))

	w.publish("v1.1.0", site("v1.1.0"))
	w.eventually(30*time.Second, "the canary runs v1.1.0 and the others bake", func() bool {
		return w.status(0).Deployed == "v1.1.0" && w.status(1).Fleet.Phase == string(fleet.PhaseBake) &&
			w.status(2).Fleet.Phase == string(fleet.PhaseBake)
	})

	// A new host: nothing deployed, v1.1.0 published and baking.
	h3 := w.add(rollout, "", nil)
	w.eventually(30*time.Second, "the new host installs v1.0.0", func() bool { return w.status(h3).Deployed == "v1.0.0" })
	if got := w.serves(h3); got != "v1.0.0\n" {
		t.Errorf("the new host serves %q, want v1.0.0", got)
	}
	// Then it joins the rollout of v1.1.0 where the fleet is: in the bake.
	w.eventually(20*time.Second, "the new host waits in the bake", func() bool {
		s := w.status(h3)
		return s.Fleet.Phase == string(fleet.PhaseBake) && s.Fleet.Release == "v1.1.0"
	})

	// A host that restarts with its state gone (a reinstalled machine).
	w.stop(w.hosts[2])
	if err := os.RemoveAll(filepath.Join(w.dir, "h2")); err != nil {
		t.Fatal(err)
	}
	w.run(2, rollout, "", nil)
	w.eventually(30*time.Second, "the restarted host installs v1.0.0", func() bool { return w.status(2).Deployed == "v1.0.0" })
	if got := w.serves(2); got != "v1.0.0\n" {
		t.Errorf("the restarted host serves %q, want v1.0.0", got)
	}
	if d := w.chk.deployersOf("v1.1.0"); !slices.Equal(d, []string{"h0"}) {
		t.Errorf("deployers of v1.1.0 during the bake = %v, want the canary h0 only", d)
	}

	w.promote(op, "v1.1.0")
	w.eventually(30*time.Second, "every host runs v1.1.0", w.all(runs("v1.1.0")))
	if d := w.chk.deployersOf("v1.1.0"); len(d) != 4 {
		t.Errorf("deployers of v1.1.0 = %v, want all four", d)
	}
}
