package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/config"
)

// recordingNotifier keeps every state the agent sends.
type recordingNotifier struct {
	mu     sync.Mutex
	states []string
}

func (r *recordingNotifier) Notify(s string) error {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
	return nil
}

func (r *recordingNotifier) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.states {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// TestWatchdogStopsWhenALoopEnds: the watchdog is fed while every app's loop
// runs and no longer once one of them has ended on its own.
func TestWatchdogStopsWhenALoopEnds(t *testing.T) {
	rec := &recordingNotifier{}
	a := New(&config.File{}, Options{Notifier: rec})
	w := &worker{done: make(chan struct{})}
	a.workers["web"] = w

	if !a.alive(10 * time.Millisecond) {
		t.Fatal("alive = false with a running loop")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); a.watchdog(ctx, 20*time.Millisecond) }()
	deadline := time.Now().Add(5 * time.Second)
	for rec.count("WATCHDOG=1") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if rec.count("WATCHDOG=1") < 2 {
		t.Fatal("watchdog not fed while the loop runs")
	}
	cancel()
	<-done

	close(w.done) // the loop ended without the agent stopping it
	if a.alive(10 * time.Millisecond) {
		t.Fatal("alive = true after a loop ended")
	}
	a.mu.Lock() // a stuck agent: its lock is held
	delete(a.workers, "web")
	if a.alive(10 * time.Millisecond) {
		t.Error("alive = true while the agent's lock is held")
	}
	a.mu.Unlock()
	if !a.alive(10 * time.Millisecond) {
		t.Error("alive = false with no loops and a free lock")
	}
}

func TestSummary(t *testing.T) {
	a := New(&config.File{}, Options{})
	for _, st := range []struct{ name, state string }{{"a", StateIdle}, {"b", StateIdle}, {"c", StateFailed}} {
		w := &worker{done: make(chan struct{})}
		w.status = Status{Name: st.name, State: st.state}
		a.workers[st.name] = w
	}
	a.lastReload = ReloadStatus{Result: "success"}
	if got, want := a.summary(), "3 apps: 1 failed, 2 idle; last reload success"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}
