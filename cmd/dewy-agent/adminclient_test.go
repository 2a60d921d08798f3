package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// startInProcessAgent runs an agent with the admin API on a free loopback
// port and admin_token = token, and no apps.
func startInProcessAgent(t *testing.T, token string) string {
	t.Helper()
	dir := t.TempDir()
	reg := filepath.Join(dir, "registry", "v1.0.0")
	if err := os.MkdirAll(reg, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(reg, "site.tar.gz"), testkit.TarGz(map[string]string{"index.html": "v1\n"}))
	t.Setenv("DEWY_CLI_TEST_TOKEN", token)
	src := fmt.Sprintf(`agent {
  state_dir   = %q
  admin       = "127.0.0.1:0"
  admin_token = env("DEWY_CLI_TEST_TOKEN")
}
app "web" {
  registry = "file://%s"
  interval = "1h"
  runner "assets" {}
}
`, filepath.Join(dir, "state"), filepath.Dir(reg))
	cfg, diags := config.Parse(filepath.Join(dir, "dewy.hcl"), []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := agent.New(cfg, agent.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.Eventually(t, 10e9, "admin API up", func() bool { return a.AdminAddr() != "" })
	return a.AdminAddr()
}

func TestCLIAdminErrors(t *testing.T) {
	const token = "cli-token-5d1e"
	addr := startInProcessAgent(t, token)
	notAgent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<html>nothing here</html>")
	}))
	defer notAgent.Close()
	notAgentAddr := strings.TrimPrefix(notAgent.URL, "http://")

	tests := []struct {
		name      string
		envToken  string
		args      []string
		wantCode  int
		wantOut   string
		wantErr   string
		forbidden []string
	}{
		{name: "retry with the token from the environment", envToken: token, args: []string{"retry", "-addr", addr, "-app", "web"},
			wantCode: exitOK, wantOut: "web: bad versions forgotten"},
		{name: "retry with the token flag", args: []string{"retry", "-addr", addr, "-app", "web", "-token", token},
			wantCode: exitOK, wantOut: "web: bad versions forgotten"},
		{name: "retry of an unknown app", envToken: token, args: []string{"retry", "-addr", addr, "-app", "nope"},
			wantCode: exitError, wantErr: "dewy-agent retry: the agent has no app named \"nope\"\n"},
		{name: "retry without the token", args: []string{"retry", "-addr", addr, "-app", "web"},
			wantCode: exitError, wantErr: "dewy-agent retry: the admin API needs a token: set DEWY_ADMIN_TOKEN or pass -token"},
		{name: "status with the token", envToken: token, args: []string{"status", "-addr", addr},
			wantCode: exitOK, wantOut: "web"},
		{name: "status without the token", args: []string{"status", "-addr", addr},
			wantCode: exitError, wantErr: "the admin API needs a token"},
		{name: "status of no agent", args: []string{"status", "-addr", "127.0.0.1:1"},
			wantCode: exitError, wantErr: "dewy-agent status: cannot reach the agent at 127.0.0.1:1 (", forbidden: []string{"Get \"http"}},
		{name: "status against something else", args: []string{"status", "-addr", notAgentAddr},
			wantCode: exitError, wantErr: "answered 404 Not Found, which a dewy-agent admin API does not; is it the agent's admin address?", forbidden: []string{"<nil>", "<html>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(adminTokenEnv, tt.envToken)
			code, out, errOut := runCLI(tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			for _, f := range append(tt.forbidden, token) {
				if strings.Contains(errOut, f) {
					t.Errorf("stderr holds %q: %s", f, errOut)
				}
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("error is more than one line: %q", errOut)
			}
		})
	}
}
