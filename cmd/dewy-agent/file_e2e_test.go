package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestFileRegistryDeployRestartShutdown runs the real binary against a local folder
// registry: the first release is deployed, a newer one replaces it, a restart with an
// unchanged registry redeploys nothing, and SIGTERM stops the agent cleanly.
func TestFileRegistryDeployRestartShutdown(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newEnv(t)
	dir, state, cfg := e.dir, e.state, e.cfg
	publish := func(v string) { e.publishSite(t, v) }
	publish("v1.0.0")
	e.writeConfig(t, "admin     = \"\"\n  log_level = \"debug\"", fmt.Sprintf(`app "site" {
  registry = "file://%s?artifact=site.tar.gz"
  interval = "1s"
  runner "assets" {
    link = %q
  }
}
`, e.reg, filepath.Join(dir, "www")))

	p := startAgent(t, cfg)
	waitVersion(t, p, state, "site", "v1.0.0")
	publish("v1.1.0")
	waitVersion(t, p, state, "site", "v1.1.0")
	if b, err := os.ReadFile(filepath.Join(dir, "www", "index.html")); err != nil || string(b) != "v1.1.0\n" {
		t.Fatalf("link serves %q, %v", b, err)
	}
	p.stop(t)
	if !strings.Contains(p.logs(), "agent stopped") {
		t.Errorf("no clean stop in the log")
	}

	before := readState(t, state, "site")
	releases, _ := os.ReadDir(filepath.Join(state, "apps", "site", "releases"))

	// Restart with the registry unchanged: nothing is downloaded or deployed again.
	p = startAgent(t, cfg)
	deadline := 0
	for !strings.Contains(p.logs(), "up to date") && deadline < 200 {
		deadline++
		select {
		case err := <-p.done:
			t.Fatalf("agent exited: %v", err)
		default:
		}
		sleep()
	}
	if deadline == 200 {
		t.Fatal("the restarted agent never reported up to date")
	}
	p.stop(t)
	after := readState(t, state, "site")
	if after.Deploys != before.Deploys || after.Version != "v1.1.0" {
		t.Fatalf("restart redeployed: before %+v after %+v", before, after)
	}
	again, _ := os.ReadDir(filepath.Join(state, "apps", "site", "releases"))
	if len(again) != len(releases) {
		t.Fatalf("restart created release dirs: %d -> %d", len(releases), len(again))
	}
	if strings.Contains(p.logs(), "msg=deployed") {
		t.Fatalf("restart logged a deploy:\n%s", p.logs())
	}
}
