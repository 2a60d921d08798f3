package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReloadWriteStyles checks that every way tools write a file triggers exactly
// one reload: in place, a temp file renamed over it, delete and recreate, and a
// symlink whose target is swapped.
func TestReloadWriteStyles(t *testing.T) {
	e := newEnv(t)
	// The config file is a symlink into a versions folder, as mounted config
	// volumes and some deploy tools keep it.
	versions := filepath.Join(e.dir, "versions")
	os.MkdirAll(versions, 0o755)
	target := filepath.Join(versions, "v0.hcl")
	os.WriteFile(target, []byte(e.config("1h", "a")), 0o644)
	if err := os.Symlink(target, e.cfg); err != nil {
		t.Fatal(err)
	}
	const debounce = 100 * time.Millisecond
	clk := newFakeClock()
	a := e.newAgent(Options{Watch: true, Debounce: debounce, Clock: clk})
	var mu sync.Mutex
	seen := map[string]bool{}
	a.watchSeen = func(name string) {
		mu.Lock()
		seen[filepath.Base(name)] = true
		mu.Unlock()
	}
	e.run(a)
	waitFor(t, "first deploy", deployed(a, "a"))

	// settle returns once the watcher has handled every event of what was
	// written before: it writes a file of its own beside the config file
	// and waits for the watcher to see it (events come in order).
	syncs := 0
	settle := func() {
		t.Helper()
		syncs++
		name := fmt.Sprintf("sync-%d", syncs)
		waitFor(t, "the watcher to see "+name, func() bool {
			mu.Lock()
			ok := seen[name]
			mu.Unlock()
			if !ok { // written again until seen: the watcher may be starting
				os.WriteFile(filepath.Join(e.dir, name), nil, 0o644)
			}
			return ok
		})
	}
	settle()

	styles := []struct {
		name  string
		write func(text string)
	}{
		{"in place through the link", func(text string) {
			f, err := os.OpenFile(e.cfg, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(text)
			f.Close()
		}},
		{"symlink swapped to a new target", func(text string) {
			next := filepath.Join(versions, "v2.hcl")
			os.WriteFile(next, []byte(text), 0o644)
			tmp := e.cfg + ".tmp-link"
			os.Symlink(next, tmp)
			if err := os.Rename(tmp, e.cfg); err != nil {
				t.Fatal(err)
			}
		}},
		{"temp file renamed over", func(text string) {
			tmp := filepath.Join(e.dir, ".dewy.hcl.ansible-tmp")
			os.WriteFile(tmp, []byte(text), 0o644)
			if err := os.Rename(tmp, e.cfg); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted and recreated", func(text string) {
			os.Remove(e.cfg)
			os.WriteFile(e.cfg, []byte(text), 0o644)
		}},
		{"in place", func(text string) {
			os.WriteFile(e.cfg, []byte(text), 0o644)
		}},
	}
	for i, s := range styles {
		before := a.reloads.Load()
		// Each write changes the app's interval, so its content differs.
		s.write(e.config(fmt.Sprintf("%dh", i+2), "a"))
		settle()
		if n := clk.pending(debounce); n != 1 {
			t.Fatalf("%s: %d reloads pending, want 1", s.name, n)
		}
		clk.Advance(debounce)
		waitFor(t, s.name+": a reload", func() bool { return a.reloads.Load() > before })
		settle() // the reload has ended, and whatever it stirred up was seen
		if n := clk.pending(debounce); n != 0 {
			t.Errorf("%s: a second reload is pending", s.name)
		}
		if got := a.reloads.Load() - before; got != 1 {
			t.Errorf("%s: %d reloads, want 1", s.name, got)
		}
		if r := a.Report().Agent.LastReload; r.Result != "success" || r.Restarted != 1 {
			t.Errorf("%s: last reload %+v", s.name, r)
		}
	}

	// Writing the same content again reloads nothing.
	before := a.reloads.Load()
	src, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, src, 0o644)
	settle()
	if n := clk.pending(debounce); n != 1 {
		t.Fatalf("unchanged content: %d reloads pending, want 1", n)
	}
	clk.Advance(debounce) // the watcher reads the file again ...
	settle()              // ... and has ended that reload
	if got := a.reloads.Load() - before; got != 0 {
		t.Errorf("unchanged content: %d reloads, want 0", got)
	}
}

