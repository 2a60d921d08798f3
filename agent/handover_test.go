package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestReloadKeepsTheProcessWhenOnlyLoopSettingsChange: changing an app's
// interval restarts its loop but hands its runner over, so its process keeps
// running; changing its runner block restarts the process.
func TestReloadKeepsTheProcessWhenOnlyLoopSettingsChange(t *testing.T) {
	testkit.Slow(t, "starts processes")
	e := newEnv(t)
	text := func(interval, env string) string {
		return fmt.Sprintf(`
agent {
  state_dir = %q
  admin     = ""
}
app "worker" {
  registry = "file://%s"
  artifact = "site.tar.gz"
  interval = %q
  runner "server" {
    command      = ["/bin/sleep", "1000"]
    env          = { MODE = %q }
    crash_window = "1s"
    stop_timeout = "2s"
  }
}
`, e.state, e.reg, interval, env)
	}
	e.write(text("1h", "a"))
	a := e.start(Options{})
	waitFor(t, "deployed and running", func() bool {
		w := a.worker("worker")
		if w == nil {
			return false
		}
		s := w.snapshot()
		return s.Deployed != "" && s.Workload != nil && s.Workload.Running
	})
	pid := a.worker("worker").snapshot().Workload.PID

	e.write(text("2h", "a"))
	st, err := a.Reload(false)
	if err != nil || st.Restarted != 1 {
		t.Fatalf("reload = %+v, %v", st, err)
	}
	w := a.worker("worker")
	if w.app.Interval.String() != "2h0m0s" {
		t.Fatalf("new worker has interval %s", w.app.Interval)
	}
	if s := w.snapshot(); s.Workload == nil || !s.Workload.Running || s.Workload.PID != pid {
		t.Fatalf("after an interval change the process is %+v, want pid %d still running", s.Workload, pid)
	}

	e.write(text("2h", "b"))
	if _, err := a.Reload(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new process", func() bool {
		s := a.worker("worker").snapshot()
		return s.Workload != nil && s.Workload.Running && s.Workload.PID != pid
	})
	if strings.Contains(fmt.Sprint(a.Statuses()), "failed") {
		t.Fatalf("statuses: %+v", a.Statuses())
	}
}
