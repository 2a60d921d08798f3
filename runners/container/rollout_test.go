package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
)

// These tests run the runner's real rollout, rollback, drain, adoption and
// monitor code against fakeEngine, whose replicas are real HTTP servers on
// 127.0.0.1: the proxy forwards real connections and health checks hit real
// endpoints. They run under -short.

// imageRef is the fake registry's reference of a version.
func imageRef(version string) string { return "registry.test/app:" + version }

// fakeRunner returns a runner of app "app" on the fake engine, stopped at the
// end of the test (AgentShutdown: the fake's cleanup ends the replicas).
func fakeRunner(t *testing.T, fe *fakeEngine, cfg Config) *Container {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the host
	if cfg.App == "" {
		cfg.App = "app"
	}
	if cfg.Ports == nil {
		cfg.Ports = []string{"0:8080"}
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := New(cfg, runners.Options{Logger: logger, AppDir: t.TempDir()}, WithEngine(fe))
	c.healthEvery = 5 * time.Millisecond
	c.watchEvery = 10 * time.Millisecond
	t.Cleanup(func() {
		if err := c.Stop(context.Background(), runners.AgentShutdown); err != nil {
			t.Errorf("stop at cleanup: %v", err)
		}
	})
	return c
}

// deployment of a version published in the fake registry.
func deployment(version string) runners.Deployment {
	return runners.Deployment{Version: version, Image: imageRef(version)}
}

func mustDeploy(t *testing.T, c *Container, version string) {
	t.Helper()
	if err := c.Deploy(t.Context(), deployment(version)); err != nil {
		t.Fatalf("deploy %s: %v", version, err)
	}
}

// waitUntil polls cond until it holds, failing the test after the deadline.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// proxyBase is the runner's first proxy as an http:// base URL.
func proxyBase(t *testing.T, c *Container) string {
	t.Helper()
	addrs := c.Addrs()
	if len(addrs) == 0 {
		t.Fatal("runner has no proxy")
	}
	return "http://127.0.0.1:" + fmt.Sprint(addrs[0].(*net.TCPAddr).Port)
}

func wantServed(t *testing.T, c *Container, version string) {
	t.Helper()
	for range 4 {
		got, err := testkit.Get(nil, proxyBase(t, c)+"/version")
		if err != nil || got != version {
			t.Fatalf("GET /version through the proxy = %q, %v; want %q", got, err, version)
		}
	}
}

// traffic sends requests through the proxy until stopped, half of the
// workers with keep-alive, and counts failures and versions seen.
type traffic struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	ok       int
	fails    []string
	versions map[string]int
}

func startTraffic(t *testing.T, url string) *traffic {
	t.Helper()
	tr := &traffic{stop: make(chan struct{}), versions: map[string]int{}}
	for i := range 4 {
		keepAlive := i%2 == 0
		tr.wg.Go(func() {
			ht := &http.Transport{DisableKeepAlives: !keepAlive}
			defer ht.CloseIdleConnections()
			cl := &http.Client{Transport: ht, Timeout: 10 * time.Second}
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				body, err := testkit.Get(cl, url+"/version")
				tr.mu.Lock()
				if err != nil {
					tr.fails = append(tr.fails, err.Error())
				} else {
					tr.ok++
					tr.versions[body]++
				}
				tr.mu.Unlock()
			}
		})
	}
	waitUntil(t, 10*time.Second, "the first request through the proxy", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.ok > 0 || len(tr.fails) > 0
	})
	return tr
}

func (tr *traffic) finish(t *testing.T) map[string]int {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	if len(tr.fails) > 0 {
		t.Errorf("%d of %d requests failed; first: %s", len(tr.fails), tr.ok+len(tr.fails), tr.fails[0])
	}
	if tr.ok == 0 {
		t.Error("no request succeeded: the traffic did not run")
	}
	return tr.versions
}

