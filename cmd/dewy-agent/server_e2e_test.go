package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestServerRunnerEndToEnd runs the real binary with the server runner: a web app
// is deployed, upgraded under continuous requests with none failed, a release
// that fails its health check leaves the previous one serving and is recorded as
// bad, shutdown leaves no process and frees the port, and a restart serves the
// current release again without downloading anything.
func TestServerRunnerEndToEnd(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newEnv(t)
	publish := e.publishTestApp(t)
	publish("v1.0.0")
	port := freePort(t)
	e.writeConfig(t, `admin = ""`, testkit.ServerApp("web", e.reg, port, `health_timeout = "5s"`, `stop_timeout = "5s"`, `crash_window = "1s"`))
	state, cfg := e.state, e.cfg
	url := fmt.Sprintf("http://127.0.0.1:%d/version", port)

	p := startAgent(t, cfg)
	waitAnswer(t, p, url, "v1.0.0")

	// Upgrade under load: no request fails.
	load := testkit.StartLoad(url, testkit.LoadOptions{Workers: 4})
	publish("v1.1.0")
	waitAnswer(t, p, url, "v1.1.0")
	waitState(t, p, state, "web", "v1.1.0")
	res := load.Stop()
	if res.Failed != 0 || res.Sent < 50 {
		t.Fatalf("during the upgrade: %d of %d requests failed; first: %v", res.Failed, res.Sent, res.Errors)
	}

	// A release failing its health check never replaces the good one.
	publish("v1.2.0", "-unhealthy")
	for i := 0; !strings.Contains(readFile(filepath.Join(state, "apps", "web", "state.json")), `"version": "v1.2.0"`); i++ {
		if i > 400 {
			t.Fatalf("v1.2.0 never recorded as bad:\n%s", readFile(filepath.Join(state, "apps", "web", "state.json")))
		}
		sleep()
	}
	if got := get(url); got != "v1.1.0" {
		t.Fatalf("after the bad release the app answers %q", got)
	}
	if st := readState(t, state, "web"); st.Version != "v1.1.0" {
		t.Fatalf("state version %q", st.Version)
	}
	target, _ := os.Readlink(filepath.Join(state, "apps", "web", "current"))
	if !strings.Contains(target, "v1.1.0") {
		t.Fatalf("current -> %s", target)
	}
	pids := appPIDsUnder(t, state, "testapp")
	if len(pids) != 1 {
		t.Fatalf("testapp processes: %v, want one", pids)
	}

	// Shutdown: the app stops, the port is free.
	p.stop(t)
	if left := appPIDsUnder(t, state, "testapp"); len(left) != 0 {
		t.Fatalf("processes left after shutdown: %v", left)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("port not freed: %v", err)
	}
	ln.Close()

	// Restart: the current release serves again; nothing is downloaded.
	deploys := readState(t, state, "web").Deploys
	releases, _ := os.ReadDir(filepath.Join(state, "apps", "web", "releases"))
	p = startAgent(t, cfg)
	waitAnswer(t, p, url, "v1.1.0")
	for i := 0; !strings.Contains(p.logs(), "newest version is marked bad") && i < 200; i++ {
		sleep()
	}
	again, _ := os.ReadDir(filepath.Join(state, "apps", "web", "releases"))
	if readState(t, state, "web").Deploys != deploys || len(again) != len(releases) {
		t.Fatalf("restart deployed again")
	}
	p.stop(t)
}

// get is url's body, whatever its status, or "" when there is no answer
// within 2s.
func get(url string) string {
	s, _ := testkit.Get(&http.Client{Timeout: 2 * time.Second}, url)
	return strings.TrimSpace(s)
}

func waitAnswer(t *testing.T, p *proc, url, want string) {
	t.Helper()
	for i := 0; get(url) != want; i++ {
		if i > 600 {
			t.Fatalf("%s never answered %q (last %q)", url, want, get(url))
		}
		select {
		case err := <-p.done:
			t.Fatalf("agent exited: %v", err)
		default:
		}
		sleep()
	}
}

func waitState(t *testing.T, p *proc, state, app, want string) {
	t.Helper()
	for i := 0; readState(t, state, app).Version != want; i++ {
		if i > 600 {
			t.Fatalf("state.json never recorded %s", want)
		}
		sleep()
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// appPIDs lists live (not zombie) processes running the binary bin.
func appPIDs(t *testing.T, bin string) []int {
	t.Helper()
	return appPIDsUnder(t, "", bin)
}

// appPIDsUnder is appPIDs for the releases under dir only (every one when
// dir is ""), so tests running side by side do not see each other's apps.
func appPIDsUnder(t *testing.T, dir, bin string) []int {
	t.Helper()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.Contains(exe, "/releases/") || filepath.Base(exe) != filepath.Base(bin) || !strings.HasPrefix(exe, dir) {
			continue
		}
		stat := readFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := strings.LastIndex(stat, ")"); i > 0 && strings.HasPrefix(stat[i+1:], " Z") {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