// TestReloadAppliesOnlyTheDifference runs three apps, edits one, adds and removes
// apps, and feeds broken files; only what changed may be touched.
func TestReloadAppliesOnlyTheDifference(t *testing.T) {
	e := newEnv(t)
	e.write(e.config("1h", "a", "b", "c"))
	a := e.start(Options{Debounce: 50 * time.Millisecond})
	for _, n := range []string{"a", "b", "c"} {
		waitFor(t, n+" deployed", deployed(a, n))
	}
	wa, wb, wc := a.worker("a"), a.worker("b"), a.worker("c")

	// Edit c only: a and b keep their goroutine (same worker) and start no poll.
	text := e.config("1h", "a", "b") + "app \"c\" {\n  registry = \"file://" + e.reg + "\"\n  artifact = \"site.tar.gz\"\n  interval = \"2h\"\n  runner \"assets\" {}\n}\n"
	e.write(text)
	st, err := a.Reload(false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Restarted != 1 || st.Unchanged != 2 || st.Added != 0 || st.Removed != 0 {
		t.Fatalf("reload = %+v, want 1 restarted, 2 unchanged", st)
	}
	if a.worker("a") != wa || a.worker("b") != wb {
		t.Fatal("unchanged apps got new workers")
	}
	if a.worker("c") == wc {
		t.Fatal("the edited app kept its old worker")
	}
	select {
	case <-wc.done:
	default:
		t.Fatal("the edited app's old loop still runs")
	}
	for _, w := range []*worker{wa, wb} {
		if n := w.polls.Load(); n != 1 {
			t.Errorf("%s polled %d times, want 1 (no poll started by the reload)", w.app.Name, n)
		}
		select {
		case <-w.done:
			t.Errorf("%s's loop ended", w.app.Name)
		default:
		}
	}
	waitFor(t, "c redeployed from state", deployed(a, "c"))
	if got := a.worker("c").snapshot().Deploys; got != 1 {
		t.Errorf("restarted c deployed again: deploys = %d, want 1 (the release is already current)", got)
	}

	// Add d, remove a.
	e.write(e.config("1h", "b", "d") + text[strings.Index(text, "app \"c\""):])
	st, err = a.Reload(false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 1 || st.Removed != 1 || st.Unchanged != 2 {
		t.Fatalf("reload = %+v, want 1 added, 1 removed, 2 unchanged", st)
	}
	if a.worker("a") != nil {
		t.Fatal("removed app still has a worker")
	}
	waitFor(t, "d deployed", deployed(a, "d"))

	// Broken files change nothing and are reported.
	good := a.worker("b")
	bad := []struct{ name, text, want string }{
		{"syntax error", "app \"b\" {\n  registry = \n}\n", "dewy.hcl:2"},
		{"duplicate app", e.config("1h", "b", "b"), "Duplicate app"},
		{"bad duration", strings.Replace(e.config("1h", "b"), `"1h"`, `"soon"`, 1), "interval"},
		{"unknown scheme", strings.Replace(e.config("1h", "b"), "file://", "ftp://", 1), "ftp"},
		{"empty file", "", "empty"},
		{"an app the runner refuses", e.config("1h", "b") + `app "web" {
  registry = "img://ghcr.io/acme/web"
  runner "container" {
    volumes = ["/var/run/docker.sock:/var/run/docker.sock"]
  }
}
`, "docker.sock"},
		{"a verify key that does not parse", strings.Replace(e.config("1h", "b"), `runner "assets"`, "verify {\n    minisign_public_keys = [\"RWQnotakey\"]\n  }\n  runner \"assets\"", 1), "dewy.hcl:10,29: Error: Invalid minisign public key"},
		{"an unreadable allowed signers file", strings.Replace(e.config("1h", "b"), `runner "assets"`, "verify {\n    ssh_allowed_signers = \"missing_signers\"\n  }\n  runner \"assets\"", 1), "dewy.hcl:10,27: Error: Unreadable ssh_allowed_signers"},
	}
	for _, c := range bad {
		e.write(c.text)
		if _, err := a.Reload(false); err == nil {
			t.Errorf("%s: reload succeeded", c.name)
			continue
		}
		r := a.Report()
		if r.Agent.LastReload.Result != "failure" || !strings.Contains(r.Agent.LastReload.Error, c.want) {
			t.Errorf("%s: status shows %+v, want failure mentioning %q", c.name, r.Agent.LastReload, c.want)
		}
		if len(r.Apps) != 3 || a.worker("b") != good {
			t.Errorf("%s: apps changed: %d apps", c.name, len(r.Apps))
		}
	}
}

// TestReloadAgentBlock: log_level applies live; state_dir and log_format are
// reported as needing a restart and keep their running values.
func TestReloadAgentBlock(t *testing.T) {
	e := newEnv(t)
	e.write(e.config("1h", "a"))
	level := new(slog.LevelVar)
	a := e.start(Options{Level: level})
	waitFor(t, "a deployed", deployed(a, "a"))

	text := strings.Replace(e.config("1h", "a"), "agent {", "agent {\n  log_level = \"debug\"\n  log_format = \"json\"", 1)
	text = strings.Replace(text, e.state, filepath.Join(e.dir, "elsewhere"), 1)
	e.write(text)
	st, err := a.Reload(false)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(st.NeedsRestart)
	if !slices.Equal(st.NeedsRestart, []string{"log_format", "state_dir"}) {
		t.Fatalf("needs restart = %v, want log_format and state_dir", st.NeedsRestart)
	}
	if level.Level() != slog.LevelDebug {
		t.Fatalf("log level = %v, want debug applied live", level.Level())
	}
	if got := a.Report().Agent.StateDir; got != e.state {
		t.Fatalf("state dir = %s, want the running %s", got, e.state)
	}
	if st.Unchanged != 1 || a.worker("a").dir != filepath.Join(e.state, "apps", "a") {
		t.Fatalf("the app moved: %+v, dir %s", st, a.worker("a").dir)
	}
}
