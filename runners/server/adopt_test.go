package server

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
)

// TestAdoptAcrossAgentLives: a runner stopped with AgentUpgrade leaves its
// generation running and recorded; the next runner of the same app dir adopts
// it (same pid, same socket), supervises it, and its next deploy hands the
// socket on and stops the adopted generation.
func TestAdoptAcrossAgentLives(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	appDir := t.TempDir()
	logs := &testkit.LogBuffer{}
	opts := runners.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), AppDir: appDir}
	first := New(testConfig(1), opts)
	v1 := h.release("v1")
	if err := first.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	addr := first.Addrs()[0]
	pid := mustGet(t, addr, "/pid")
	if err := first.Stop(t.Context(), runners.AgentUpgrade); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, addr, "/pid"); got != pid {
		t.Fatalf("after the agent's stop pid %s answers, want %s", got, pid)
	}

	second := New(testConfig(1), opts)
	second.minBackoff = 50 * time.Millisecond
	t.Cleanup(func() { second.Stop(context.Background(), runners.AppRemoved) })
	if err := second.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	if st := second.Stats(); strconv.Itoa(st.PID) != pid || !st.Running {
		t.Fatalf("Stats() = %+v, want the adopted pid %s running", st, pid)
	}
	if got := second.Addrs()[0].String(); got != addr.String() {
		t.Fatalf("adopted socket bound to %s, want %s", got, addr)
	}
	if err := second.Deploy(t.Context(), h.release("v2")); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, addr, "/version"); got != "v2" {
		t.Fatalf("after the deploy %q answers", got)
	}
	n, _ := strconv.Atoi(pid)
	testkit.Eventually(t, 5*time.Second, "the adopted generation to be stopped", func() bool { return gone(n) })
	if err := second.Stop(t.Context(), runners.AppRemoved); err != nil {
		t.Fatal(err)
	}
	recs, err := second.loadRecords()
	if err != nil || len(recs) != 0 {
		t.Fatalf("record after stop: %v, %v; want none", recs, err)
	}
}

// TestAdoptRestartsAnExitedAdoptedProcess: an adopted process that exits is
// noticed through its pidfd and restarted per the restart policy.
func TestAdoptRestartsAnExitedAdoptedProcess(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	opts := runners.Options{Logger: slog.New(slog.DiscardHandler), AppDir: t.TempDir()}
	first := New(testConfig(1), opts)
	v1 := h.release("v1", "-crash-after", "2s")
	if err := first.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	addr := first.Addrs()[0]
	pid := mustGet(t, addr, "/pid")
	first.Stop(t.Context(), runners.AgentUpgrade)

	second := New(testConfig(1), opts)
	second.minBackoff = 50 * time.Millisecond
	t.Cleanup(func() { second.Stop(context.Background(), runners.AppRemoved) })
	if err := second.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "a restarted generation serving", func() bool {
		got, err := get(addr, "/pid")
		return err == nil && got != pid && second.Stats().Restarts >= 1
	})
}
