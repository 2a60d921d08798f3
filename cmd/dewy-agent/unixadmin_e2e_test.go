package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestAdminOnUnixSocket: with admin = "unix:///path", the agent listens on a
// socket of mode 0660 and status and retry reach it through -config (or
// -addr unix://...).
func TestAdminOnUnixSocket(t *testing.T) {
	testkit.Slow(t, "runs the agent")
	e := newEnv(t)
	sock := filepath.Join(e.dir, "run", "admin.sock")
	e.publishSite(t, "v1.0.0")
	e.writeConfig(t, fmt.Sprintf("admin = \"unix://%s\"", sock), e.siteApp())
	state, cfg := e.state, e.cfg
	if code, _, stderr := runCLI("validate", "-config", cfg); code != exitOK {
		t.Fatalf("validate: %s", stderr)
	}
	p := startAgent(t, cfg)
	waitVersion(t, p, state, "site", "v1.0.0")
	deadline := time.Now().Add(10 * time.Second)
	var fi os.FileInfo
	var err error
	for time.Now().Before(deadline) {
		if fi, err = os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no socket: %v", err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode = %v, want a socket with 0660", fi.Mode())
	}
	code, stdout, stderr := runCLI("status", "-config", cfg)
	if code != exitOK || !strings.Contains(stdout, "site") || !strings.Contains(stdout, "v1.0.0") {
		t.Fatalf("status -config: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr = runCLI("status", "-addr", "unix://"+sock, "-app", "site"); code != exitOK || !strings.Contains(stdout, "running") {
		t.Fatalf("status -addr unix://: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr = runCLI("retry", "-config", cfg, "-app", "site"); code != exitOK || !strings.Contains(stdout, "bad versions forgotten") {
		t.Fatalf("retry -config: exit %d\n%s%s", code, stdout, stderr)
	}
	p.stop(t)
}
