package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// yamlConfig is env.config's file in YAML: the named apps, each with interval,
// except that app "c" gets cInterval.
func (e *env) yamlConfig(interval, cInterval string, apps ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# managed by Ansible\nagent:\n  state_dir: %s\n  admin: \"\"\napp:\n", e.state)
	for _, a := range apps {
		iv := interval
		if a == "c" {
			iv = cInterval
		}
		fmt.Fprintf(&b, "  %s:\n    registry: file://%s\n    artifact: site.tar.gz\n    interval: %s\n    runner:\n      assets: {}\n", a, e.reg, iv)
	}
	return b.String()
}

// TestReloadYAMLAppliesOnlyTheChangedApp runs three apps from a YAML file that
// the agent watches, edits one app in the file as a config-management tool
// would (a temp file renamed over it), and checks that only that app was
// restarted; then a broken YAML file changes nothing and is reported with the
// YAML file's line.
func TestReloadYAMLAppliesOnlyTheChangedApp(t *testing.T) {
	e := newEnv(t)
	e.cfg = filepath.Join(e.dir, "dewy.yaml")
	e.write(e.yamlConfig("1h", "1h", "a", "b", "c"))
	a := e.start(Options{Watch: true, Debounce: 50 * time.Millisecond})
	for _, n := range []string{"a", "b", "c"} {
		waitFor(t, n+" deployed", deployed(a, n))
	}
	wa, wb, wc := a.worker("a"), a.worker("b"), a.worker("c")

	// Change c's interval only, written the way Ansible's template module
	// writes: a temporary file renamed over the config.
	last := a.Report().Agent.LastReload.Time
	reloaded := func() bool { return !a.Report().Agent.LastReload.Time.Equal(last) }
	tmp := filepath.Join(e.dir, ".dewy.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(e.yamlConfig("1h", "2h", "a", "b", "c")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher's reload", reloaded)
	st := a.Report().Agent.LastReload
	if st.Result != "success" || st.Restarted != 1 || st.Unchanged != 2 || st.Added != 0 || st.Removed != 0 {
		t.Fatalf("reload = %+v, want success with 1 restarted and 2 unchanged", st)
	}
	if a.worker("a") != wa || a.worker("b") != wb {
		t.Error("unchanged apps got new workers")
	}
	if a.worker("c") == wc {
		t.Error("the edited app kept its old worker")
	}
	if got := a.worker("c").app.Interval; got != 2*time.Hour {
		t.Errorf("c's interval = %v, want 2h", got)
	}
	for _, w := range []*worker{wa, wb} {
		if n := w.polls.Load(); n != 1 {
			t.Errorf("%s polled %d times, want 1 (no poll started by the reload)", w.app.Name, n)
		}
	}
	waitFor(t, "c running again", deployed(a, "c"))

	// A broken YAML file is refused: nothing changes, and the error names the
	// YAML file and line.
	last = a.Report().Agent.LastReload.Time
	wc = a.worker("c")
	broken := strings.Replace(e.yamlConfig("1h", "3h", "a", "b", "c"), "    interval: 3h\n", "    interval: 3h\n     oops: [\n", 1)
	e.write(broken)
	waitFor(t, "the refused reload", reloaded)
	st = a.Report().Agent.LastReload
	line := 1 + strings.Count(broken[:strings.Index(broken, "oops")], "\n")
	if want := fmt.Sprintf("dewy.yaml:%d,", line); st.Result != "failure" || !strings.Contains(st.Error, want) || !strings.Contains(st.Error, "Invalid YAML") {
		t.Fatalf("reload = %+v, want a failure at %s with the YAML error", st, want)
	}
	if a.worker("a") != wa || a.worker("b") != wb || a.worker("c") != wc {
		t.Error("a refused reload replaced workers")
	}
}
