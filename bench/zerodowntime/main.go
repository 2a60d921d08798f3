// Command zerodowntime checks the server runner's promise under load: N connections
// send requests to an app without pause while the runner deploys 20 releases one
// after another, then for as long again without deploys (the baseline). It prints the
// requests sent and failed (the goal is 0) and the latency of both phases.
//
// With -proxy the runner runs with proxy = true (the agent keeps the port and forwards
// to the healthy generation) instead of handing the socket over: comparing the two
// at the same -conns is the proxy's cost.
//
// It builds the runner's test app (testdata/testapp), makes a release
// directory per version and drives the runner through its public API, with a real
// `current` symlink switched by Activate and Rollback.
//
//	go run ./bench/zerodowntime [-conns 32] [-deploys 20] [-keepalive=false] [-proxy]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/server"
)

func main() {
	conns := flag.Int("conns", 32, "concurrent connections sending requests")
	deploys := flag.Int("deploys", 20, "successive deploys")
	keepAlive := flag.Bool("keepalive", true, "reuse connections (false: a new connection per request)")
	crashWindow := flag.Duration("crash-window", time.Second, "the runner's crash window after each deploy")
	proxy := flag.Bool("proxy", false, "run the runner with proxy = true instead of the socket hand-off")
	flag.Parse()
	if err := run(*conns, *deploys, *keepAlive, *crashWindow, *proxy); err != nil {
		fmt.Fprintln(os.Stderr, "zerodowntime:", err)
		os.Exit(1)
	}
}

func run(conns, deploys int, keepAlive bool, crashWindow time.Duration, proxy bool) error {
	dir, err := os.MkdirTemp("", "dewy-zerodowntime-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := buildTestApp(dir)
	if err != nil {
		return err
	}
	current := filepath.Join(dir, "current")
	release := func(i int) (runners.Deployment, error) {
		return makeRelease(dir, current, app, fmt.Sprintf("v1.0.%d", i))
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := server.New(server.Config{
		Command:       []string{"./run"},
		Ports:         []int{0},
		HealthPath:    "/health",
		HealthTimeout: 10 * time.Second,
		StopTimeout:   10 * time.Second,
		CrashWindow:   crashWindow,
		Proxy:         proxy,
	}, runners.Options{Logger: logger, AppDir: dir})
	ctx := context.Background()
	defer s.Stop(ctx, runners.AgentShutdown)

	first, err := release(0)
	if err != nil {
		return err
	}
	if err := first.Activate(); err != nil {
		return err
	}
	if err := s.Resume(ctx, first); err != nil {
		return err
	}
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Addrs()[0].(*net.TCPAddr).Port)) + "/version"

	mode := "socket hand-off"
	if proxy {
		mode = "proxy"
	}
	fmt.Printf("%s: %d connections (keep-alive %v), %d deploys, crash window %s, GOMAXPROCS %d\n",
		mode, conns, keepAlive, deploys, crashWindow, runtime.GOMAXPROCS(0))

	l := startLoad(url, conns, keepAlive)
	start := time.Now()
	var deployErr error
	for i := 1; i <= deploys && deployErr == nil; i++ {
		d, err := release(i)
		if err != nil {
			deployErr = err
			break
		}
		if err := s.Deploy(ctx, d); err != nil {
			deployErr = fmt.Errorf("deploy %s: %w", d.Version, err)
		}
	}
	during := l.Stop()
	length := time.Since(start)
	if deployErr != nil {
		return deployErr
	}

	l = startLoad(url, conns, keepAlive)
	time.Sleep(length)
	baseline := l.Stop()

	fmt.Printf("%-9s %9s %10s %9s %7s %9s %9s %9s %s\n", "phase", "duration", "requests", "req/s", "failed", "p50", "p99", "max", "versions answering")
	printResult(during, "deploys", length)
	printResult(baseline, "baseline", length)
	for _, r := range []testkit.LoadResult{during, baseline} {
		for _, e := range r.Errors {
			fmt.Println("  error:", e)
		}
	}
	return nil
}

// buildTestApp builds the runner's test app into dir.
func buildTestApp(dir string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	app := filepath.Join(dir, "testapp")
	cmd := exec.Command("go", "build", "-o", app, "./testdata/testapp")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the test app: %w\n%s", err, out)
	}
	return app, nil
}

// makeRelease makes a release directory whose ./run starts the test app as version,
// with Activate and Rollback switching the current link as the agent does.
func makeRelease(root, current, app, version string) (runners.Deployment, error) {
	dir := filepath.Join(root, "releases", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return runners.Deployment{}, err
	}
	script := fmt.Sprintf("#!/bin/sh\nexec '%s' -version '%s' \"$@\"\n", app, version)
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte(script), 0o755); err != nil {
		return runners.Deployment{}, err
	}
	var prev string
	return runners.Deployment{
		Version: version,
		Dir:     dir,
		Activate: func() error {
			prev, _ = os.Readlink(current)
			return atomicfile.Symlink(dir, current)
		},
		Rollback: func() error {
			if prev == "" {
				return os.Remove(current)
			}
			return atomicfile.Symlink(prev, current)
		},
	}, nil
}

// startLoad sends GET url from conns connections until stopped.
func startLoad(url string, conns int, keepAlive bool) *testkit.Load {
	ka := testkit.KeepAliveNone
	if keepAlive {
		ka = testkit.KeepAliveAll
	}
	return testkit.StartLoad(url, testkit.LoadOptions{Workers: conns, KeepAlive: ka, Timeout: 10 * time.Second})
}

// printResult prints one phase's row of the table.
func printResult(r testkit.LoadResult, phase string, length time.Duration) {
	q := func(x float64) time.Duration { return r.Quantile(x).Round(10 * time.Microsecond) }
	fmt.Printf("%-9s %9s %10d %9.0f %7d %9s %9s %9s %d\n", phase, length.Round(100*time.Millisecond),
		r.Sent, float64(r.Sent)/length.Seconds(), r.Failed, q(0.50), q(0.99), q(1), len(r.Answers))
}
