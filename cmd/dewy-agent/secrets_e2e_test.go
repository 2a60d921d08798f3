package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// secretScan holds recognisable secrets and checks texts for them.
type secretScan struct {
	t       *testing.T
	secrets map[string]string // variable name -> value
	seen    strings.Builder
}

// look fails the test when s shows any secret's value.
func (sc *secretScan) look(surface, s string) {
	sc.t.Helper()
	sc.seen.WriteString(s)
	for k, v := range sc.secrets {
		if strings.Contains(s, v) {
			sc.t.Errorf("%s shows the value of %s:\n%s", surface, k, s)
		}
	}
}

// recorder is an HTTP endpoint that keeps every request body it receives.
type recorder struct {
	mu     sync.Mutex
	bodies []string
	srv    *httptest.Server
}

func newRecorder(t *testing.T, answer string) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, req.URL.Path+"\n"+string(b))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.bodies, "\n---\n")
}

// TestSecretsStayWithTheAgent gives the agent recognisable secrets through
// every path it reads them (its environment, env() in a runner's env, a hook's
// env, a notifier URL's password, a bad interval; a GitHub token; Slack's and
// mail's variables) and scans every surface for them: its log at debug,
// status text and JSON, /metrics, state.json, the 422 answer of POST /reload,
// validate's and plan's output, the environments of a hook and of a server
// app's process, and the notifications a webhook and Slack receive.
func TestSecretsStayWithTheAgent(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	sc := &secretScan{t: t, secrets: map[string]string{
		"SLACK_TOKEN":           "xoxb-e2e-secret-slack-0001",
		"DB_PASSWORD":           "e2e-secret-db-password-0002",
		"GITHUB_TOKEN":          "ghp_e2e_secret_github_0003",
		"AWS_SECRET_ACCESS_KEY": "e2e-secret-aws-key-0004",
		"HOOK_PASS":             "e2e-secret-notify-pass-0005",
		"MAIL_PASSWORD":         "e2e-secret-mail-pass-0006",
		"DEPLOY_KEY":            "e2e-secret-deploy-key-0007",
	}}
	var env []string
	for k, v := range sc.secrets {
		t.Setenv(k, v) // for validate and plan, which run in this process
		env = append(env, k+"="+v)
	}

	e := newEnv(t)
	dir, reg, state, cfg := e.dir, e.reg, e.state, e.cfg
	// A file registry with a site and the server test app.
	e.publishTestApp(t)("v1.0.0")
	e.publishSite(t, "v1.0.0")
	// A GitHub release, read with GITHUB_TOKEN.
	gh := fakegithub.New(t)
	gh.RequireToken(sc.secrets["GITHUB_TOKEN"])
	ghArtifact := fmt.Sprintf("docs_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	ghBody := testkit.TarGz(map[string]string{"index.html": "v2.0.0\n"})
	gh.AddRelease("acme", "docs", fakegithub.Release{Tag: "v2.0.0", Published: time.Now().Add(-time.Hour), Assets: map[string][]byte{
		ghArtifact: ghBody, "SHA256SUMS": []byte(sha256Line(ghBody, ghArtifact)),
	}})
	env = append(env, "GITHUB_API_URL="+gh.URL(), "GH_TOKEN=")
	// Notifications: a webhook and Slack's Web API.
	hook := newRecorder(t, `{}`)
	slack := newRecorder(t, `{"ok":true}`)
	env = append(env, "SLACK_API_URL="+slack.srv.URL+"/")

	hookEnvFile := filepath.Join(dir, "hook-env.txt")
	addr := freeAddr(t)
	port := freePort(t)
	text := fmt.Sprintf(`
agent {
  state_dir = %q
  admin     = %q
  log_level = "debug"
  notify    = [
    "http://dewy:${env("HOOK_PASS")}@%s/hook",
    "slack://deploys",
    "mail://dewy@127.0.0.1:1/ops@example.com",
  ]
}
app "site" {
  registry = "file://%s?artifact=site.tar.gz"
  interval = "1h"
  runner "assets" {}
  hooks {
    before_deploy = "env > %s"
    env = { LOG_DIR = "/var/log/site" }
  }
}
app "broken" {
  registry = "file://%s?artifact=site.tar.gz"
  interval = "1h"
  runner "assets" {}
  hooks {
    before_deploy = "echo \"deploy key is $DEPLOY_KEY\"; exit 1"
    env = { DEPLOY_KEY = env("DEPLOY_KEY") }
  }
}
app "web" {
  registry = "file://%s"
  interval = "1h"
  runner "server" {
    command      = ["./run.sh"]
    ports        = [%d]
    health_path  = "/health"
    crash_window = "1s"
    env          = { APP_MODE = "scan" }
  }
}
app "docs" {
  registry = "ghr://acme/docs"
  interval = "1h"
  runner "assets" {}
}
`, state, addr, strings.TrimPrefix(hook.srv.URL, "http://"), reg, hookEnvFile, reg, reg, port)
	writeFile(t, cfg, []byte(text))

	_, out, errOut := runCLI("plan", "-config", cfg)
	sc.look("plan", out+errOut)

	p := startAgent(t, cfg, env...)
	waitVersion(t, p, state, "site", "v1.0.0")
	waitState(t, p, state, "web", "v1.0.0")
	waitVersion(t, p, state, "docs", "v2.0.0")
	testkit.Eventually(t, 10*time.Second, "the broken app's hook to run", func() bool { return strings.Contains(p.logs(), "deploy key is") })

	// The server app's and the hook's environments.
	pids := appPIDsUnder(t, dir, "testapp")
	if len(pids) == 0 {
		t.Fatal("no server app process")
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	appEnv := string(bytes.ReplaceAll(environ, []byte{0}, []byte{'\n'}))
	if !strings.Contains(appEnv, "APP_MODE=scan") || !strings.Contains(appEnv, "LISTEN_FDS=") {
		t.Errorf("the app's environment lacks its own variables:\n%s", appEnv)
	}
	sc.look("the server app's environment", appEnv)
	hookEnv := readFile(hookEnvFile)
	if !strings.Contains(hookEnv, "LOG_DIR=/var/log/site") || !strings.Contains(hookEnv, "DEWY_APP=site") {
		t.Errorf("the hook's environment lacks its own variables:\n%s", hookEnv)
	}
	sc.look("the hook's environment", hookEnv)

	// Notifications: the deploys and the failed hook reach both services.
	testkit.Eventually(t, 15*time.Second, "the webhook and Slack to hear of the deploys and the failed hook", func() bool {
		h, s := hook.all(), slack.all()
		return strings.Contains(h, "deploy key is") && strings.Contains(s, "deploy key is") &&
			strings.Contains(h, "docs") && strings.Contains(s, "docs")
	})

	_, out, errOut = runCLI("status", "-addr", addr)
	sc.look("status", out+errOut)
	_, out, errOut = runCLI("status", "-addr", addr, "-json")
	sc.look("status -json", out+errOut)
	_, out, errOut = runCLI("status", "-addr", addr, "-app", "broken")
	sc.look("status -app broken", out+errOut)
	metrics := get("http://" + addr + "/metrics")
	if !strings.Contains(metrics, "dewy_") {
		t.Fatalf("no metrics:\n%s", metrics)
	}
	sc.look("/metrics", metrics)
	for _, app := range []string{"site", "broken", "web", "docs"} {
		sc.look(app+"'s state.json", readFile(filepath.Join(state, "apps", app, "state.json")))
	}

	// A reload whose interval comes from env(): refused, and the answer
	// names the expression.
	writeFile(t, cfg, []byte(strings.Replace(text, `interval = "1h"`, `interval = env("SLACK_TOKEN")`, 1)))
	resp, err := http.Post("http://"+addr+"/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("POST /reload with a bad interval: %s\n%s", resp.Status, body)
	}
	sc.look("POST /reload", string(body))
	if !strings.Contains(string(body), `the value of env(\"SLACK_TOKEN\")`) && !strings.Contains(string(body), `the value of env("SLACK_TOKEN")`) {
		t.Errorf("the reload answer does not name the expression:\n%s", body)
	}
	_, out, errOut = runCLI("status", "-addr", addr)
	sc.look("status after the failed reload", out+errOut)
	_, out, errOut = runCLI("status", "-addr", addr, "-json")
	sc.look("status -json after the failed reload", out+errOut)

	_, out, errOut = runCLI("validate", "-config", cfg)
	sc.look("validate", out+errOut)
	if !strings.Contains(out+errOut, `the value of env("SLACK_TOKEN") is not a duration`) {
		t.Errorf("validate does not name the expression:\n%s%s", out, errOut)
	}

	// Last, so they hold everything above.
	sc.look("the webhook's notifications", hook.all())
	sc.look("Slack's notifications", slack.all())
	sc.look("the agent's log", p.logs())
	if sc.seen.Len() == 0 {
		t.Fatal("no surface had any text")
	}
}

// TestSecretsInEverySyntax checks that validate names the env() expression,
// never its value, in each of the three config syntaxes.
func TestSecretsInEverySyntax(t *testing.T) {
	const secret = "e2e-secret-syntax-0008"
	t.Setenv("SYNTAX_SECRET", secret)
	dir := t.TempDir()
	files := map[string]string{
		"dewy.hcl":  "app \"site\" {\n  registry = \"file:///srv/site\"\n  interval = env(\"SYNTAX_SECRET\")\n  runner \"assets\" {}\n}\n",
		"dewy.json": `{"app": {"site": {"registry": "file:///srv/site", "interval": "${env(\"SYNTAX_SECRET\")}", "runner": {"assets": {}}}}}`,
		"dewy.yaml": "app:\n  site:\n    registry: file:///srv/site\n    interval: ${env(\"SYNTAX_SECRET\")}\n    runner: {assets: {}}\n",
	}
	for name, text := range files {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(dir, name)
			writeFile(t, cfg, []byte(text))
			code, out, errOut := runCLI("validate", "-config", cfg)
			if code == 0 {
				t.Fatalf("validate accepted a bad interval:\n%s%s", out, errOut)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("validate shows the secret:\n%s%s", out, errOut)
			}
			if !strings.Contains(out+errOut, `env("SYNTAX_SECRET")`) {
				t.Errorf("validate does not name the expression:\n%s%s", out, errOut)
			}
		})
	}
}
