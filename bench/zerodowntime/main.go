// Command zerodowntime checks the server runner's promise under load: N connections
// send requests to an app without pause while the runner deploys 20 releases one
// after another, then for as long again without deploys (the baseline). It prints the
// requests sent and failed (the goal is 0) and the latency of both phases.
//
// It builds the runner's test app (runners/server/testdata/testapp), makes a release
// directory per version and drives the runner through its public API, with a real
// `current` symlink switched by Activate and Rollback.
//
//	go run ./bench/zerodowntime [-conns 32] [-deploys 20] [-keepalive=false]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/server"
)

func main() {
	conns := flag.Int("conns", 32, "concurrent connections sending requests")
	deploys := flag.Int("deploys", 20, "successive deploys")
	keepAlive := flag.Bool("keepalive", true, "reuse connections (false: a new connection per request)")
	crashWindow := flag.Duration("crash-window", time.Second, "the runner's crash window after each deploy")
	flag.Parse()
	if err := run(*conns, *deploys, *keepAlive, *crashWindow); err != nil {
		fmt.Fprintln(os.Stderr, "zerodowntime:", err)
		os.Exit(1)
	}
}

func run(conns, deploys int, keepAlive bool, crashWindow time.Duration) error {
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

	fmt.Printf("%d connections (keep-alive %v), %d deploys, crash window %s, GOMAXPROCS %d\n",
		conns, keepAlive, deploys, crashWindow, runtime.GOMAXPROCS(0))

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
	during := l.stop()
	length := time.Since(start)
	if deployErr != nil {
		return deployErr
	}

	l = startLoad(url, conns, keepAlive)
	time.Sleep(length)
	baseline := l.stop()

	fmt.Printf("%-9s %9s %10s %7s %9s %9s %9s %s\n", "phase", "duration", "requests", "failed", "p50", "p99", "max", "versions answering")
	during.print("deploys", length)
	baseline.print("baseline", length)
	for _, r := range []*result{during, baseline} {
		for _, e := range r.errs {
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
	cmd := exec.Command("go", "build", "-o", app, "./runners/server/testdata/testapp")
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

// load is the request loop of every connection.
type load struct {
	done chan struct{}
	wg   sync.WaitGroup
	res  []*result
}

// result is what one phase saw.
type result struct {
	sent     int
	failed   int
	lat      []time.Duration
	versions map[string]int
	errs     []error
}

func startLoad(url string, conns int, keepAlive bool) *load {
	l := &load{done: make(chan struct{})}
	for range conns {
		r := &result{versions: map[string]int{}}
		l.res = append(l.res, r)
		tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		l.wg.Go(func() {
			defer tr.CloseIdleConnections()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				t0 := time.Now()
				v, err := get(c, url)
				r.sent++
				if err != nil {
					r.failed++
					if len(r.errs) < 3 {
						r.errs = append(r.errs, fmt.Errorf("%s: %w", t0.Format("15:04:05.000"), err))
					}
					continue
				}
				r.lat = append(r.lat, time.Since(t0))
				r.versions[v]++
			}
		})
	}
	return l
}

// stop ends the load and merges what every connection saw.
func (l *load) stop() *result {
	close(l.done)
	l.wg.Wait()
	all := &result{versions: map[string]int{}}
	for _, r := range l.res {
		all.sent += r.sent
		all.failed += r.failed
		all.lat = append(all.lat, r.lat...)
		for v, n := range r.versions {
			all.versions[v] += n
		}
		if len(all.errs) < 5 {
			all.errs = append(all.errs, r.errs...)
		}
	}
	slices.Sort(all.lat)
	return all
}

func (r *result) print(phase string, length time.Duration) {
	fmt.Printf("%-9s %9s %10d %7d %9s %9s %9s %d\n", phase, length.Round(100*time.Millisecond),
		r.sent, r.failed, r.quantile(0.50), r.quantile(0.99), r.quantile(1), len(r.versions))
}

func (r *result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := min(int(q*float64(len(r.lat))), len(r.lat)-1)
	return r.lat[i].Round(10 * time.Microsecond)
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	return string(b), err
}
