// Command rolling measures the container runner and the OCI source together on the
// local Docker engine, as the agent uses them:
//
//  1. Failed requests during successive rolling updates under load (the goal is 0):
//     workers send GET /version through the runner's proxy without pause, half of
//     them on keep-alive connections, half on a new connection per request.
//  2. Time from a new tag being pushed to the new version serving through the
//     proxy, with an agent loop that polls the registry every -poll (list tags,
//     select the newest stable version, pin it for the engine's platform, deploy).
//  3. The proxy's cost: latency and request rate through the proxy against a
//     direct connection to a replica's published port, and bulk throughput.
//
// Images are the test app of internal/testimage, pushed to an in-process registry
// on 127.0.0.1. Containers and images it makes are removed at the end.
//
//	go run ./bench/rolling [-updates 10] [-replicas 2] [-workers 8] [-poll 500ms] [-crash-window 1s]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/client"

	"github.com/dewy-agent/dewy-agent/internal/testimage"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/internal/tick"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/container"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// benchLabel marks the images the bench builds, for cleanup.
const benchLabel = "dewy-agent.bench"

type options struct {
	updates, replicas, workers   int
	poll, drain, window, measure time.Duration
	verbose                      bool
}

func main() {
	var o options
	flag.IntVar(&o.updates, "updates", 10, "successive rolling updates")
	flag.IntVar(&o.replicas, "replicas", 2, "replicas of the app")
	flag.IntVar(&o.workers, "workers", 8, "load workers (half keep-alive, half a new connection per request)")
	flag.DurationVar(&o.poll, "poll", 500*time.Millisecond, "the agent loop's poll interval")
	flag.DurationVar(&o.drain, "drain", 500*time.Millisecond, "the runner's drain time")
	flag.DurationVar(&o.window, "crash-window", time.Second, "the runner's crash window")
	flag.DurationVar(&o.measure, "measure", 3*time.Second, "length of each proxy-versus-direct run")
	flag.BoolVar(&o.verbose, "v", false, "log the runner's messages")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "rolling:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("no Docker engine: %w", err)
	}
	reg := testimage.Serve()
	defer reg.Close()
	b := make([]byte, 4)
	rand.Read(b)
	app := "dewybench-" + hex.EncodeToString(b)
	defer cleanup(cli, app)

	src, err := oci.New(oci.Config{Repository: reg.Repository(app)}, sources.Options{HTTPClient: &http.Client{}})
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	appDir, err := os.MkdirTemp("", "dewy-rolling-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(appDir)
	r := container.New(container.Config{
		App: app, Ports: []string{"0"}, Replicas: o.replicas, HealthPath: "/health",
		HealthTimeout: 30 * time.Second, DrainTime: o.drain, CrashWindow: o.window, StopTimeout: 5 * time.Second,
	}, runners.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), AppDir: appDir})
	defer r.Stop(context.Background(), runners.AppRemoved)
	platform, err := r.Platform(ctx)
	if err != nil {
		return err
	}
	push := func(ver string) error {
		img, err := testimage.Image(ver, testimage.Options{Labels: map[string]string{benchLabel: app}})
		if err != nil {
			return err
		}
		_, err = reg.Push(ctx, app, ver, img)
		return err
	}

	// The first release, deployed before the load starts.
	if err := push("v1.0.0"); err != nil {
		return err
	}
	a := &agent{src: src, run: r, platform: platform, events: make(chan deployEvent, 1)}
	if _, err := a.poll(ctx); err != nil {
		return err
	}
	url := "http://" + loopback(r.Addrs()[0])
	fmt.Printf("app %s: %d replicas, proxy %s, engine platform %s, poll every %s, drain %s, crash window %s\n\n",
		app, o.replicas, url, platform, o.poll, o.drain, o.window)

	// 1 and 2: updates under load, through the agent loop.
	w := newWatcher(url)
	l := testkit.StartLoad(url+"/version", testkit.LoadOptions{Workers: o.workers, KeepAlive: testkit.KeepAliveHalf, Timeout: 15 * time.Second})
	actx, cancel := context.WithCancel(ctx)
	var agentDone sync.WaitGroup
	agentDone.Go(func() { a.loop(actx, o.poll) })
	type row struct {
		ver                       string
		detect, pin, deploy, live time.Duration
	}
	var rows []row
	var runErr error
	for i := 1; i <= o.updates; i++ {
		ver := fmt.Sprintf("v1.0.%d", i)
		pushed := time.Now()
		if err := push(ver); err != nil {
			runErr = err
			break
		}
		ev := <-a.events
		if ev.err != nil {
			runErr = fmt.Errorf("deploy %s: %w", ver, ev.err)
			break
		}
		seen, ok := w.waitFor(ver, 30*time.Second)
		if !ok {
			runErr = fmt.Errorf("%s never served through the proxy", ver)
			break
		}
		rows = append(rows, row{ver: ver, detect: ev.detected.Sub(pushed), pin: ev.pinned.Sub(ev.detected),
			deploy: ev.deployed.Sub(ev.pinned), live: seen.Sub(pushed)})
	}
	cancel()
	agentDone.Wait()
	res := l.Stop()
	sent, failed := res.Sent, res.Failed
	w.stop()
	if runErr != nil {
		return runErr
	}

	fmt.Printf("1. Rolling updates under load (%d workers, half keep-alive)\n", o.workers)
	fmt.Printf("   requests: %d sent, %d failed (goal 0)\n", sent, failed)
	if len(res.Errors) > 0 {
		fmt.Printf("   first failure: %s\n", res.Errors[0])
	}
	fmt.Printf("\n2. From tag pushed to new version serving through the proxy\n")
	fmt.Printf("   %-8s %10s %10s %12s %14s\n", "version", "detected", "pinned", "deployed", "push->serving")
	var lives []time.Duration
	for _, r := range rows {
		fmt.Printf("   %-8s %10s %10s %12s %14s\n", r.ver, ms(r.detect), ms(r.pin), ms(r.deploy), ms(r.live))
		lives = append(lives, r.live)
	}
	fmt.Printf("   (detected: push -> the poll that saw it; pinned: + tag resolved to a digest;\n")
	fmt.Printf("    deployed: + pull, start, health, swap, crash window %s (old ones draining),\n", o.window)
	fmt.Printf("    removal of the old replicas)\n")
	fmt.Printf("   push->serving: median %s, max %s\n", ms(percentile(lives, 50)), ms(percentile(lives, 100)))

	// 3. The proxy against a direct connection to one replica.
	reps := r.Replicas()
	if len(reps) == 0 || len(reps[0].Addrs) == 0 {
		return errors.New("no replica to measure")
	}
	direct := "http://" + reps[0].Addrs[0]
	fmt.Printf("\n3. Proxy versus direct (replica's published port %s), keep-alive, %s each\n", reps[0].Addrs[0], o.measure)
	fmt.Printf("   %-22s %10s %10s %10s %10s\n", "target", "req/s", "p50", "p90", "p99")
	for _, conc := range []int{1, 8} {
		for _, t := range []struct{ name, url string }{{"direct", direct}, {"proxy", url}} {
			res := measure(ctx, t.url+"/version", conc, o.measure)
			fmt.Printf("   %-22s %10.0f %10s %10s %10s\n", fmt.Sprintf("%s, %d conn", t.name, conc), res.rate,
				us(percentile(res.lat, 50)), us(percentile(res.lat, 90)), us(percentile(res.lat, 99)))
		}
	}
	fmt.Printf("   %-22s %10s\n", "bulk (64 MiB x 8)", "MiB/s")
	for _, t := range []struct{ name, url string }{{"direct", direct}, {"proxy", url}} {
		mbps, err := bulk(ctx, t.url, 64<<20, 8)
		if err != nil {
			return err
		}
		fmt.Printf("   %-22s %10.0f\n", t.name, mbps)
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed during the updates", failed)
	}
	return nil
}

