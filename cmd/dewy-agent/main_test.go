package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// agentBin is the dewy-agent binary built once for the end-to-end tests.
var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dewy-agent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "dewy-agent")
	out, err := exec.Command("go", "build", "-o", agentBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build dewy-agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running agent with its log captured.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan error
}

func startAgent(t *testing.T, cfg string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(agentBin, "-config", cfg)
	cmd.Env = append(os.Environ(), env...)
	return startAgentCmd(t, cmd)
}

// startAgentCmd is startAgent for a command the test made (say, one that
// passes descriptors as systemd does).
func startAgentCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	p.cmd.Stdout = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			p.mu.Lock()
			p.log.WriteString(s.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { err := p.cmd.Wait(); pw.Close(); p.done <- err }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("agent log:\n%s", p.logs())
		}
	})
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("agent exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not stop within 15s of SIGTERM")
	}
}

type appState struct {
	Version string `json:"version"`
	Deploys int    `json:"deploys"`
	SHA256  string `json:"sha256"`
}

func readState(t *testing.T, stateDir, app string) appState {
	t.Helper()
	var st appState
	b, err := os.ReadFile(filepath.Join(stateDir, "apps", app, "state.json"))
	if err == nil {
		json.Unmarshal(b, &st)
	}
	return st
}

// waitVersion waits until the app's current release holds index.html with want.
func waitVersion(t *testing.T, p *proc, stateDir, app, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(stateDir, "apps", app, "current", "index.html"))
		if err == nil && strings.TrimSpace(string(b)) == want && readState(t, stateDir, app).Version == want {
			return
		}
		select {
		case err := <-p.done:
			t.Fatalf("agent exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(filepath.Join(stateDir, "apps", app, "current", "index.html"))
	t.Fatalf("%s: current holds %q, want %q after 30s", app, b, want)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// env is an end-to-end test's folder: a file registry, the agent's state
// dir and its config file.
type env struct {
	dir, reg, state, cfg string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{dir: dir, reg: filepath.Join(dir, "registry"), state: filepath.Join(dir, "state"), cfg: filepath.Join(dir, "dewy.hcl")}
}

// writeConfig writes the config file: an agent block with the state dir
// and agentLines, then the apps.
func (e *env) writeConfig(t *testing.T, agentLines string, apps ...string) {
	t.Helper()
	text := fmt.Sprintf("agent {\n  state_dir = %q\n  %s\n}\n", e.state, agentLines) + strings.Join(apps, "\n")
	writeFile(t, e.cfg, []byte(text))
}

// publishSite puts version v of the assets app "site" in the registry: a
// site.tar.gz whose index.html holds v.
func (e *env) publishSite(t *testing.T, v string) {
	t.Helper()
	writeFile(t, filepath.Join(e.reg, v, "site.tar.gz"), testkit.TarGz(map[string]string{"index.html": v + "\n"}))
}

// siteApp is the config of the assets app "site" from the registry; lines
// go in the app block.
func (e *env) siteApp(lines ...string) string {
	return fmt.Sprintf("app \"site\" {\n  registry = \"file://%s?artifact=site.tar.gz\"\n  %s\n  runner \"assets\" {}\n}\n", e.reg, strings.Join(lines, "\n  "))
}

// publishTestApp builds testdata/testapp and returns a publish that puts
// version v of the server app "web" in the registry, started by run.sh as
// "exec ./testapp -version v flags...".
func (e *env) publishTestApp(t *testing.T) (publish func(v string, flags ...string)) {
	t.Helper()
	app, err := testkit.BuildTestApp(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := os.ReadFile(app)
	return func(v string, flags ...string) {
		writeFile(t, filepath.Join(e.reg, v, testkit.Artifact("web")), testkit.TestAppRelease(bin, testkit.TestAppCommand(v, flags...)))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func sleep() { time.Sleep(50 * time.Millisecond) }

// sha256Line is one SHA256SUMS line for data named name.
func sha256Line(data []byte, name string) string {
	return fmt.Sprintf("%x  %s\n", sha256.Sum256(data), name)
}
