package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/archive"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// surviveEnv is a file registry, a server app on a free port and an agent config.
type surviveEnv struct {
	dir, reg, state, cfg, app string
	port                      int
	url                       string
	bin                       []byte
}

// newSurviveEnv builds testapp and writes the config; agentExtra goes in the
// agent block, runnerExtra in the server runner block, assets adds an assets app.
func newSurviveEnv(t *testing.T, agentExtra, runnerExtra string, assets bool) *surviveEnv {
	t.Helper()
	e := &surviveEnv{dir: t.TempDir()}
	var err error
	if e.app, err = testkit.BuildTestApp(e.dir); err != nil {
		t.Fatal(err)
	}
	e.bin, _ = os.ReadFile(e.app)
	e.reg = filepath.Join(e.dir, "registry")
	e.state = filepath.Join(e.dir, "state")
	e.port = freePort(t)
	e.url = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.cfg = filepath.Join(e.dir, "dewy.hcl")
	if !strings.Contains(runnerExtra, "crash_window") {
		runnerExtra += "\n    crash_window   = \"1s\""
	}
	extra := ""
	if assets {
		extra = fmt.Sprintf(`
app "site" {
  registry = "file://%s/site"
  interval = "1s"
  runner "assets" {}
}`, e.reg)
	}
	writeFile(t, e.cfg, []byte(fmt.Sprintf(`
agent {
  state_dir = %q
  admin     = ""
  %s
}
app "web" {
  registry = "file://%s/web"
  interval = "1s"
  runner "server" {
    command        = ["./run.sh"]
    ports          = [%d]
    health_path    = "/health"
    health_timeout = "5s"
    stop_timeout   = "2s"
    %s
  }
}
%s
`, e.state, agentExtra, e.reg, e.port, runnerExtra, extra)))
	// Whatever a failed test leaves running is killed, group and all.
	t.Cleanup(func() {
		for _, pid := range appPIDsUnder(t, e.state, e.app) {
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return e
}

// publish puts version v of the server app in the registry; script is run.sh's
// command line ("exec ./testapp -version v" when empty).
func (e *surviveEnv) publish(t *testing.T, v, script string) {
	t.Helper()
	if script == "" {
		script = testkit.TestAppCommand(v)
	}
	e.put(t, filepath.Join(e.reg, "web", v, testkit.Artifact("web")), testkit.TestAppRelease(e.bin, script))
}

// startServing publishes web v1.0.0 (script: see publish), starts the agent,
// and waits until v1.0.0 answers and is recorded as deployed.
func (e *surviveEnv) startServing(t *testing.T, script string) *proc {
	t.Helper()
	e.publish(t, "v1.0.0", script)
	p := startAgent(t, e.cfg)
	waitAnswer(t, p, e.url+"/version", "v1.0.0")
	waitState(t, p, e.state, "web", "v1.0.0")
	return p
}

// adoptAfter serves v1.0.0 under load from workers, ends the agent with end
// (kill9, or a planned stop), checks that the app still answers with the same
// pid, then starts the next agent and waits until it has adopted the app. It
// returns that agent, the app's pid and the load, still running.
func (e *surviveEnv) adoptAfter(t *testing.T, end func(*testing.T, *proc), what string, workers int) (*proc, string, *testkit.Load) {
	t.Helper()
	p := e.startServing(t, "")
	pid := get(e.url + "/pid")
	load := testkit.StartLoad(e.url+"/version", testkit.LoadOptions{Workers: workers})
	end(t, p)
	if got := get(e.url + "/pid"); got != pid {
		t.Fatalf("after %s the app answers pid %q, want %s", what, got, pid)
	}
	p = startAgent(t, e.cfg)
	waitLog(t, p, "adopted the generation")
	if got := get(e.url + "/pid"); got != pid {
		t.Fatalf("after adoption pid %q answers, want %s", got, pid)
	}
	return p, pid, load
}

// publishSite puts version v of the assets app in the registry.
func (e *surviveEnv) publishSite(t *testing.T, v string) {
	t.Helper()
	e.put(t, filepath.Join(e.reg, "site", v, testkit.Artifact("site")), testkit.Pack(t, archive.TarGz,
		archive.File{Name: "index.html", Body: []byte(v + "\n"), Mode: 0o644}))
}

// put publishes a file the way a registry should: written aside, then renamed
// into place, so that the agent never reads it half-written.
func (e *surviveEnv) put(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(e.dir, "upload.tmp")
	writeFile(t, tmp, data)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// kill9 kills the agent with SIGKILL and waits for it to be gone.
func kill9(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not die of SIGKILL")
	}
}

// waitLog waits for the agent's log to contain s.
func waitLog(t *testing.T, p *proc, s string) {
	t.Helper()
	eventually(t, 30*time.Second, func() bool { return strings.Contains(p.logs(), s) }, "the agent logs %q", s)
}

// checkOneApp checks, eventually, that exactly one testapp runs and that it
// holds the port.
func (e *surviveEnv) checkOneApp(t *testing.T) int {
	t.Helper()
	var pids []int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		pids = appPIDsUnder(t, e.state, e.app)
		if len(pids) == 1 && get(e.url+"/pid") == strconv.Itoa(pids[0]) {
			return pids[0]
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range pids {
				cmdline := strings.ReplaceAll(readFile(fmt.Sprintf("/proc/%d/cmdline", pid)), "\x00", " ")
				desc = append(desc, fmt.Sprintf("%d (%s)", pid, cmdline))
			}
			t.Fatalf("want one testapp serving the port; running: %v; the port answers pid %q", desc, get(e.url+"/pid"))
		}
	}
}

// TestAgentKill9UnderLoadAdoptsApp: kill -9 of the agent under load fails no
// request; the restarted agent adopts the app (same pid) and its next deploy
// hands the sockets on and stops the adopted generation.
func TestAgentKill9UnderLoadAdoptsApp(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newSurviveEnv(t, "", "", false)
	p, pid, load := e.adoptAfter(t, kill9, "the agent's crash", 4)
	e.publish(t, "v1.1.0", "")
	waitAnswer(t, p, e.url+"/version", "v1.1.0")
	waitState(t, p, e.state, "web", "v1.1.0")
	res := load.Stop()
	if res.Failed != 0 || res.Sent < 50 {
		t.Fatalf("%d of %d requests failed across kill -9, restart and deploy; first: %v", res.Failed, res.Sent, res.Errors)
	}
	if n := e.checkOneApp(t); strconv.Itoa(n) == pid {
		t.Fatalf("the adopted generation %s still serves after the deploy", pid)
	}
	p.stop(t)
	if left := appPIDsUnder(t, e.state, e.app); len(left) != 0 {
		t.Fatalf("processes left after shutdown: %v", left)
	}
}

// TestSystemdStoreAcrossAgentKill: the agent under a fake systemd keeps the
// server app's socket in the descriptor store (FDSTORE=1, FDNAME=web/<port>);
// killed with -9 and started again as systemd would (the stored socket at fd
// 3, LISTEN_FDS, LISTEN_FDNAMES, its own LISTEN_PID), it takes the socket from
// there and adopts the app, with no request failed; a stop that ends the app
// removes the socket from the store.
func TestSystemdStoreAcrossAgentKill(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newSurviveEnv(t, "", "", false)
	e.publish(t, "v1.0.0", "")
	ns := testkit.ListenNotify(t)
	p := startAgent(t, e.cfg, "NOTIFY_SOCKET="+ns.Path)
	name := fmt.Sprintf("web/%d", e.port)
	msg, fds, _ := ns.Next(t, "FDSTORE=1")
	if !strings.Contains(msg, "FDNAME="+name+"\n") || len(fds) != 1 {
		t.Fatalf("store notification %q with %d descriptors, want FDNAME=%s and 1", msg, len(fds), name)
	}
	defer fds[0].Close()
	waitAnswer(t, p, e.url+"/version", "v1.0.0")
	waitState(t, p, e.state, "web", "v1.0.0")
	pid := get(e.url + "/pid")

	load := testkit.StartLoad(e.url+"/version", testkit.LoadOptions{Workers: 4})
	kill9(t, p)
	cmd := exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$; exec "$@"`, "sh", agentBin, "-config", e.cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.Path, "LISTEN_FDS=1", "LISTEN_FDNAMES="+name)
	cmd.ExtraFiles = fds
	p = startAgentCmd(t, cmd)
	waitLog(t, p, "listening sockets restored from the service manager's descriptor store")
	waitLog(t, p, "adopted the generation")
	if got := get(e.url + "/pid"); got != pid {
		t.Fatalf("after adoption pid %q answers, want %s", got, pid)
	}
	if res := load.Stop(); res.Failed != 0 || res.Sent < 50 {
		t.Fatalf("%d of %d requests failed across kill -9 and restart; first: %v", res.Failed, res.Sent, res.Errors)
	}
	p.stop(t)
	if msg, _, _ := ns.Next(t, "FDSTOREREMOVE=1"); !strings.Contains(msg, "FDNAME="+name+"\n") {
		t.Errorf("removal %q does not name %s", msg, name)
	}
}

// TestKeepAppsRunningOnStop: with keep_apps_running_on_stop, SIGTERM to the
// agent leaves the app serving, and the next agent adopts it.
func TestKeepAppsRunningOnStop(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newSurviveEnv(t, "keep_apps_running_on_stop = true", "", false)
	_, pid, load := e.adoptAfter(t, func(t *testing.T, p *proc) { p.stop(t) }, "a planned stop", 2)
	if res := load.Stop(); res.Failed != 0 || res.Sent < 10 {
		t.Fatalf("%d of %d requests failed across the agent's upgrade; first: %v", res.Failed, res.Sent, res.Errors)
	}
	if got := e.checkOneApp(t); strconv.Itoa(got) != pid {
		t.Fatalf("pid %d serves, want the adopted %s", got, pid)
	}
}

// TestAgentKilledInCrashWindow: a kill -9 while a release that dies 3 s after
// going live is in its crash window: the restarted agent serves the old
// version, and state.json and current agree.
func TestAgentKilledInCrashWindow(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newSurviveEnv(t, "", `crash_window = "8s"`, false)
	p := e.startServing(t, "")
	e.publish(t, "v2.0.0", "exec ./testapp -version v2.0.0 -crash-after 3s")
	waitAnswer(t, p, e.url+"/version", "v2.0.0") // live, inside its crash window
	raw := readFile(filepath.Join(e.state, "apps", "web", "state.json"))
	if !strings.Contains(raw, `"deploying"`) {
		t.Fatalf("the deploy in flight is not recorded before it matters:\n%s", raw)
	}
	kill9(t, p)
	p = startAgent(t, e.cfg)
	waitAnswer(t, p, e.url+"/version", "v1.0.0")
	e.checkConsistent(t, "web")
	if st := readState(t, e.state, "web"); st.Version != "v1.0.0" {
		t.Fatalf("state names %s, want v1.0.0", st.Version)
	}
	e.checkOneApp(t)
	// The agent tries v2.0.0 again; it crashes in its window and is marked bad.
	eventually(t, 40*time.Second, func() bool {
		return strings.Contains(readFile(filepath.Join(e.state, "apps", "web", "state.json")), `"version": "v2.0.0"`)
	}, "v2.0.0 marked bad")
	waitAnswer(t, p, e.url+"/version", "v1.0.0")
	p.stop(t)
}

// TestUnadoptableLeftoversAreStopped: an app of an earlier agent life whose
// sockets cannot be taken back (its record damaged) is stopped, SIGKILL after
// stop_timeout included, before the ports are bound: a wrapper shell without
// exec around an app ignoring SIGTERM, and an app holding its listener 8 s
// while it drains. A planned stop kills such an app group too.
func TestUnadoptableLeftoversAreStopped(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	for _, tc := range []struct{ name, script string }{
		{"wrapper shell ignoring SIGTERM", "./testapp -version v1.0.0 -ignore-term"},
		{"slow drain holding the listener", "exec ./testapp -version v1.0.0 -hold-listener 8s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // mostly waiting for stop timeouts
			e := newSurviveEnv(t, "", "", false)
			p := e.startServing(t, tc.script)
			old := get(e.url + "/pid")
			kill9(t, p)
			// Make the sockets unrecoverable: the record names descriptors the
			// app does not have.
			rec := filepath.Join(e.state, "apps", "web", "server.json")
			var rs map[string][]map[string]any
			if err := json.Unmarshal([]byte(readFile(rec)), &rs); err != nil || len(rs["generations"]) != 1 {
				t.Fatalf("record %s: %v\n%s", rec, err, readFile(rec))
			}
			rs["generations"][0]["fds"] = []int{900}
			rs["generations"][0]["inodes"] = []int{1}
			b, _ := json.Marshal(rs)
			writeFile(t, rec, b)

			p = startAgent(t, e.cfg)
			waitLog(t, p, "sockets of an earlier generation cannot be taken back")
			eventually(t, 20*time.Second, func() bool { return !slices.Contains(appPIDsUnder(t, e.state, e.app), atoi(old)) }, "the unadoptable app %s to be stopped", old)
			waitAnswer(t, p, e.url+"/version", "v1.0.0")
			if strings.Contains(p.logs(), "address already in use") {
				t.Fatal("resume met a port still held")
			}
			if n := e.checkOneApp(t); strconv.Itoa(n) == old {
				t.Fatalf("the unadoptable app %s still serves", old)
			}
			p.stop(t)
			eventually(t, 10*time.Second, func() bool { return len(appPIDsUnder(t, e.state, e.app)) == 0 }, "no app left after a planned stop")
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", e.port))
			if err != nil {
				t.Fatalf("port still held: %v", err)
			}
			ln.Close()
		})
	}
}

// checkConsistent checks, eventually, that `current` names a complete release
// of the version state.json records, and that no deploy is left in flight.
func (e *surviveEnv) checkConsistent(t *testing.T, app string) {
	t.Helper()
	dir := filepath.Join(e.state, "apps", app)
	var why string
	ok := func() bool {
		raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil {
			why = "no state.json"
			return false
		}
		var st struct {
			Version   string          `json:"version"`
			Deploying json.RawMessage `json:"deploying"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("state.json does not parse: %v\n%s", err, raw)
		}
		target, err := os.Readlink(filepath.Join(dir, "current"))
		switch {
		case st.Version == "" || len(st.Deploying) > 0:
			why = "deploy in flight: " + string(raw)
			return false
		case err != nil || !strings.Contains(filepath.Base(target), st.Version):
			why = fmt.Sprintf("current -> %s, state names %s", target, st.Version)
			return false
		}
		complete := "run.sh"
		if app == "site" {
			complete = "index.html"
		}
		if _, err := os.Stat(filepath.Join(dir, "current", complete)); err != nil {
			why = "current is incomplete: " + err.Error()
			return false
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: state.json and current disagree: %s", app, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashSoak kills the agent with -9 at random moments while both runners
// deploy; after each restart state and current agree, the server app runs
// exactly once holding its port, and the agent goes on alone. DEWY_SOAK_KILLS
// sets the number of kills (make soak: 60); the normal run makes 4.
func TestCrashSoak(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	kills := 4
	if n, err := strconv.Atoi(os.Getenv("DEWY_SOAK_KILLS")); err == nil && n > 0 {
		kills = n
	}
	e := newSurviveEnv(t, "", "", true)
	e.publishSite(t, "v1.0.0")
	p := e.startServing(t, "")
	// Requests are counted across the kills and deploys, and reported.
	load := testkit.StartLoad(e.url+"/version", testkit.LoadOptions{Workers: 4, KeepAlive: testkit.KeepAliveHalf})
	for i := 1; i <= kills; i++ {
		v := fmt.Sprintf("v1.%d.0", i)
		e.publish(t, v, "")
		e.publishSite(t, v)
		time.Sleep(time.Duration(rand.IntN(2500)) * time.Millisecond) // a random moment of the deploys
		kill9(t, p)
		for _, app := range []string{"web", "site"} {
			raw := readFile(filepath.Join(e.state, "apps", app, "state.json"))
			var v map[string]any
			if raw != "" && json.Unmarshal([]byte(raw), &v) != nil {
				t.Fatalf("kill %d: %s state.json does not parse:\n%s", i, app, raw)
			}
		}
		p = startAgent(t, e.cfg)
		waitLog(t, p, "agent started")        // its signal handlers are set
		waitAnswer(t, p, e.url+"/version", v) // recovers and deploys alone
		waitVersion(t, p, e.state, "site", v)
		e.checkConsistent(t, "web")
		e.checkConsistent(t, "site")
		e.checkOneApp(t)
	}
	res := load.Stop()
	t.Logf("soak: %d kills of the agent with -9 across deploys; requests %d sent, %d failed %v", kills, res.Sent, res.Failed, res.Errors)
	p.stop(t)
	if left := appPIDsUnder(t, e.state, e.app); len(left) != 0 {
		t.Fatalf("processes left after shutdown: %v", left)
	}
}

// eventually polls cond until it holds, failing the test after d.
func eventually(t *testing.T, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for "+format, append([]any{d}, args...)...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
