package agent

import (
	"context"
	"fmt"
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
	for _, app := range []string{"c", "d", "e"} {
		go func() {
			rel, err := q.acquire(ctx, app)
			if err != nil {
				got <- "error " + err.Error()
				return
			}
			got <- app
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
	for range 2 {
		order = append(order, <-got)
	}
	if fmt.Sprint(order) != "[d e]" {
		t.Errorf("admitted %v after c, want [d e]", order)
	}
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
