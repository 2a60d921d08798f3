package server

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
)

func TestCleanEnviron(t *testing.T) {
	t.Parallel()
	agent := []string{
		"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "TZ=UTC", "USER=dewy",
		"GITHUB_TOKEN=ghp_secret", "AWS_SECRET_ACCESS_KEY=aws-secret", "HTTP_PROXY=http://proxy:3128",
		"DEWY_ENV=prod", "LISTEN_FDS=3", "LISTEN_PID=1", "LISTEN_FDNAMES=x", "SERVER_STARTER_PORT=1=3",
	}
	tests := []struct {
		name    string
		inherit []string
		want    []string
	}{
		{"defaults", nil, []string{"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "TZ=UTC", "USER=dewy", "DEWY_ENV=prod"}},
		{"inherit by name", []string{"HTTP_PROXY", "NOT_SET"}, []string{"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "TZ=UTC", "USER=dewy", "HTTP_PROXY=http://proxy:3128", "DEWY_ENV=prod"}},
		{"socket variables never inherited", []string{"LISTEN_FDS"}, []string{"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "TZ=UTC", "USER=dewy", "DEWY_ENV=prod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := cleanEnviron(agent, tt.inherit); !slices.Equal(got, tt.want) {
				t.Errorf("cleanEnviron(%v) = %v, want %v", tt.inherit, got, tt.want)
			}
		})
	}
}

// TestAppEnvironmentIsClean starts a real app process with secrets in the
// agent's environment and reads the environment the process got.
func TestAppEnvironmentIsClean(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("GITHUB_TOKEN", "ghp_recognisable_secret_1")
	t.Setenv("SLACK_TOKEN", "xoxb-recognisable-secret-2")
	t.Setenv("HTTP_PROXY", "http://proxy.internal:3128")
	t.Setenv("DEWY_TEST_FLAG", "kept")
	h := newHome(t)
	dir := filepath.Join(h.root, "releases", "clean")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "env")
	script := "#!/bin/sh\nenv > \"$ENV_OUT.tmp\" && mv \"$ENV_OUT.tmp\" \"$ENV_OUT\"\nexec \"$TESTAPP\" \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "bin", "app"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(1)
	cfg.Command = []string{"bin/app", "-convention", "auto"}
	cfg.Env = map[string]string{"ENV_OUT": out, "TESTAPP": testapp}
	cfg.InheritEnv = []string{"HTTP_PROXY"}
	s, _ := newServer(t, cfg)
	if err := s.Resume(t.Context(), runners.Deployment{Version: "clean", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	var env string
	testkit.Eventually(t, 10*time.Second, "the app wrote its environment", func() bool {
		b, err := os.ReadFile(out)
		env = string(b)
		return err == nil
	})
	for _, secret := range []string{"ghp_recognisable_secret_1", "xoxb-recognisable-secret-2"} {
		if strings.Contains(env, secret) {
			t.Errorf("the app's environment holds a secret of the agent:\n%s", env)
		}
	}
	for _, want := range []string{"HTTP_PROXY=http://proxy.internal:3128", "DEWY_TEST_FLAG=kept", "PATH=", "LISTEN_FDS=", "SERVER_STARTER_PORT="} {
		if !strings.Contains(env, want) {
			t.Errorf("the app's environment lacks %s:\n%s", want, env)
		}
	}
}
