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
	if testing.Short() {
		t.Skip("starts an etcd cluster and four agents; about 15s")
	}
	w := newFleetWorld(t)
	op := w.operator()
	const rollout = `canary = 1
    bake = "1h"
    max_parallel = 1`
	w.publish("v1.0.0", site("v1.0.0"))
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
