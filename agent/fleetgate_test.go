package agent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/fleet"
)

// waitingGater never lets a host deploy: Gate waits until its context ends.
type waitingGater struct{ entered chan struct{} }

func (g waitingGater) Gate(ctx context.Context, _ string) (fleet.Decision, error) {
	close(g.entered)
	<-ctx.Done()
	return fleet.Decision{}, ctx.Err()
}

// TestFleetGateServesRetry: a host waiting in the fleet's gate for a slot
// leaves it when an admin retry is asked for, and the request is still there
// for the loop (which forgets bad versions and polls), instead of waiting
// for the release to change.
func TestFleetGateServesRetry(t *testing.T) {
	g := waitingGater{entered: make(chan struct{})}
	w := &worker{
		app:    config.App{Name: "api", Interval: time.Hour},
		fleet:  &fleetApp{gater: g},
		clock:  wallClock{now: time.Now},
		retry:  make(chan struct{}, 1),
		logger: slog.New(slog.DiscardHandler),
	}
	type result struct {
		proceed bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		_, proceed, err := w.fleetGate(t.Context(), "v2")
		done <- result{proceed, err}
	}()
	<-g.entered
	w.requestRetry()
	select {
	case r := <-done:
		if r.proceed || r.err != nil {
			t.Fatalf("fleetGate = proceed %v, err %v; want false, nil (look again at once)", r.proceed, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a retry did not take the host out of the fleet's gate")
	}
	select {
	case <-w.retry:
	default:
		t.Fatal("the gate swallowed the retry request: the loop would not forget bad versions")
	}
}
