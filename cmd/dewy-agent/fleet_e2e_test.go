package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestFleetThreeAgents runs three dewy-agent processes in one fleet on an
// etcd cluster started in the test process: a release reaches all three
// (the canary first), the operators' commands see and steer the rollout
// (status, pause, resume), and a paused release waits until resumed.
func TestFleetThreeAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with etcd and three agents; skipped with -short")
	}
	cl := etcdtest.Start(t, 3)
	dir := t.TempDir()
	reg := filepath.Join(dir, "registry")
	publish := func(v string) {
		writeFile(t, filepath.Join(reg, v, "site.tar.gz"), testkit.TarGz(map[string]string{"index.html": v + "\n"}))
	}
	publish("v1.0.0")
	config := func(host, role string) string {
		path := filepath.Join(dir, host+".hcl")
		writeFile(t, path, []byte(testkit.FleetHost{
			StateDir: filepath.Join(dir, host), HostID: host, Labels: fmt.Sprintf("role = %q", role),
			Endpoints: cl.Endpoints(), Prefix: "/e2e", Registry: reg,
			Rollout: "canary = 1\n    bake = \"1s\"\n    max_parallel = 1",
		}.Config()))
		return path
	}
	hosts := []string{"h0", "h1", "h2"}
	var procs []*proc
	var cfgs []string
	for i, h := range hosts {
		role := "web"
		if i == 0 {
			role = "canary"
		}
		cfgs = append(cfgs, config(h, role))
		procs = append(procs, startAgent(t, cfgs[i]))
	}
	waitAll := func(v string) {
		t.Helper()
		for i, h := range hosts {
			waitVersion(t, procs[i], filepath.Join(dir, h), "site", v)
		}
	}
	waitAll("v1.0.0")
	status := func() fleet.Status {
		t.Helper()
		code, out, errOut := runCLI("fleet", "status", "-json", "-config", cfgs[1])
		if code != exitOK {
			t.Fatalf("fleet status: exit %d: %s", code, errOut)
		}
		var st fleet.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("fleet status -json: %v\n%s", err, out)
		}
		return st
	}
	if st := status(); len(st.Hosts) != 3 || len(st.Apps) != 1 || st.Apps[0].Poller == "" {
		t.Fatalf("fleet status = %+v; want 3 hosts and one app with a poller", st)
	}

	publish("v1.1.0")
	waitAll("v1.1.0")
	code, out, _ := runCLI("fleet", "status", "-config", cfgs[0])
	for _, want := range []string{"h0", "h1", "h2", "role=canary", "site=v1.1.0", "v1.1.0"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("fleet status (exit %d) lacks %q:\n%s", code, want, out)
		}
	}

	if code, _, errOut := runCLI("fleet", "pause", "site", "-config", cfgs[0]); code != exitOK {
		t.Fatalf("fleet pause: exit %d: %s", code, errOut)
	}
	publish("v1.2.0")
	testkit.Eventually(t, 30*time.Second, "v1.2.0 published and paused", func() bool {
		a := status().Apps[0]
		return a.Release != nil && a.Release.Version == "v1.2.0" && a.Phase == fleet.PhasePaused
	})
	if code, _, errOut := runCLI("fleet", "resume", "site", "-config", cfgs[0]); code != exitOK {
		t.Fatalf("fleet resume: exit %d: %s", code, errOut)
	}
	waitAll("v1.2.0")
	for _, p := range procs {
		p.stop(t)
	}
}
