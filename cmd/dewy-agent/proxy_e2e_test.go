package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestServerRunnerProxyEndToEnd runs the real binary with the server runner's
// proxy = true under continuous requests, each on a new connection: a release
// that fails its health check answers none of them and none fails, and a
// healthy release then takes over with none failed.
func TestServerRunnerProxyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	e := newEnv(t)
	publish := e.publishTestApp(t)
	publish("v1.0.0")
	port := freePort(t)
	e.writeConfig(t, `admin = ""`, testkit.ServerApp("web", e.reg, port, `health_timeout = "2s"`, `stop_timeout = "5s"`, `crash_window = "1s"`, `proxy = true`))
	state, cfg := e.state, e.cfg
	url := fmt.Sprintf("http://127.0.0.1:%d/version", port)

	p := startAgent(t, cfg)
	waitAnswer(t, p, url, "v1.0.0")

	load := testkit.StartLoad(url, testkit.LoadOptions{Workers: 8})
	publish("v1.1.0", "-unhealthy")
	for i := 0; !strings.Contains(readFile(filepath.Join(state, "apps", "web", "state.json")), `"version": "v1.1.0"`); i++ {
		if i > 600 {
			load.Stop()
			t.Fatalf("v1.1.0 never recorded as bad:\n%s", readFile(filepath.Join(state, "apps", "web", "state.json")))
		}
		sleep()
	}
	res := load.Stop()
	t.Logf("unhealthy release: sent %d, failed %d, answers %v", res.Sent, res.Failed, res.Answers)
	if res.Answers["v1.1.0"] != 0 || res.Failed != 0 || res.Sent < 50 {
		t.Fatalf("while v1.1.0 failed its health check: %d of %d answered by it, %d failed (%v)", res.Answers["v1.1.0"], res.Sent, res.Failed, res.Errors)
	}

	load = testkit.StartLoad(url, testkit.LoadOptions{Workers: 8, KeepAlive: testkit.KeepAliveHalf})
	publish("v1.2.0")
	waitAnswer(t, p, url, "v1.2.0")
	waitState(t, p, state, "web", "v1.2.0")
	res = load.Stop()
	t.Logf("healthy release: sent %d, failed %d, answers %v", res.Sent, res.Failed, res.Answers)
	if res.Failed != 0 || res.Answers["v1.2.0"] == 0 {
		t.Fatalf("during the upgrade: %d of %d requests failed (%v), answers %v", res.Failed, res.Sent, res.Errors, res.Answers)
	}
	if pids := appPIDsUnder(t, state, "testapp"); len(pids) != 1 {
		t.Errorf("testapp processes: %v, want one", pids)
	}
	p.stop(t)
	if left := appPIDsUnder(t, state, "testapp"); len(left) != 0 {
		t.Errorf("processes left after shutdown: %v", left)
	}
}