// rotationAddrs are the addresses in each proxy's rotation.
func (c *Container) rotationAddrs() [][]string {
	c.mu.Lock()
	ps := slices.Clone(c.proxies)
	c.mu.Unlock()
	var out [][]string
	for _, p := range ps {
		var as []string
		for _, b := range p.Rotation() {
			as = append(as, b.Addr())
		}
		out = append(out, as)
	}
	return out
}

// addrsOf are the published addresses of the running containers of a version.
func (f *fakeEngine) addrsOf(version string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for id, c := range f.containers {
		if c.spec.Labels[LabelVersion] == version && c.status == "running" {
			for _, a := range c.ports {
				out[a] = id
			}
		}
	}
	return out
}

// guardRotation checks, each time the runner stops or removes a container,
// that it is out of rotation and that every proxy still has want replicas of
// version in rotation, all running.
func guardRotation(t *testing.T, fe *fakeEngine, c *Container, version string, want int) (stopped func() []string) {
	var mu sync.Mutex
	var ids []string
	fe.mu.Lock()
	fe.beforeStop = func(id string) {
		fe.mu.Lock()
		var own []string
		if fc := fe.containers[id]; fc != nil {
			for _, a := range fc.ports {
				own = append(own, a)
			}
		}
		fe.mu.Unlock()
		live := fe.addrsOf(version)
		for i, rot := range c.rotationAddrs() {
			if len(rot) != want {
				t.Errorf("proxy %d has %d replicas in rotation while container %s is stopped; want %d", i, len(rot), id[:8], want)
			}
			for _, a := range rot {
				if live[a] == "" {
					t.Errorf("proxy %d sends to %s, not a running replica of %s, while container %s is stopped", i, a, version, id[:8])
				}
				if slices.Contains(own, a) {
					t.Errorf("container %s is stopped while in rotation", id[:8])
				}
			}
		}
		mu.Lock()
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
		mu.Unlock()
	}
	fe.mu.Unlock()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

// TestFakeRollingUpdate replaces three replicas twice under traffic: the new
// ones are healthy and in rotation before any old one is stopped, no request
// fails, the old containers and the oldest image are removed.
func TestFakeRollingUpdate(t *testing.T) {
	fe := newFakeEngine(t)
	for _, v := range []string{"v1", "v2", "v3"} {
		fe.publish(imageRef(v), fakeImage{Version: v})
	}
	c := fakeRunner(t, fe, Config{
		Replicas: 3, HealthPath: "/health", HealthTimeout: 5 * time.Second,
		DrainTime: 200 * time.Millisecond, CrashWindow: 50 * time.Millisecond, KeepImages: 2,
	})
	mustDeploy(t, c, "v1")
	v1 := fe.byVersion("v1")
	if len(v1) != 3 {
		t.Fatalf("v1 runs %d containers; want 3", len(v1))
	}
	wantServed(t, c, "v1")

	for _, step := range []struct{ from, to string }{{"v1", "v2"}, {"v2", "v3"}} {
		old := fe.byVersion(step.from)
		stopped := guardRotation(t, fe, c, step.to, 3)
		load := startTraffic(t, proxyBase(t, c))
		mustDeploy(t, c, step.to)
		seen := load.finish(t)
		if seen[step.to] == 0 {
			t.Errorf("traffic never saw %s: %v", step.to, seen)
		}
		slices.Sort(old)
		if got := stopped(); !slices.Equal(sortedCopy(got), old) {
			t.Errorf("stopped containers %v; want the %s ones %v", got, step.from, old)
		}
		if left := fe.byVersion(step.from); len(left) != 0 {
			t.Errorf("%s containers left: %v", step.from, left)
		}
		if n := len(fe.addrsOf(step.to)); n != 3 {
			t.Errorf("%s runs %d replicas; want 3", step.to, n)
		}
		wantServed(t, c, step.to)
		if got := len(c.Replicas()); got != 3 {
			t.Errorf("Replicas() lists %d; want 3", got)
		}
	}
	fe.mu.Lock()
	pulled := fe.present
	fe.mu.Unlock()
	if pulled[imageRef("v1")] || !pulled[imageRef("v2")] || !pulled[imageRef("v3")] {
		t.Errorf("images present %v; want v2 and v3 only (KeepImages 2)", pulled)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestFakeFailedReleaseKeepsOld: a release whose replicas fail in any way
// before they enter the rotation is a bad release; the old replicas serve on,
// untouched, and the new containers are removed.
func TestFakeFailedReleaseKeepsOld(t *testing.T) {
	for _, tc := range []struct {
		name    string
		img     fakeImage
		wantMsg string
	}{
		{name: "health check fails", img: fakeImage{Health: http.StatusServiceUnavailable}, wantMsg: "is not healthy after"},
		{name: "exits at once", img: fakeImage{ExitCode: 3}, wantMsg: "exited with code 3"},
		{name: "cannot run", img: fakeImage{CannotRun: true}, wantMsg: "exec format error"},
		{name: "exposes no port", img: fakeImage{Exposed: []string{}}, wantMsg: "exposes none"},
		{name: "exposes two ports", img: fakeImage{Exposed: []string{"8080/tcp", "9090/tcp"}}, wantMsg: "exposes 2 (8080, 9090)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFakeEngine(t)
			fe.publish(imageRef("v1"), fakeImage{Version: "v1", Exposed: []string{"8080/tcp"}})
			tc.img.Version = "v2"
			if tc.img.Exposed == nil {
				tc.img.Exposed = []string{"8080/tcp"}
			}
			fe.publish(imageRef("v2"), tc.img)
			c := fakeRunner(t, fe, Config{
				Ports: []string{"0"}, Replicas: 2, HealthPath: "/health", HealthTimeout: 300 * time.Millisecond,
				DrainTime: 100 * time.Millisecond, CrashWindow: 50 * time.Millisecond,
			})
			mustDeploy(t, c, "v1")
			v1 := fe.byVersion("v1")
			load := startTraffic(t, proxyBase(t, c))
			err := c.Deploy(t.Context(), deployment("v2"))
			load.finish(t)
			if !errors.Is(err, runners.ErrBadRelease) {
				t.Fatalf("deploy v2: %v; want a bad release", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("deploy v2: %v; want it to say %q", err, tc.wantMsg)
			}
			if left := fe.byVersion("v2"); len(left) != 0 {
				t.Errorf("v2 containers left: %v", left)
			}
			if got := fe.byVersion("v1"); !slices.Equal(got, v1) {
				t.Errorf("v1 containers %v; want the same %v", got, v1)
			}
			for _, id := range v1 {
				if fc := fe.container(id); fc.restarts != 0 || fc.status != "running" {
					t.Errorf("v1 container %s: %s, %d restarts; want running, untouched", id[:8], fc.status, fc.restarts)
				}
			}
			wantServed(t, c, "v1")
			fe.mu.Lock()
			present := fe.present[imageRef("v2")]
			fe.mu.Unlock()
			if present {
				t.Error("the failed release's image is still present")
			}
		})
	}
}

// TestFakeCrashWindowRollsBack: a new replica that exits after entering the
// rotation, within the crash window, puts the old replicas back in rotation;
// the new ones are removed and the deploy is a bad release.
func TestFakeCrashWindowRollsBack(t *testing.T) {
	fe := newFakeEngine(t)
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	fe.publish(imageRef("v2"), fakeImage{Version: "v2"})
	c := fakeRunner(t, fe, Config{
		Replicas: 2, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond,
	})
	c.watchEvery = time.Hour // the crash window's watch alone must see it
	mustDeploy(t, c, "v1")
	v1 := fe.byVersion("v1")
	c.cfg.CrashWindow = time.Minute // the deploy of v2 ends only by the crash

	done := make(chan error, 1)
	go func() { done <- c.Deploy(context.Background(), deployment("v2")) }()
	waitUntil(t, 10*time.Second, "v2 in rotation", func() bool {
		rot := c.rotationAddrs()[0]
		live := fe.addrsOf("v2")
		return len(rot) == 2 && live[rot[0]] != "" && live[rot[1]] != ""
	})
	stopped := guardRotation(t, fe, c, "v1", 2)
	fe.crash(fe.byVersion("v2")[0], 2)

	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deploy did not end after a new replica crashed")
	}
	if !errors.Is(err, runners.ErrBadRelease) || !strings.Contains(err.Error(), "exited within") {
		t.Fatalf("deploy v2: %v; want a bad release that exited within the crash window", err)
	}
	if left := fe.byVersion("v2"); len(left) != 0 {
		t.Errorf("v2 containers left: %v", left)
	}
	if got := stopped(); len(got) != 2 {
		t.Errorf("stopped %d containers after the crash; want the 2 of v2", len(got))
	}
	if got := fe.byVersion("v1"); !slices.Equal(got, v1) {
		t.Errorf("v1 containers %v; want the same %v", got, v1)
	}
	wantServed(t, c, "v1")
}

// holdRequest sends GET /hold through the proxy and returns once a replica
// has taken it; the result comes on the channel when it ends.
func holdRequest(t *testing.T, c *Container) <-chan string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(proxyBase(t, c), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprint(conn, "GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 12)
	if _, err := io.ReadFull(conn, head); err != nil || string(head) != "HTTP/1.1 200" {
		t.Fatalf("held request: %q, %v", head, err)
	}
	out := make(chan string, 1)
	go func() {
		defer conn.Close()
		rest, _ := io.ReadAll(conn)
		out <- string(rest)
	}()
	return out
}

// TestFakeDrain: a replica taken out of rotation gets no new connection, keeps
// its open one, and is removed when that ends, or when DrainTime is over.
func TestFakeDrain(t *testing.T) {
	t.Run("removed when its connections end", func(t *testing.T) {
		fe := newFakeEngine(t)
		fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
		fe.publish(imageRef("v2"), fakeImage{Version: "v2"})
		c := fakeRunner(t, fe, Config{HealthPath: "/health", DrainTime: time.Minute, CrashWindow: 10 * time.Millisecond})
		mustDeploy(t, c, "v1")
		old := fe.byVersion("v1")[0]
		oldBackend := c.live[0].backends[0]
		held := holdRequest(t, c)

		done := make(chan error, 1)
		go func() { done <- c.Deploy(context.Background(), deployment("v2")) }()
		waitUntil(t, 10*time.Second, "v1 out of rotation", func() bool { return !c.proxies[0].InRotation(oldBackend) })
		before := fe.container(old).conns.Load()
		for range 20 {
			if got, err := testkit.Get(nil, proxyBase(t, c)+"/version"); err != nil || got != "v2" {
				t.Fatalf("GET /version while v1 drains = %q, %v; want v2", got, err)
			}
		}
		if after := fe.container(old).conns.Load(); after != before {
			t.Errorf("the draining replica got %d new connections", after-before)
		}
		fe.release()
		if body := <-held; !strings.Contains(body, "v1") {
			t.Errorf("held request ended with %q; want its answer from v1", body)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("deploy v2: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("deploy did not end when the old replica's last connection ended (drain time 1m)")
		}
		if fe.container(old) != nil {
			t.Error("old replica not removed")
		}
	})

	t.Run("removed after drain time", func(t *testing.T) {
		fe := newFakeEngine(t)
		fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
		fe.publish(imageRef("v2"), fakeImage{Version: "v2"})
		const drain = 300 * time.Millisecond
		c := fakeRunner(t, fe, Config{HealthPath: "/health", DrainTime: drain, CrashWindow: 10 * time.Millisecond})
		mustDeploy(t, c, "v1")
		old := fe.byVersion("v1")[0]
		held := holdRequest(t, c)
		start := time.Now()
		mustDeploy(t, c, "v2")
		removed := fe.removedAt(old)
		if removed.IsZero() {
			t.Fatal("old replica not removed")
		}
		if d := removed.Sub(start); d < drain {
			t.Errorf("old replica removed %s after the deploy began, before the drain time %s", d, drain)
		}
		select {
		case body := <-held:
			if strings.Contains(body, "v1") {
				t.Errorf("held request was answered (%q); it should have been cut", body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("held request still open after its replica was removed")
		}
		wantServed(t, c, "v2")
	})
}

// TestFakeAdoption: after an agent restart the running containers of the
// deployed version are adopted as they are (nothing created, started or
// restarted); the app's other containers are removed, other apps' are not.
func TestFakeAdoption(t *testing.T) {
	fe := newFakeEngine(t)
	fe.publish(imageRef("v0"), fakeImage{Version: "v0"})
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	cfg := Config{Replicas: 2, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond}
	first := fakeRunner(t, fe, cfg)
	mustDeploy(t, first, "v1")
	v1 := fe.byVersion("v1")
	if err := first.Stop(t.Context(), runners.AgentShutdown); err != nil {
		t.Fatal(err)
	}
	for _, id := range v1 {
		if fc := fe.container(id); fc == nil || fc.status != "running" {
			t.Fatalf("container %s not running after the agent stopped", id[:8])
		}
	}

	// Leftovers: another version, a v1 container that exited, a v1 container
	// whose port is not published (it cannot be adopted), another app's.
	labels := func(app, version string) map[string]string {
		return map[string]string{LabelManaged: "true", LabelApp: app, LabelVersion: version, LabelImage: imageRef(version), LabelConfig: cfg.withDefaults().hash()}
	}
	run := func(name, app, version string, ports []int) string {
		id, err := fe.CreateContainer(t.Context(), ContainerSpec{Name: name, Image: imageRef(version), Labels: labels(app, version), Ports: ports})
		if err != nil {
			t.Fatal(err)
		}
		if err := fe.StartContainer(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	if err := fe.PullImage(t.Context(), imageRef("v0"), ""); err != nil {
		t.Fatal(err)
	}
	stale := run("app-v0", "app", "v0", []int{8080})
	exited := run("app-v1-exited", "app", "v1", []int{8080})
	if err := fe.StopContainer(t.Context(), exited, 0); err != nil {
		t.Fatal(err)
	}
	broken := run("app-v1-broken", "app", "v1", nil)
	other := run("other-v1", "other", "v1", []int{8080})
	creates, starts := fe.counts()

	second := fakeRunner(t, fe, cfg)
	if err := second.Resume(t.Context(), deployment("v1")); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if c, s := fe.counts(); c != creates || s != starts {
		t.Errorf("resume created %d and started %d containers; want none", c-creates, s-starts)
	}
	for _, id := range v1 {
		if fc := fe.container(id); fc == nil || fc.restarts != 0 || fc.status != "running" {
			t.Errorf("adopted container %s was replaced or restarted", id[:8])
		}
	}
	for name, id := range map[string]string{"other version": stale, "exited": exited, "unpublished port": broken} {
		if fe.container(id) != nil {
			t.Errorf("the %s container was not removed", name)
		}
	}
	if fe.container(other) == nil {
		t.Error("another app's container was removed")
	}
	conns := func() (n []int64) {
		for _, id := range v1 {
			n = append(n, fe.container(id).conns.Load())
		}
		return n
	}
	before := conns()
	wantServed(t, second, "v1")
	for i, n := range conns() {
		if n == before[i] {
			t.Errorf("adopted replica %d got no connection through the new proxy", i)
		}
	}
	if w := second.Workload(); !w.Running || w.Restarts != 0 {
		t.Errorf("workload %+v; want running without restarts", w)
	}
}

// TestFakeResumeWithoutContainers: when no container of the deployed version
// runs (they were removed while the agent was down), Resume starts new ones
// from the image recorded at deploy.
func TestFakeResumeWithoutContainers(t *testing.T) {
	fe := newFakeEngine(t)
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	cfg := Config{App: "app", Ports: []string{"0:8080"}, Replicas: 2, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond}
	first := fakeRunner(t, fe, cfg)
	mustDeploy(t, first, "v1")
	if err := first.Stop(t.Context(), runners.AgentShutdown); err != nil {
		t.Fatal(err)
	}
	for _, id := range fe.all() {
		if err := fe.RemoveContainer(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	second := New(cfg, runners.Options{Logger: first.logger, AppDir: first.appDir}, WithEngine(fe))
	second.healthEvery = 5 * time.Millisecond
	t.Cleanup(func() { second.Stop(context.Background(), runners.AgentShutdown) })
	if err := second.Resume(t.Context(), runners.Deployment{Version: "v1"}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if n := len(fe.addrsOf("v1")); n != 2 {
		t.Errorf("%d replicas of v1 run; want 2", n)
	}
	wantServed(t, second, "v1")
}

// TestFakeReconfigure: a new runner with other container settings adopts the
// running replicas and replaces them by a rolling update.
func TestFakeReconfigure(t *testing.T) {
	fe := newFakeEngine(t)
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	cfg := Config{
		Replicas: 2, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond,
		Env: map[string]string{"MODE": "a"},
	}
	first := fakeRunner(t, fe, cfg)
	mustDeploy(t, first, "v1")
	old := fe.byVersion("v1")
	if err := first.Stop(t.Context(), runners.Reconfigured); err != nil {
		t.Fatal(err)
	}

	cfg.Env = map[string]string{"MODE": "b"}
	second := fakeRunner(t, fe, cfg)
	var stopped func() []string
	stopped = guardRotation(t, fe, second, "v1", 2)
	if err := second.Resume(t.Context(), deployment("v1")); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := sortedCopy(stopped()); !slices.Equal(got, old) {
		t.Errorf("stopped %v; want the old replicas %v", got, old)
	}
	now := fe.byVersion("v1")
	if len(now) != 2 {
		t.Fatalf("%d containers of v1; want 2", len(now))
	}
	for _, id := range now {
		fc := fe.container(id)
		if slices.Contains(old, id) || !slices.Contains(fc.spec.Env, "MODE=b") {
			t.Errorf("container %s has env %v; want a new one with MODE=b", id[:8], fc.spec.Env)
		}
		if fc.spec.Labels[LabelConfig] != second.cfg.hash() {
			t.Errorf("container %s has config label %s; want %s", id[:8], fc.spec.Labels[LabelConfig], second.cfg.hash())
		}
	}
	wantServed(t, second, "v1")
}

// TestFakeStopReasons: the agent's shutdown and a reconfiguration leave the
// containers running; removing the app removes every container of it.
func TestFakeStopReasons(t *testing.T) {
	for _, tc := range []struct {
		why  runners.StopReason
		left int
	}{
		{runners.AgentShutdown, 2},
		{runners.Reconfigured, 2},
		{runners.AppRemoved, 0},
	} {
		t.Run(string(tc.why), func(t *testing.T) {
			fe := newFakeEngine(t)
			fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
			c := fakeRunner(t, fe, Config{Replicas: 2, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond})
			mustDeploy(t, c, "v1")
			// A container of the app the runner does not know: left by an
			// agent that stopped during a deploy.
			stray, err := fe.CreateContainer(t.Context(), ContainerSpec{Name: "app-v0", Image: imageRef("v1"),
				Labels: map[string]string{LabelManaged: "true", LabelApp: "app", LabelVersion: "v0"}})
			if err != nil {
				t.Fatal(err)
			}
			addr := proxyBase(t, c)
			if err := c.Stop(t.Context(), tc.why); err != nil {
				t.Fatal(err)
			}
			if n := len(fe.addrsOf("v1")); n != tc.left {
				t.Errorf("%d containers run after Stop(%s); want %d", n, tc.why, tc.left)
			}
			if tc.left == 0 && len(fe.all()) != 0 {
				t.Errorf("containers left after Stop(%s): %v", tc.why, fe.all())
			}
			if tc.left > 0 && fe.container(stray) == nil {
				t.Errorf("Stop(%s) removed a container of the app", tc.why)
			}
			if c.Addrs() != nil {
				t.Error("proxies still listed after Stop")
			}
			if _, err := testkit.Get(nil, addr+"/version"); err == nil {
				t.Error("the proxy still answers after Stop")
			}
			if err := c.Deploy(t.Context(), deployment("v1")); err == nil {
				t.Error("deploy after Stop succeeded")
			}
		})
	}
}

// TestFakeEngineErrors: an unreachable engine or a missing image is not the
// release's fault; the replicas serving go on serving.
func TestFakeEngineErrors(t *testing.T) {
	fe := newFakeEngine(t)
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	fe.publish(imageRef("v2"), fakeImage{Version: "v2"})
	c := fakeRunner(t, fe, Config{HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond})

	fe.down.Store(true)
	err := c.Deploy(t.Context(), deployment("v1"))
	if err == nil || errors.Is(err, runners.ErrBadRelease) || !errors.Is(err, ErrEngineUnavailable) {
		t.Fatalf("deploy with the engine down: %v; want an unavailable engine, not a bad release", err)
	}
	fe.down.Store(false)
	mustDeploy(t, c, "v1")

	err = c.Deploy(t.Context(), runners.Deployment{Version: "v9", Image: imageRef("v9")})
	if err == nil || errors.Is(err, runners.ErrBadRelease) {
		t.Fatalf("deploy of an image the registry lacks: %v; want an error that is not a bad release", err)
	}

	fe.down.Store(true)
	err = c.Deploy(t.Context(), deployment("v2"))
	if err == nil || errors.Is(err, runners.ErrBadRelease) {
		t.Fatalf("deploy with the engine down: %v; want an error that is not a bad release", err)
	}
	wantServed(t, c, "v1")
	fe.down.Store(false)
	mustDeploy(t, c, "v2")
	wantServed(t, c, "v2")
}

// TestFakeEngineRestartsReplica: a replica the engine restarts leaves the
// rotation and comes back on its new port; its restart is reported; no
// request made after the crash fails.
func TestFakeEngineRestartsReplica(t *testing.T) {
	fe := newFakeEngine(t)
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	c := fakeRunner(t, fe, Config{Replicas: 2, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond})
	mustDeploy(t, c, "v1")
	id := fe.byVersion("v1")[0]
	// The crash cuts the connections open to the replica; the ones made after
	// it must all be served while the monitor reacts.
	fe.crash(id, 1)
	load := startTraffic(t, proxyBase(t, c))
	waitUntil(t, 10*time.Second, "the restart reported", func() bool { return c.Workload().Restarts == 1 })
	waitUntil(t, 10*time.Second, "the restarted replica back in rotation on its new port", func() bool {
		fe.mu.Lock()
		addr := fe.containers[id].ports[8080]
		fe.mu.Unlock()
		return slices.Contains(c.rotationAddrs()[0], addr)
	})
	load.finish(t)
	if w := c.Workload(); !w.Running || w.CrashLooping {
		t.Errorf("workload %+v; want running, not crash looping", w)
	}
}

// TestFakeExitLeavesRotationAtOnce: the engine's "die" event takes a replica
// out of rotation at once, not at the monitor's next check (an hour here):
// while the engine restarts it, its old port takes connections and drops
// them, and no request goes there. Its "start" event brings it back.
func TestFakeExitLeavesRotationAtOnce(t *testing.T) {
	fe := newFakeEngine(t)
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	c := fakeRunner(t, fe, Config{Replicas: 2, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond})
	c.watchEvery = time.Hour
	mustDeploy(t, c, "v1")
	id := fe.byVersion("v1")[0]
	fe.mu.Lock()
	old := fe.containers[id].ports[8080]
	fe.mu.Unlock()

	fe.crashHeld(id, 1)
	waitUntil(t, 5*time.Second, "the exited replica out of rotation", func() bool {
		return !slices.Contains(c.rotationAddrs()[0], old)
	})
	for range 20 {
		if got, err := testkit.Get(nil, proxyBase(t, c)+"/version"); err != nil || got != "v1" {
			t.Fatalf("GET /version while a replica restarts = %q, %v; want v1", got, err)
		}
	}
	fe.restarted(id)
	waitUntil(t, 5*time.Second, "the restarted replica back in rotation on its new port", func() bool {
		fe.mu.Lock()
		addr := fe.containers[id].ports[8080]
		fe.mu.Unlock()
		return addr != "" && slices.Contains(c.rotationAddrs()[0], addr)
	})
	if w := c.Workload(); w.Restarts != 1 {
		t.Errorf("workload %+v; want 1 restart", w)
	}
}

// TestFakeResumeScales: adopted replicas are brought to the new Replicas
// without replacing them: extra ones are retired, missing ones started.
func TestFakeResumeScales(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int
	}{
		{name: "down", from: 3, to: 2},
		{name: "up", from: 1, to: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFakeEngine(t)
			fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
			cfg := Config{Replicas: tc.from, HealthPath: "/health", DrainTime: 100 * time.Millisecond, CrashWindow: 10 * time.Millisecond}
			first := fakeRunner(t, fe, cfg)
			mustDeploy(t, first, "v1")
			before := fe.byVersion("v1")
			if err := first.Stop(t.Context(), runners.AgentShutdown); err != nil {
				t.Fatal(err)
			}
			cfg.Replicas = tc.to
			second := fakeRunner(t, fe, cfg)
			if err := second.Resume(t.Context(), deployment("v1")); err != nil {
				t.Fatalf("resume: %v", err)
			}
			after := fe.byVersion("v1")
			if len(after) != tc.to {
				t.Fatalf("%d containers of v1 after resume; want %d", len(after), tc.to)
			}
			kept := 0
			for _, id := range before {
				if slices.Contains(after, id) {
					kept++
				}
			}
			if want := min(tc.from, tc.to); kept != want {
				t.Errorf("%d of the adopted replicas kept; want %d", kept, want)
			}
			if n := len(second.Replicas()); n != tc.to {
				t.Errorf("Replicas() lists %d; want %d", n, tc.to)
			}
			wantServed(t, second, "v1")
		})
	}
}

// TestFakeContainerEnvironment checks that a container's environment is the
// block's env and nothing of the agent's: its tokens stay with the agent.
func TestFakeContainerEnvironment(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "ghp_agent_secret")
	t.Setenv("HTTP_PROXY", "http://proxy.internal:3128")
	fe := newFakeEngine(t)
	fe.publish(imageRef("v1"), fakeImage{Version: "v1"})
	c := fakeRunner(t, fe, Config{
		Replicas: 2, HealthTimeout: 5 * time.Second, CrashWindow: 50 * time.Millisecond,
		Env: map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/app"},
	})
	mustDeploy(t, c, "v1")
	ids := fe.byVersion("v1")
	if len(ids) != 2 {
		t.Fatalf("v1 runs %d containers; want 2", len(ids))
	}
	want := []string{"APP_ENV=production", "DATABASE_URL=postgres://db/app"}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	for _, id := range ids {
		if got := fe.containers[id].spec.Env; !slices.Equal(got, want) {
			t.Errorf("container %s has environment %q, want %q", id[:12], got, want)
		}
	}
}
