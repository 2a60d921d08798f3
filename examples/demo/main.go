// Command demo shows dewy-agent's main job end to end on this machine, with nothing
// but a local folder as the registry: it builds a small web app, publishes v1.0.0,
// runs the agent on examples/demo.hcl, shows the app answering, then publishes
// v1.1.0 and shows the agent upgrading it live while requests keep flowing.
//
//	go run ./examples/demo -agent ./bin/dewy-agent -config examples/demo.hcl
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/archive"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func main() {
	agentBin := flag.String("agent", "./bin/dewy-agent", "the dewy-agent binary")
	cfg := flag.String("config", "examples/demo.hcl", "the demo config file")
	keep := flag.Bool("keep", false, "keep the demo folder afterwards")
	flag.Parse()
	if err := run(*agentBin, *cfg, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(agentBin, cfg string, keep bool) error {
	dir, done, err := testkit.WorkDir("dewy-demo-", keep, say)
	if err != nil {
		return err
	}
	defer done()
	registry := filepath.Join(dir, "registry", "web")
	port, err := testkit.FreePort()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	say("1. building the sample web app (examples/demo/webapp) as v1.0.0 and publishing it to %s", registry)
	if err := publish(dir, registry, "v1.0.0"); err != nil {
		return err
	}

	say("2. starting the agent: %s -config %s", agentBin, cfg)
	agent := exec.Command(agentBin, "-config", cfg)
	agent.Env = append(os.Environ(), "DEMO_DIR="+dir, "DEMO_PORT="+strconv.Itoa(port))
	agent.Stdout, agent.Stderr = prefix("   agent | "), prefix("   agent | ")
	if err := agent.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	defer func() {
		agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			agent.Process.Kill()
		}
	}()

	if err := waitFor(url, "v1.0.0", exited); err != nil {
		return err
	}
	say("3. the app answers at %s: %q", url, fetch(url))

	say("4. sending requests continuously, and publishing v1.1.0; the agent polls every second")
	load := testkit.StartLoad(url, testkit.LoadOptions{Workers: 4})
	if err := publish(dir, registry, "v1.1.0"); err != nil {
		return err
	}
	err = waitFor(url, "v1.1.0", exited)
	time.Sleep(time.Second) // keep the load on while the old version drains
	res := load.Stop()
	if err != nil {
		return err
	}
	say("5. the app now answers: %q", fetch(url))
	say("   during the upgrade: %d requests, %d failed", res.Sent, res.Failed)
	target, _ := os.Readlink(filepath.Join(dir, "state", "apps", "web", "current"))
	say("   current -> %s", target)
	if res.Failed > 0 {
		return fmt.Errorf("%d requests failed during the upgrade; first: %s", res.Failed, res.Errors[0])
	}
	say("done: v1.0.0 was deployed, then replaced by v1.1.0 without one failed request")
	time.Sleep(2500 * time.Millisecond) // let the agent finish the deploy and log it before it stops
	return nil
}

// publish builds the web app as version and writes it into registry/<version>/
// as webapp_<os>_<arch>.tar.gz, atomically so the agent never sees half a file.
func publish(work, registry, version string) error {
	bin := filepath.Join(work, "build", version, "webapp")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", bin, "./examples/demo/webapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build webapp: %v\n%s", err, out)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	dir := filepath.Join(registry, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := fmt.Sprintf("webapp_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	return archive.WriteFile(filepath.Join(dir, name), archive.TarGz, archive.File{Name: "webapp", Body: body, Mode: 0o755})
}

func waitFor(url, want string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the agent exited: %v", err)
		default:
		}
		if strings.Contains(fetch(url), want) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within 60s", url, want)
}

func fetch(url string) string {
	s, _ := testkit.Get(http.DefaultClient, url)
	return strings.TrimSpace(s)
}

func say(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }

type prefixWriter struct{ prefix string }

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			fmt.Print(p.prefix + line)
		}
	}
	return len(b), nil
}

func prefix(s string) io.Writer { return prefixWriter{s} }
