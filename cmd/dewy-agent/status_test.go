package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/runners"
)

// statusNow is the time the golden files are written for.
var statusNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// deployErr is a failed server deploy's error as the agent words it.
const deployErr = "deploy v0.2.0: server: bad release: exited before it was healthy (exit status 3)"

// statusReport is a report with an app in each situation the table shows.
func statusReport() agent.StatusReport {
	at := func(d time.Duration) time.Time { return statusNow.Add(d) }
	return agent.StatusReport{
		Agent: agent.AgentStatus{
			Version: "v1.4.0", Config: "/etc/dewy-agent/dewy.hcl", StateDir: "/var/lib/dewy-agent",
			StartedAt:  at(-2 * time.Hour),
			LastReload: agent.ReloadStatus{Time: at(-time.Hour), Result: "success", Unchanged: 4},
		},
		Apps: []agent.Status{
			{Name: "api", Registry: "ghr://acme/api", Runner: "server", Deployed: "v0.1.0", Newest: "v0.2.0",
				State: agent.StateFailed, LastCheck: at(-10 * time.Second), NextCheck: at(50 * time.Second),
				DeployedAt: at(-24 * time.Hour), Deploys: 3, LastError: deployErr, Phase: agent.PhaseFailing,
				Workload: &runners.Workload{Running: true, PID: 4242, Restarts: 1},
				History: []agent.DeployRecord{
					{Version: "v0.2.0", Previous: "v0.1.0", At: at(-15 * time.Second), Took: 2300 * time.Millisecond, Outcome: "failed", Err: deployErr},
					{Version: "v0.1.0", At: at(-24 * time.Hour), Took: 1200 * time.Millisecond, Outcome: "succeeded"},
				}},
			{Name: "docs", Registry: "s3://eu-west-1/acme-releases/docs", Runner: "assets", Deployed: "v3.0.0", Newest: "v3.1.0",
				State: agent.StateIdle, LastCheck: at(-time.Minute), NextCheck: at(4 * time.Minute),
				DeployedAt: at(-48 * time.Hour), Deploys: 7, Phase: agent.PhaseBadVersion,
				Bad: []agent.BadVersion{{Version: "v3.1.0", At: at(-time.Hour), Reason: "release store: prepare docs.tar.gz: download docs.tar.gz: checksum mismatch: want 5e88c0a1, got 2cf24dba"}},
				LastError: "v3.1.0 is marked bad: release store: prepare docs.tar.gz: download docs.tar.gz: checksum mismatch: want 5e88c0a1, got 2cf24dba\n" +
					"it is not retried until a newer version appears or `dewy-agent retry -app docs` clears it"},
			{Name: "site", Registry: "file:///srv/releases/site", Runner: "assets", Deployed: "v1.0.0", Newest: "v1.0.0",
				State: agent.StateIdle, LastCheck: at(-5 * time.Second), NextCheck: at(55 * time.Second),
				DeployedAt: at(-time.Hour), Deploys: 1, Phase: agent.PhaseRunning},
			{Name: "video", Registry: "gs://acme-releases/video", Runner: "server", Newest: "v5.0.0",
				State: agent.StateDeploying, LastCheck: at(-20 * time.Second), Phase: agent.PhaseDownloading,
				Detail:   "120.0 MiB of 500.0 MiB at 30.0 MiB/s",
				Download: &agent.Progress{Artifact: "video_linux_amd64.tar.gz", Bytes: 120 << 20, Total: 500 << 20, Rate: 30 << 20}},
			{Name: "web", Registry: "img://127.0.0.1:5000/acme/web", Runner: "container", Deployed: "v2.0.0", Newest: "v2.1.0",
				State: agent.StateFailed, LastCheck: at(-3 * time.Second), NextCheck: at(2 * time.Second), Deploys: 2,
				DeployedAt: at(-3 * time.Hour),
				LastError:  "deploy v2.1.0: container: bad release: web-v2.1.0-0 not healthy within 30s: health check /healthz: connection refused\nswitch back: container web-v2.0.0-0 restarted",
				Workload:   &runners.Workload{Running: false, CrashLooping: true, Restarts: 5}, Phase: agent.PhaseCrashLooping},
		},
	}
}

// golden compares got with testdata/status/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "status", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", t.Name(), path, got, want)
	}
}

