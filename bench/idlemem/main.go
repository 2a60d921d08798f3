// Command idlemem measures the agent's resident memory when idle: it publishes one
// small release into a local folder registry, writes a config with N apps that all
// watch it (file source, assets runner), runs the agent binary, waits until every
// app has deployed, lets it idle, and reads the process's VmRSS and VmHWM. It then
// measures the agent's peak memory (VmHWM) while deploying one large artifact.
// With -registries file,ghr it measures a file:// registry and a GitHub
// Releases one (an in-process fake of the GitHub API, every app polling it).
//
//	go build -o bin/dewy-agent ./cmd/dewy-agent && go run ./bench/idlemem -agent bin/dewy-agent
package main

import (
	"archive/tar"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/archive"
	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func main() {
	agentBin := flag.String("agent", "bin/dewy-agent", "the dewy-agent binary")
	counts := flag.String("apps", "1,100", "comma-separated app counts to measure")
	idle := flag.Duration("idle", 10*time.Second, "how long to idle after the last deploy before reading memory")
	bigMiB := flag.Int("big", 500, "also measure the agent's peak memory while deploying an artifact of this many MiB (0: skip)")
	registries := flag.String("registries", "file", "comma-separated registries to measure: file, ghr")
	flag.Parse()
	fmt.Printf("%-9s %-6s %-12s %-12s %s\n", "registry", "apps", "VmRSS", "VmHWM", "deploy time")
	for _, r := range strings.Split(*registries, ",") {
		for _, c := range strings.Split(*counts, ",") {
			var n int
			fmt.Sscan(c, &n)
			var rss, hwm string
			var took time.Duration
			var err error
			switch r {
			case "file":
				rss, hwm, took, err = measure(*agentBin, n, *idle)
			case "ghr":
				rss, hwm, took, err = measureGitHub(*agentBin, n, *idle)
			default:
				err = fmt.Errorf("unknown registry %q (want file or ghr)", r)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "idlemem:", err)
				os.Exit(1)
			}
			fmt.Printf("%-9s %-6d %-12s %-12s %s\n", r, n, rss, hwm, took.Round(time.Millisecond))
		}
	}
	if *bigMiB > 0 {
		rss, hwm, took, err := measureWith(*agentBin, 1, 0, func(dir string) error { return publishBig(dir, *bigMiB) })
		if err != nil {
			fmt.Fprintln(os.Stderr, "idlemem:", err)
			os.Exit(1)
		}
		fmt.Printf("\ndeploying one %d MiB artifact (1 app): peak VmHWM %s, VmRSS after %s, deploy took %s\n", *bigMiB, hwm, rss, took.Round(time.Millisecond))
	}
}

// publishBig writes a tar.gz holding size MiB of random bytes (gzip level 1,
// so it stays about that size), streamed to disk.
func publishBig(dir string, size int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "site.tar.gz"))
	if err != nil {
		return err
	}
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	n := int64(size) << 20
	if err := tw.WriteHeader(&tar.Header{Name: "big.bin", Mode: 0o644, Size: n}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, rand.NewChaCha8([32]byte{1}), n); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func measure(agentBin string, n int, idle time.Duration) (rss, hwm string, took time.Duration, err error) {
	return measureWith(agentBin, n, idle, publish)
}

// measureWith publishes v1.0.0 with pub, runs the agent with n apps on it, waits
// for every deploy, idles, and reads the agent's memory.
func measureWith(agentBin string, n int, idle time.Duration, pub func(dir string) error) (rss, hwm string, took time.Duration, err error) {
	return measureApps(agentBin, n, idle, pub, func(dir string) string {
		return fmt.Sprintf("file://%s/registry\"\n  artifact = \"site.tar.gz", dir)
	})
}

// measureGitHub is measure with every app watching one repository of a fake
// GitHub API (GITHUB_API_URL), which serves v1.0.0 and then 304s.
func measureGitHub(agentBin string, n int, idle time.Duration) (rss, hwm string, took time.Duration, err error) {
	tb := &testkit.ProgramTB{}
	defer tb.Close()
	gh := fakegithub.New(tb)
	artifact := fmt.Sprintf("site_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	body := testkit.TarGz(map[string]string{"index.html": "<h1>hello</h1>\n"})
	gh.AddRelease("acme", "site", fakegithub.Release{Tag: "v1.0.0", Published: time.Now().Add(-time.Hour), Assets: map[string][]byte{artifact: body}})
	if err := tb.Err(); err != nil {
		return "", "", 0, err
	}
	os.Setenv("GITHUB_API_URL", gh.URL())
	defer os.Unsetenv("GITHUB_API_URL")
	return measureApps(agentBin, n, idle, func(string) error { return nil }, func(string) string { return "ghr://acme/site" })
}

// measureApps runs the agent with n apps whose registry attribute registry
// gives, after pub has published v1.0.0 into dir/registry/v1.0.0.
func measureApps(agentBin string, n int, idle time.Duration, pub func(dir string) error, registry func(dir string) string) (rss, hwm string, took time.Duration, err error) {
	dir, err := os.MkdirTemp("", "dewy-idlemem-")
	if err != nil {
		return "", "", 0, err
	}
	defer os.RemoveAll(dir)
	if err := pub(filepath.Join(dir, "registry", "v1.0.0")); err != nil {
		return "", "", 0, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agent {\n  state_dir = %q\n  log_level = \"warn\"\n  admin = \"\"\n}\n", filepath.Join(dir, "state"))
	for i := range n {
		fmt.Fprintf(&b, "app \"app%03d\" {\n  registry = \"%s\"\n  interval = \"30s\"\n  runner \"assets\" {}\n}\n", i, registry(dir))
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
			if testkit.DeployedVersion(filepath.Join(dir, "state"), fmt.Sprintf("app%03d", i)) != "" {
				deployed++
			}
		}
	}
	took = time.Since(start)
	time.Sleep(idle)
	rssKiB, err := testkit.ProcKiB(cmd.Process.Pid, "status", "VmRSS:")
	if err != nil {
		return "", "", 0, err
	}
	hwmKiB, err := testkit.ProcKiB(cmd.Process.Pid, "status", "VmHWM:")
	if err != nil {
		return "", "", 0, err
	}
	return fmt.Sprintf("%d kB", rssKiB), fmt.Sprintf("%d kB", hwmKiB), took, nil
}

func publish(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return archive.WriteFile(filepath.Join(dir, "site.tar.gz"), archive.TarGz, archive.File{Name: "index.html", Body: []byte("<h1>hello</h1>\n")})
}
