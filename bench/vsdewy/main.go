// Command vsdewy puts the agent's idle memory next to Dewy's (github.com/linyows/dewy,
// the tool dewy-agent grew from) on the same fake GitHub API. It publishes one small
// release with an asset for this OS and architecture, then for each count N runs N
// Dewy processes in assets mode (one per app, each in its own directory) and one
// dewy-agent with N ghr:// apps, all polling every 30 s. It waits until every app has
// deployed, idles, and sums VmRSS and Pss (the process's share of pages mapped by
// several processes, such as N copies of one binary) over the processes.
//
// The Dewy binary is built separately from Dewy's own source; this program only runs it:
//
//	make build && go run ./bench/vsdewy -agent bin/dewy-agent -dewy /tmp/dewy
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

const (
	owner, repo = "acme", "site"
	interval    = 30 * time.Second
)

func main() {
	agentBin := flag.String("agent", "bin/dewy-agent", "the dewy-agent binary")
	dewyBin := flag.String("dewy", "", "the Dewy binary (built from github.com/linyows/dewy)")
	counts := flag.String("apps", "1,100", "comma-separated app counts to measure")
	idle := flag.Duration("idle", 40*time.Second, "how long to idle after the last deploy before reading memory (the agent trims start-up memory 30 s after start)")
	flag.Parse()
	if *dewyBin == "" {
		fmt.Fprintln(os.Stderr, "vsdewy: -dewy is required")
		os.Exit(2)
	}
	if err := run(*agentBin, *dewyBin, *counts, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "vsdewy:", err)
		os.Exit(1)
	}
}

func run(agentBin, dewyBin, counts string, idle time.Duration) error {
	tb := &testkit.ProgramTB{}
	defer tb.Close()
	gh := fakegithub.New(tb)
	asset := fmt.Sprintf("site_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	body := testkit.TarGz(map[string]string{"index.html": "<h1>hello</h1>\n"})
	gh.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.0.0", Published: time.Now().Add(-time.Hour), Assets: map[string][]byte{asset: body}})
	if err := tb.Err(); err != nil {
		return err
	}
	// Dewy follows the download's redirect with its authenticated client, so
	// its token reaches the storage server, which the fake fails by default.
	gh.AllowTokenOnStorage()
	fmt.Printf("%-11s %-5s %-10s %-14s %-14s %s\n", "tool", "apps", "processes", "sum VmRSS", "sum Pss", "deploy time")
	for _, c := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			return fmt.Errorf("app count %q: %v", c, err)
		}
		for _, tool := range []struct {
			name    string
			measure func(string, string, int, time.Duration) (sample, error)
			bin     string
		}{{"dewy", measureDewy, dewyBin}, {"dewy-agent", measureAgent, agentBin}} {
			s, err := tool.measure(tool.bin, gh.URL(), n, idle)
			if err != nil {
				return fmt.Errorf("%s, %d apps: %w", tool.name, n, err)
			}
			fmt.Printf("%-11s %-5d %-10d %-14s %-14s %s\n", tool.name, n, s.procs, mib(s.rssKiB), mib(s.pssKiB), s.took.Round(time.Millisecond))
		}
	}
	return tb.Err() // what the fake saw go wrong
}

// sample is what one measurement found: memory summed over the processes.
type sample struct {
	procs          int
	rssKiB, pssKiB int64
	took           time.Duration
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// measureDewy runs n Dewy processes, each deploying the release into its own
// directory, where Dewy links "current" to the deployed release.
func measureDewy(bin, apiURL string, n int, idle time.Duration) (sample, error) {
	dir, err := os.MkdirTemp("", "vsdewy-dewy-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(dir)
	var cmds []*exec.Cmd
	defer func() { stop(cmds) }()
	start := time.Now()
	for i := range n {
		wd := filepath.Join(dir, fmt.Sprintf("app%03d", i))
		if err := os.Mkdir(wd, 0o755); err != nil {
			return sample{}, err
		}
		cmd := exec.Command(bin, "assets", "--registry", "ghr://"+owner+"/"+repo, "--interval", strconv.Itoa(int(interval/time.Second)))
		cmd.Dir = wd
		cmd.Env = append(os.Environ(), "GITHUB_ENDPOINT="+apiURL, "GITHUB_TOKEN=bench-token")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return sample{}, err
		}
		cmds = append(cmds, cmd)
	}
	return settle(cmds, n, start, idle, func(i int) bool {
		_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("app%03d", i), "current"))
		return err == nil
	})
}

// measureAgent runs one dewy-agent with n ghr:// apps on the same repository.
func measureAgent(bin, apiURL string, n int, idle time.Duration) (sample, error) {
	dir, err := os.MkdirTemp("", "vsdewy-agent-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(dir)
	state := filepath.Join(dir, "state")
	var b strings.Builder
	fmt.Fprintf(&b, "agent {\n  state_dir = %q\n  log_level = \"warn\"\n  admin = \"\"\n}\n", state)
	for i := range n {
		fmt.Fprintf(&b, "app \"app%03d\" {\n  registry = \"ghr://%s/%s\"\n  interval = \"%s\"\n  runner \"assets\" {}\n}\n", i, owner, repo, interval)
	}
	cfg := filepath.Join(dir, "dewy.hcl")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return sample{}, err
	}
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "GITHUB_API_URL="+apiURL)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	cmds := []*exec.Cmd{cmd}
	defer stop(cmds)
	return settle(cmds, n, start, idle, func(i int) bool {
		return testkit.DeployedVersion(state, fmt.Sprintf("app%03d", i)) != ""
	})
}

// settle waits until deployed(i) holds for each of the apps, idles, and sums
// the memory of the processes.
func settle(cmds []*exec.Cmd, apps int, start time.Time, idle time.Duration, deployed func(i int) bool) (sample, error) {
	for done := 0; done < apps; {
		if time.Since(start) > 3*time.Minute {
			return sample{}, fmt.Errorf("only %d of %d apps deployed after 3m", done, apps)
		}
		time.Sleep(100 * time.Millisecond)
		done = 0
		for i := range apps {
			if deployed(i) {
				done++
			}
		}
	}
	s := sample{procs: len(cmds), took: time.Since(start)}
	time.Sleep(idle)
	for _, c := range cmds {
		rss, err := testkit.ProcKiB(c.Process.Pid, "status", "VmRSS:")
		if err != nil {
			return sample{}, err
		}
		pss, err := testkit.ProcKiB(c.Process.Pid, "smaps_rollup", "Pss:")
		if err != nil {
			return sample{}, err
		}
		s.rssKiB += rss
		s.pssKiB += pss
	}
	return s, nil
}

func stop(cmds []*exec.Cmd) {
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range cmds {
		c.Wait()
	}
}
