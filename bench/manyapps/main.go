// Command manyapps measures the agent on a host with thousands of apps: it
// publishes one small release into a local folder registry, writes a config
// with N apps on it (file source, assets runner), runs the real agent binary
// and reports, from a cold start, the peak resident memory (VmHWM) and the
// time until every app has deployed; then, at rest, the resident memory, the
// CPU time used per minute and the number of goroutines.
//
//	go build -o bin/dewy-agent ./cmd/dewy-agent && go run ./bench/manyapps -agent bin/dewy-agent
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/archive"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func main() {
	agentBin := flag.String("agent", "bin/dewy-agent", "the dewy-agent binary")
	n := flag.Int("apps", 2000, "apps in the config file")
	parallel := flag.Int("parallel", 0, "max_parallel_deploys (0: the agent's default)")
	rest := flag.Duration("rest", time.Minute, "how long to measure the agent at rest after the last deploy")
	flag.Parse()
	if err := run(*agentBin, *n, *parallel, *rest); err != nil {
		fmt.Fprintln(os.Stderr, "manyapps:", err)
		os.Exit(1)
	}
}

func run(agentBin string, n, parallel int, rest time.Duration) error {
	dir, err := os.MkdirTemp("", "dewy-manyapps-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	reg := filepath.Join(dir, "registry", "v1.0.0")
	if err := os.MkdirAll(reg, 0o755); err != nil {
		return err
	}
	if err := archive.WriteFile(filepath.Join(reg, "site.tar.gz"), archive.TarGz, archive.File{Name: "index.html", Body: []byte("<h1>hello</h1>\n")}); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agent {\n  state_dir = %q\n  log_level = \"warn\"\n  admin = %q\n", filepath.Join(dir, "state"), addr)
	if parallel > 0 {
		fmt.Fprintf(&b, "  max_parallel_deploys = %d\n", parallel)
	}
	b.WriteString("}\n")
	for i := range n {
		fmt.Fprintf(&b, "app \"app%04d\" {\n  registry = \"file://%s/registry\"\n  artifact = \"site.tar.gz\"\n  interval = \"30s\"\n  runner \"assets\" {}\n}\n", i, dir)
	}
	cfg := filepath.Join(dir, "dewy.hcl")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(agentBin, "-config", cfg)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	deployed := make([]bool, n)
	for left := n; left > 0; {
		if time.Since(start) > 3*time.Minute {
			return fmt.Errorf("only %d of %d apps deployed after 3m", n-left, n)
		}
		time.Sleep(100 * time.Millisecond)
		for i := range n {
			if deployed[i] {
				continue
			}
			if testkit.DeployedVersion(filepath.Join(dir, "state"), fmt.Sprintf("app%04d", i)) != "" {
				deployed[i] = true
				left--
			}
		}
	}
	took := time.Since(start)
	peak, _ := testkit.ProcKiB(pid, "status", "VmHWM:")
	startCPU, _ := cpuTime(pid)
	slots := "default"
	if parallel > 0 {
		slots = strconv.Itoa(parallel)
	}
	fmt.Printf("cold start: %d apps, max_parallel_deploys %s: all deployed in %s (agent CPU %s), peak RSS %d kB\n", n, slots, took.Round(10*time.Millisecond), startCPU, peak)

	// At rest: let the start-up settle for one poll interval, then measure.
	time.Sleep(30 * time.Second)
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	time.Sleep(rest)
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	rss, _ := testkit.ProcKiB(pid, "status", "VmRSS:")
	g, err := goroutines(addr)
	if err != nil {
		return err
	}
	perMin := time.Duration(float64(cpu1-cpu0) * float64(time.Minute) / float64(rest))
	fmt.Printf("at rest: RSS %d kB, CPU %s per minute, %d goroutines\n", rss, perMin.Round(time.Millisecond), g)
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// cpuTime is the user and system CPU time pid has used.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// goroutines reads go_goroutines from the agent's /metrics.
func goroutines(addr string) (int, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "go_goroutines "); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics")
}