func TestStatusTable(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, statusReport(), statusNow)
	out := b.String()
	golden(t, "table.golden", out)
	// Each line of the table fits in 100 columns.
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(l)); n > tableWidth && !strings.HasPrefix(l, "agent ") {
			t.Errorf("line is %d columns wide, more than %d: %q", n, tableWidth, l)
		}
	}
	// What matters survives the shortening: the version and the innermost cause.
	if !strings.Contains(out, "exit status 3") || !strings.Contains(out, "deploy v2.1.0: …: connection refused") || !strings.Contains(out, "newest is bad") {
		t.Errorf("the table lost the causes:\n%s", out)
	}
}

func TestStatusApp(t *testing.T) {
	rep := statusReport()
	for _, name := range []string{"api", "docs", "site", "video", "web"} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			for _, a := range rep.Apps {
				if a.Name == name {
					printApp(&b, a, statusNow)
					if a.LastError != "" && !strings.Contains(b.String(), indent(a.LastError)) {
						t.Errorf("the full error is not printed:\n%s", b.String())
					}
				}
			}
			golden(t, "app-"+name+".golden", b.String())
		})
	}
}

func TestErrorSummary(t *testing.T) {
	tests := []struct {
		name, in string
		width    int
		want     string
	}{
		{"fits", "deploy v1: server: bad release: boom", 80, "deploy v1: server: bad release: boom"},
		{"middle parts dropped first", deployErr, 62, "deploy v0.2.0: …: exited before it was healthy (exit status 3)"},
		{"then the first part", deployErr, 61, "…: bad release: exited before it was healthy (exit status 3)"},
		{"only the end of the cause fits", deployErr, 40, "…" + deployErr[len(deployErr)-39:]},
		{"second line marked", "deploy v1: boom\nswitch back: ok", 80, "deploy v1: boom …"},
		{"no parts to drop", strings.Repeat("x", 90), 80, "…" + strings.Repeat("x", 79)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorSummary(tt.in, tt.width)
			if got != tt.want {
				t.Errorf("errorSummary(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
			}
			if n := len([]rune(got)); n > tt.width {
				t.Errorf("%d characters, want at most %d", n, tt.width)
			}
		})
	}
}

// TestStatusCommandApp runs `status -app` and `status -app -json` against an
// admin API answering with the report.
func TestStatusCommandApp(t *testing.T) {
	rep := statusReport()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(rep)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	code, stdout, stderr := runCLI("status", "-addr", addr, "-app", "web")
	if code != exitOK || !strings.Contains(stdout, "connection refused\n  switch back: container web-v2.0.0-0 restarted") {
		t.Fatalf("status -app web: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI("status", "-addr", addr, "-app", "api", "-json")
	var got agent.Status
	if err := json.Unmarshal([]byte(stdout), &got); code != exitOK || err != nil || got.LastError != deployErr || got.Workload == nil || got.Workload.PID != 4242 {
		t.Fatalf("status -app api -json: exit %d, %+v (%v)\n%s", code, got, err, stdout)
	}
	code, stdout, _ = runCLI("status", "-addr", addr, "-json")
	var all agent.StatusReport
	if err := json.Unmarshal([]byte(stdout), &all); code != exitOK || err != nil || len(all.Apps) != len(rep.Apps) || all.Apps[1].LastError != rep.Apps[1].LastError {
		t.Fatalf("status -json is not complete: exit %d, %v\n%s", code, err, stdout)
	}
	code, _, stderr = runCLI("status", "-addr", addr, "-app", "nope")
	if code != exitError || !strings.Contains(stderr, `no app "nope"`) {
		t.Fatalf("status -app nope: exit %d, %s", code, stderr)
	}
}

// TestStatusWatch: -watch redraws until interrupted, each frame a fresh status.
func TestStatusWatch(t *testing.T) {
	var frames int
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	code := watchStatus(ctx, time.Millisecond, false, &out, func(w io.Writer) int {
		frames++
		fmt.Fprintf(w, "frame %d\n", frames)
		if frames == 3 {
			cancel()
		}
		return exitOK
	})
	if code != exitOK || frames != 3 || !strings.Contains(out.String(), "frame 1\n") || !strings.Contains(out.String(), "frame 3\n") || strings.Count(out.String(), "\n--- ") != 3 {
		t.Fatalf("exit %d after %d frames:\n%s", code, frames, out.String())
	}
	out.Reset()
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	watchStatus(ctx, time.Hour, true, &out, func(w io.Writer) int { io.WriteString(w, "x"); return exitOK })
	if out.String() != "\033[H\033[2Jx" {
		t.Fatalf("terminal frame = %q", out.String())
	}
}
