// Command agentcrash measures what an agent crash costs a server app: a real
// dewy-agent binary runs a server app (testdata/testapp) from a file:// registry
// while N connections send requests without pause; the agent is killed with -9
// and started again, K times, and after the last restart a new version is
// deployed. It prints the requests sent and failed (the goal is 0) and whether
// each restart adopted the app (the same pid still serving).
//
// With -proxy the app runs in proxy mode (`proxy = true`): the agent proxies
// its port, and the socket outlives the agent in the app's hands.
//
//	go run ./bench/agentcrash -agent bin/dewy-agent [-conns 8] [-kills 10] [-proxy]
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func main() {
	agent := flag.String("agent", "bin/dewy-agent", "the dewy-agent binary")
	conns := flag.Int("conns", 8, "concurrent connections sending requests (half with keep-alive)")
	kills := flag.Int("kills", 10, "kill -9 and restart the agent this many times")
	proxy := flag.Bool("proxy", false, "run the app in proxy mode (proxy = true)")
	flag.Parse()
	if err := run(*agent, *conns, *kills, *proxy); err != nil {
		fmt.Fprintln(os.Stderr, "agentcrash:", err)
		os.Exit(1)
	}
}

// agentProc is a running agent and its log.
type agentProc struct {
	cmd *exec.Cmd
	log testkit.LogBuffer
}

func (a *agentProc) logs() string { return a.log.String() }

func start(bin, cfg string) (*agentProc, error) {
	a := &agentProc{cmd: exec.Command(bin, "-config", cfg)}
	a.cmd.Stdout, a.cmd.Stderr = &a.log, &a.log
	return a, a.cmd.Start()
}

func run(bin string, conns, kills int, proxy bool) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("agent binary: %w (make build)", err)
	}
	bin, _ = filepath.Abs(bin)
	dir, err := os.MkdirTemp("", "dewy-agentcrash-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := testkit.BuildTestApp(dir)
	if err != nil {
		return err
	}
	appBin, err := os.ReadFile(app)
	if err != nil {
		return err
	}
	reg := filepath.Join(dir, "registry")
	publish := func(v string) error {
		p := filepath.Join(reg, v, testkit.Artifact("web"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, testkit.TestAppRelease(appBin, testkit.TestAppCommand(v)), 0o644)
	}
	port, err := testkit.FreePort()
	if err != nil {
		return err
	}
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "dewy.hcl")
	text := fmt.Sprintf("agent {\n  state_dir = %q\n  admin     = \"\"\n}\n", state) +
		testkit.ServerApp("web", reg, port, `stop_timeout = "5s"`, `crash_window = "1s"`, fmt.Sprintf("proxy = %t", proxy))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) string {
		c := &http.Client{Timeout: 2 * time.Second}
		s, _ := testkit.Get(c, url+path)
		return strings.TrimSpace(s)
	}
	waitFor := func(what string, cond func() bool) error {
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("timed out waiting for %s", what)
			}
		}
		return nil
	}
	deployed := func(v string) func() bool {
		return func() bool {
			b, _ := os.ReadFile(filepath.Join(state, "apps", "web", "state.json"))
			return get("/version") == v && strings.Contains(string(b), `"version": "`+v+`"`) && !strings.Contains(string(b), `"deploying"`)
		}
	}

	if err := publish("v1.0.0"); err != nil {
		return err
	}
	a, err := start(bin, cfg)
	if err != nil {
		return err
	}
	defer func() {
		a.cmd.Process.Signal(syscall.SIGTERM)
		a.cmd.Wait()
	}()
	if err := waitFor("v1.0.0 deployed", deployed("v1.0.0")); err != nil {
		return fmt.Errorf("%w\n%s", err, a.logs())
	}
	pid := get("/pid")
	load := testkit.StartLoad(url+"/version", testkit.LoadOptions{Workers: conns, KeepAlive: testkit.KeepAliveHalf})
	began := time.Now()
	adopted := 0
	var downs []time.Duration
	for i := range kills {
		time.Sleep(500 * time.Millisecond)
		a.cmd.Process.Signal(syscall.SIGKILL)
		a.cmd.Wait()
		killed := time.Now()
		if a, err = start(bin, cfg); err != nil {
			return err
		}
		if err := waitFor("adoption", func() bool { return strings.Contains(a.logs(), "adopted the generation") }); err != nil {
			return fmt.Errorf("restart %d: %w\n%s", i+1, err, a.logs())
		}
		downs = append(downs, time.Since(killed))
		if get("/pid") == pid {
			adopted++
		}
	}
	if err := publish("v1.1.0"); err != nil {
		return err
	}
	if err := waitFor("v1.1.0 deployed after the restarts", deployed("v1.1.0")); err != nil {
		return fmt.Errorf("%w\n%s", err, a.logs())
	}
	res := load.Stop()
	mode := "socket hand-off"
	if proxy {
		mode = "proxy mode"
	}
	fmt.Printf("%s: agent killed with -9 and restarted %d times under load (%d connections, half keep-alive), then one deploy\n", mode, kills, conns)
	fmt.Printf("requests: %d sent, %d failed in %s\n", res.Sent, res.Failed, time.Since(began).Round(time.Millisecond))
	for _, e := range res.Errors {
		fmt.Println("  failure:", e)
	}
	fmt.Printf("restarts that adopted the same app process: %d of %d\n", adopted, kills)
	var worst time.Duration
	for _, d := range downs {
		worst = max(worst, d)
	}
	fmt.Printf("kill to adoption logged: max %s\n", worst.Round(time.Millisecond))
	fmt.Printf("latency p50 %s p99 %s max %s\n", res.Quantile(0.5), res.Quantile(0.99), res.Quantile(1))
	if res.Failed != 0 || adopted != kills {
		return fmt.Errorf("%d requests failed, %d of %d restarts adopted the app", res.Failed, adopted, kills)
	}
	return nil
}
