package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func TestDeployQueueBoundAndOrder(t *testing.T) {
	t.Parallel()
	q := newDeployQueue(2)
	ctx := t.Context()
	r1, err := q.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := q.acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 3)
	// Each waiter holds its slot until the test lets it go, so the order of
	// got is the order of admission alone.
	done := map[string]chan struct{}{"c": make(chan struct{}), "d": make(chan struct{}), "e": make(chan struct{})}
	for _, app := range []string{"c", "d", "e"} {
		go func() {
			rel, err := q.acquire(ctx, app)
			if err != nil {
				got <- "error " + err.Error()
				return
			}
			got <- app
			<-done[app]
			rel()
		}()
		// Arrival order is the order the queue must keep.
		testkit.Eventually(t, 5*time.Second, app+" queued", func() bool { return q.position(app) > 0 })
	}
	if p := q.position("e"); p != 3 {
		t.Errorf("position of e = %d, want 3", p)
	}
	if inFlight, waiting := q.counts(); inFlight != 2 || waiting != 3 {
		t.Errorf("counts = %d in flight, %d waiting; want 2, 3", inFlight, waiting)
	}
	r1()
	r1() // a second release is a no-op
	if first := <-got; first != "c" {
		t.Errorf("first admitted = %s, want c", first)
	}
	r2()
	var order []string
	order = append(order, <-got)
	close(done["c"])
	order = append(order, <-got)
	if fmt.Sprint(order) != "[d e]" {
		t.Errorf("admitted %v after c, want [d e]", order)
	}
	close(done["d"])
	close(done["e"])
	testkit.Eventually(t, 5*time.Second, "queue empty", func() bool {
		inFlight, waiting := q.counts()
		return inFlight == 0 && waiting == 0
	})
}

func TestDeployQueueCancelledWaiterLeaves(t *testing.T) {
	t.Parallel()
	q := newDeployQueue(1)
	rel, err := q.acquire(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := q.acquire(ctx, "b"); done <- err }()
	testkit.Eventually(t, 5*time.Second, "b queued", func() bool { return q.position("b") == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("acquire after cancel succeeded")
	}
	if q.position("b") != 0 {
		t.Error("cancelled waiter still queued")
	}
	rel()
	if inFlight, waiting := q.counts(); inFlight != 0 || waiting != 0 {
		t.Errorf("counts = %d, %d; want 0, 0", inFlight, waiting)
	}
	q.setSlots(0)
	if _, err := q.acquire(t.Context(), "c"); err != nil {
		t.Fatalf("a queue set to 0 slots still admits one: %v", err)
	}
}

// TestMaxParallelDeploysQueuesApps: with max_parallel_deploys = 1, a second
// app waits while the first one's deploy is held in its before_deploy hook;
// status shows it queued at position 1 and /metrics counts it; it deploys
// once the first is done.
func TestMaxParallelDeploysQueuesApps(t *testing.T) {
	e := newEnv(t)
	gate := filepath.Join(e.dir, "gate")
	hook := fmt.Sprintf(`while [ ! -e %s ]; do sleep 0.05; done`, gate)
	var b strings.Builder
	fmt.Fprintf(&b, "agent {\n  state_dir = %q\n  admin = \"\"\n  max_parallel_deploys = 1\n}\n", e.state)
	for _, app := range []string{"one", "two"} {
		fmt.Fprintf(&b, "app %q {\n  registry = \"file://%s\"\n  artifact = \"site.tar.gz\"\n  interval = \"1h\"\n  runner \"assets\" {}\n  hooks {\n    before_deploy = %q\n  }\n}\n", app, e.reg, hook)
	}
	e.write(b.String())
	a := e.start(Options{})
	var queued Status
	waitFor(t, "one app deploying and the other queued", func() bool {
		for _, s := range a.Statuses() {
			if s.Phase == PhaseQueued {
				queued = s
			}
		}
		return queued.Queued == 1
	})
	if !strings.Contains(queued.Detail, "#1 in the deploy queue") {
		t.Errorf("queued app's detail = %q", queued.Detail)
	}
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if n := mf.GetName(); n == "dewy_deploys_in_flight" || n == "dewy_deploys_queued" {
			got[n] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if got["dewy_deploys_in_flight"] != 1 || got["dewy_deploys_queued"] != 1 {
		t.Errorf("queue metrics = %v, want 1 in flight and 1 queued", got)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both apps deployed", func() bool { return deployed(a, "one")() && deployed(a, "two")() })
	for _, s := range a.Statuses() {
		if s.Queued != 0 || s.Phase == PhaseQueued {
			t.Errorf("%s still queued after its deploy: %+v", s.Name, s)
		}
	}
}