// deployEvent is one deploy done by the agent loop.
type deployEvent struct {
	version                    string
	detected, pinned, deployed time.Time
	err                        error
}

// agent is the part of the agent's loop that matters here: poll, select, pin, deploy.
type agent struct {
	src      *oci.Registry
	run      *container.Container
	platform string
	deployed string
	events   chan deployEvent
}

func (a *agent) loop(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, nil, func() {
		ev, err := a.poll(ctx)
		if err != nil && ctx.Err() != nil {
			return
		}
		if err != nil || ev.version != "" {
			ev.err = err
			a.events <- ev
		}
	})
}

// poll checks the registry once and deploys a newer version; the event's version
// is "" when there was nothing new.
func (a *agent) poll(ctx context.Context) (deployEvent, error) {
	rels, err := a.src.Releases(ctx)
	if err != nil {
		return deployEvent{}, err
	}
	sel, err := version.Select(rels, version.Policy{}, time.Now())
	if err != nil {
		return deployEvent{}, err
	}
	tag := sel.Candidate.Version.Original()
	if tag == a.deployed {
		return deployEvent{}, nil
	}
	ev := deployEvent{version: tag, detected: time.Now()}
	img, err := a.src.Pin(ctx, sel.Candidate.Release, a.platform)
	if err != nil {
		return ev, err
	}
	ev.pinned = time.Now()
	if err := a.run.Deploy(ctx, runners.Deployment{Version: tag, Image: img}); err != nil {
		return ev, err
	}
	ev.deployed = time.Now()
	a.deployed = tag
	return ev, nil
}

