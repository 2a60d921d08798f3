package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// TestAdminAPI runs the binary with the admin API on and checks status (JSON and
// the CLI's table), healthz, metrics (parsed by Prometheus's text parser), POST
// /reload with a broken file, and SIGHUP.
func TestAdminAPI(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newEnv(t)
	e.publishSite(t, "v1.0.0")
	addr := freeAddr(t)
	e.writeConfig(t, fmt.Sprintf("admin = %q", addr), e.siteApp(`interval = "1h"`))
	state, cfg := e.state, e.cfg
	p := startAgent(t, cfg)
	waitVersion(t, p, state, "site", "v1.0.0")

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	// The CLI's table and raw JSON.
	code, stdout, stderr := runCLI("status", "-addr", addr)
	if code != exitOK {
		t.Fatalf("status exit %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`site\s+assets\s+v1.0.0\s+running`).MatchString(stdout) {
		t.Fatalf("status table:\n%s", stdout)
	}
	code, stdout, _ = runCLI("status", "-addr", addr, "-json")
	var rep agent.StatusReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("status -json: %d %s", code, stdout)
	}
	if len(rep.Apps) != 1 || rep.Apps[0].Deployed != "v1.0.0" || rep.Apps[0].Deploys != 1 || rep.Agent.Config != cfg {
		t.Fatalf("status: %+v", rep)
	}

	// Metrics parse and carry the app's series.
	families := scrape(t, addr)
	checks := map[string]func(*model.Sample) bool{
		"dewy_deploys_total":                 func(s *model.Sample) bool { return s.Metric["result"] == "success" && s.Value == 1 },
		"dewy_polls_total":                   func(s *model.Sample) bool { return s.Metric["result"] == "ok" && s.Value >= 1 },
		"dewy_deployed_version_info":         func(s *model.Sample) bool { return s.Metric["version"] == "v1.0.0" },
		"dewy_config_last_reload_successful": func(s *model.Sample) bool { return s.Value == 1 },
	}
	for name, ok := range checks {
		found := false
		for _, s := range families[name] {
			found = found || ok(s)
		}
		if !found {
			t.Errorf("metric %s missing or wrong: %v", name, families[name])
		}
	}
	if len(families["dewy_deploy_duration_seconds_count"]) != 1 {
		t.Errorf("no deploy duration histogram")
	}

	// POST /reload with a broken file: 422, nothing changes, status tells.
	e.writeConfig(t, fmt.Sprintf("admin = %q", addr), e.siteApp(`interval = "soon"`))
	resp, err = http.Post("http://"+addr+"/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("POST /reload with a broken file: %s", resp.Status)
	}
	code, stdout, _ = runCLI("status", "-addr", addr)
	if code != exitOK || !strings.Contains(stdout, "last reload: failure") || !strings.Contains(stdout, "dewy.hcl:7,14") {
		t.Fatalf("status after a failed reload:\n%s", stdout)
	}
	if v := scrape(t, addr)["dewy_config_last_reload_successful"]; len(v) != 1 || v[0].Value != 0 {
		t.Fatalf("last reload gauge: %v", v)
	}

	// SIGHUP with a fixed file: the app is restarted with its new settings.
	e.writeConfig(t, fmt.Sprintf("admin = %q", addr), e.siteApp(`interval = "2h"`))
	p.cmd.Process.Signal(syscall.SIGHUP)
	for i := 0; !strings.Contains(p.logs(), "restarted=1"); i++ {
		if i > 200 {
			t.Fatal("SIGHUP did not reload")
		}
		sleep()
	}
	if v := scrape(t, addr)["dewy_config_last_reload_successful"]; len(v) != 1 || v[0].Value != 1 {
		t.Fatalf("last reload gauge after SIGHUP: %v", v)
	}
	p.stop(t)
	if _, err := os.Stat(filepath.Join(state, "apps", "site", "current")); err != nil {
		t.Fatalf("current gone after stop: %v", err)
	}
}

// scrape reads /metrics with the Prometheus text parser and returns the samples
// by metric name.
func scrape(t *testing.T, addr string) map[string][]*model.Sample {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	out := map[string][]*model.Sample{}
	for _, mf := range mfs {
		vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, mf)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range vec {
			n := string(s.Metric[model.MetricNameLabel])
			out[n] = append(out[n], s)
		}
	}
	return out
}
