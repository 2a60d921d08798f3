// Command idlemem measures the agent's resident memory when idle: it publishes one
// small release into a local folder registry, writes a config with N apps that all
// watch it (file source, assets runner), runs the agent binary, waits until every
// app has deployed, lets it idle, and reads the process's VmRSS and VmHWM.
//
//	go build -o bin/dewy-agent ./cmd/dewy-agent && go run ./bench/idlemem -agent bin/dewy-agent
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	agentBin := flag.String("agent", "bin/dewy-agent", "the dewy-agent binary")
	counts := flag.String("apps", "1,100", "comma-separated app counts to measure")
	idle := flag.Duration("idle", 10*time.Second, "how long to idle after the last deploy before reading memory")
	flag.Parse()
	fmt.Printf("%-6s %-12s %-12s %s\n", "apps", "VmRSS", "VmHWM", "deploy time")
	for _, c := range strings.Split(*counts, ",") {
		var n int
		fmt.Sscan(c, &n)
		rss, hwm, took, err := measure(*agentBin, n, *idle)
		if err != nil {
			fmt.Fprintln(os.Stderr, "idlemem:", err)
			os.Exit(1)
		}
		fmt.Printf("%-6d %-12s %-12s %s\n", n, rss, hwm, took.Round(time.Millisecond))
	}
}

func measure(agentBin string, n int, idle time.Duration) (rss, hwm string, took time.Duration, err error) {
	dir, err := os.MkdirTemp("", "dewy-idlemem-")
	if err != nil {
		return "", "", 0, err
	}
	defer os.RemoveAll(dir)
	if err := publish(filepath.Join(dir, "registry", "v1.0.0")); err != nil {
		return "", "", 0, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agent {\n  state_dir = %q\n  log_level = \"warn\"\n  admin = \"\"\n}\n", filepath.Join(dir, "state"))
	for i := range n {
		fmt.Fprintf(&b, "app \"app%03d\" {\n  registry = \"file://%s/registry\"\n  artifact = \"site.tar.gz\"\n  interval = \"30s\"\n  runner \"assets\" {}\n}\n", i, dir)
	}
	cfg := filepath.Join(dir, "dewy.hcl")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return "", "", 0, err
	}
	cmd := exec.Command(agentBin, "-config", cfg)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", "", 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	for deployed := 0; deployed < n; {
		if time.Since(start) > 2*time.Minute {
			return "", "", 0, fmt.Errorf("%d apps: only %d deployed after 2m", n, deployed)
		}
		time.Sleep(50 * time.Millisecond)
		deployed = 0
		for i := range n {
			var st struct{ Version string }
			data, err := os.ReadFile(filepath.Join(dir, "state", "apps", fmt.Sprintf("app%03d", i), "state.json"))
			if err == nil && json.Unmarshal(data, &st) == nil && st.Version != "" {
				deployed++
			}
		}
	}
	took = time.Since(start)
	time.Sleep(idle)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return "", "", 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "VmRSS:" {
			rss = f[1] + " " + f[2]
		}
		if len(f) >= 3 && f[0] == "VmHWM:" {
			hwm = f[1] + " " + f[2]
		}
	}
	return rss, hwm, took, nil
}

func publish(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "site.tar.gz"))
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	page := []byte("<h1>hello</h1>\n")
	if err := tw.WriteHeader(&tar.Header{Name: "index.html", Mode: 0o644, Size: int64(len(page))}); err != nil {
		return err
	}
	tw.Write(page)
	tw.Close()
	return gz.Close()
}