// watcher asks the proxy for the version every few milliseconds and remembers when
// it first saw each.
type watcher struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	seen map[string]time.Time
}

func newWatcher(url string) *watcher {
	w := &watcher{done: make(chan struct{}), seen: map[string]time.Time{}}
	w.wg.Go(func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		for {
			select {
			case <-w.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if v, err := testkit.Get(c, url+"/version"); err == nil {
				w.mu.Lock()
				if _, ok := w.seen[v]; !ok {
					w.seen[v] = time.Now()
				}
				w.mu.Unlock()
			}
		}
	})
	return w
}

func (w *watcher) waitFor(ver string, timeout time.Duration) (time.Time, bool) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		w.mu.Lock()
		t, ok := w.seen[ver]
		w.mu.Unlock()
		if ok {
			return t, true
		}
	}
	return time.Time{}, false
}

func (w *watcher) stop() { close(w.done); w.wg.Wait() }

type result struct {
	rate float64
	lat  []time.Duration
}

// measure sends GET url from conc keep-alive connections for d.
func measure(ctx context.Context, url string, conc int, d time.Duration) result {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range conc {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			var lat []time.Duration
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				if _, err := testkit.Get(c, url); err != nil {
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return result{rate: float64(len(all)) / d.Seconds(), lat: all}
}

// bulk downloads n bytes `times` times on one connection and returns MiB/s.
func bulk(ctx context.Context, url string, n, times int) (float64, error) {
	c := &http.Client{Timeout: time.Minute}
	start := time.Now()
	for range times {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/bytes?n=%d", url, n), nil)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		got, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || got != int64(n) {
			return 0, fmt.Errorf("bulk read %d of %d bytes: %v", got, n, err)
		}
	}
	return float64(n*times) / (1 << 20) / time.Since(start).Seconds(), nil
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

// loopback turns the proxy's all-interfaces address into a 127.0.0.1 one.
func loopback(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return "127.0.0.1:" + port
}

// cleanup removes the app's containers and the images the bench built.
func cleanup(cli *client.Client, app string) {
	testimage.Clean(context.Background(), cli, container.LabelApp, benchLabel, app)
}
