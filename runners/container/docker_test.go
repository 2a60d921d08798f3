package container_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/goleak"

	"github.com/dewy-agent/dewy-agent/internal/testimage"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/container"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testLabel marks the images a test builds, for cleanup.
const testLabel = "dewy-agent.test"

// engine returns a client of the local Docker engine, or skips the test.
func engine(t *testing.T) *client.Client {
	t.Helper()
	testkit.Slow(t, "starts real containers on the Docker engine")
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Skipf("skipped: no Docker engine (%v); these tests need one (DOCKER_HOST or the local socket)", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		t.Skipf("skipped: no Docker engine answers (%v); these tests need one (DOCKER_HOST or the local socket)", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// env is one test's world: a registry, an app name of its own, the OCI source
// on the app's repository, and the agent's steps (poll, select, pin).
type env struct {
	t        *testing.T
	cli      *client.Client
	reg      *testimage.Registry
	app      string
	appDir   string
	src      *oci.Registry
	platform string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cli := engine(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the host
	b := make([]byte, 4)
	rand.Read(b)
	e := &env{t: t, cli: cli, reg: testimage.NewRegistry(t), app: "dewytest-" + hex.EncodeToString(b), appDir: t.TempDir()}
	src, err := oci.New(oci.Config{Repository: e.reg.Repository(e.app)}, sources.Options{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	e.src = src
	// Registered before any runner's cleanup, so it runs after they stopped.
	t.Cleanup(e.cleanup)
	return e
}

// cleanup removes every container of the app and every image the test built.
func (e *env) cleanup() {
	testimage.Clean(context.Background(), e.cli, container.LabelApp, testLabel, e.app)
}

// build builds an image of the test app labelled for cleanup.
func (e *env) build(ver string, opts testimage.Options) v1.Image {
	e.t.Helper()
	opts.Labels = map[string]string{testLabel: e.app}
	return testimage.Build(e.t, ver, opts)
}

// publish pushes an image of the test app as the app's tag ver.
func (e *env) publish(ver string, opts testimage.Options) {
	e.t.Helper()
	e.reg.MustPush(e.t, e.app, ver, e.build(ver, opts))
}

// publishIndex pushes ver as a multi-platform index (amd64 and arm64), and returns
// the digest of the host's image.
func (e *env) publishIndex(ver string) v1.Hash {
	e.t.Helper()
	var entries []testimage.Platformed
	var host v1.Hash
	for _, arch := range []string{"amd64", "arm64"} {
		img := e.build(ver, testimage.Options{Platform: "linux/" + arch})
		entries = append(entries, testimage.Platformed{Platform: v1.Platform{OS: "linux", Architecture: arch}, Image: img})
		if arch == runtime.GOARCH {
			host, _ = img.Digest()
		}
	}
	e.reg.MustPushIndex(e.t, e.app, ver, testimage.Index(entries...))
	return host
}

// next does what the agent does before a deploy: poll the source, select the
// newest stable version, pin it for the engine's platform.
func (e *env) next(r *container.Container) runners.Deployment {
	e.t.Helper()
	ctx := e.t.Context()
	if e.platform == "" {
		p, err := r.Platform(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		e.platform = p
	}
	rels, err := e.src.Releases(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	sel, err := version.Select(rels, version.Policy{}, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := e.src.Pin(ctx, sel.Candidate.Release, e.platform)
	if err != nil {
		e.t.Fatal(err)
	}
	return runners.Deployment{Version: sel.Candidate.Version.Original(), Image: img}
}

// webConfig is the config of one replica of the test app behind the proxy on
// a free port, with a health check and short drain and stop times.
func (e *env) webConfig(healthTimeout, crashWindow time.Duration) container.Config {
	return container.Config{
		App: e.app, Ports: []string{"0"}, HealthPath: "/health",
		HealthTimeout: healthTimeout, DrainTime: 200 * time.Millisecond, StopTimeout: 2 * time.Second,
		CrashWindow: crashWindow,
	}
}

func (e *env) runner(cfg container.Config) *container.Container {
	e.t.Helper()
	logger := slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := container.New(cfg, runners.Options{Logger: logger.With("app", e.app), AppDir: e.appDir + "/" + e.app})
	e.t.Cleanup(func() {
		if err := r.Stop(context.Background(), runners.AppRemoved); err != nil {
			e.t.Errorf("stop at cleanup: %v", err)
		}
	})
	return r
}

// containers lists the app's containers: ID -> version label, running ones only
// unless all.
func (e *env) containers(all bool) map[string]string {
	e.t.Helper()
	list, err := e.cli.ContainerList(e.t.Context(), dcontainer.ListOptions{All: all, Filters: filters.NewArgs(filters.Arg("label", container.LabelApp+"="+e.app))})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range list {
		out[c.ID] = c.Labels[container.LabelVersion]
	}
	return out
}

func (e *env) hasImage(ref string) bool {
	e.t.Helper()
	_, err := e.cli.ImageInspect(e.t.Context(), ref)
	if err != nil && !cerrdefs.IsNotFound(err) {
		e.t.Fatal(err)
	}
	return err == nil
}

func proxyURL(t *testing.T, r *container.Container) string {
	t.Helper()
	addrs := r.Addrs()
	if len(addrs) == 0 {
		t.Fatal("runner has no proxy")
	}
	_, port, err := net.SplitHostPort(addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	return "http://127.0.0.1:" + port
}

// fetch GETs url once on a fresh connection.
func fetch(url string) (string, error) { return testkit.Get(nil, url) }

// startLoad starts workers sending GET url/version, half of them with
// keep-alive and half without.
func startLoad(url string, workers int) *testkit.Load {
	return testkit.StartLoad(url+"/version", testkit.LoadOptions{Workers: workers, KeepAlive: testkit.KeepAliveHalf, Timeout: 15 * time.Second, Pause: 2 * time.Millisecond})
}

// finishLoad stops the load, fails the test on any failed request or when too
// few succeeded, and returns the answers by version.
func finishLoad(t *testing.T, l *testkit.Load) map[string]int {
	t.Helper()
	res := l.Stop()
	if res.Failed > 0 {
		t.Errorf("%d of %d requests failed; first: %v", res.Failed, res.Sent, res.Errors)
	}
	if ok := res.Sent - res.Failed; ok < 100 {
		t.Errorf("only %d requests succeeded: the load did not run", ok)
	}
	t.Logf("load: %d requests ok, versions %v", res.Sent-res.Failed, res.Answers)
	return res.Answers
}

func wantVersion(t *testing.T, url, want string) {
	t.Helper()
	got, err := fetch(url + "/version")
	if err != nil || got != want {
		t.Fatalf("GET /version = %q, %v; want %q", got, err, want)
	}
}

// TestRollingUpdate deploys three versions under continuous requests (with and
// without keep-alive) and checks that none fails, that the old replicas and the
// oldest image are removed, and that a multi-platform tag runs the host's image.
func TestRollingUpdate(t *testing.T) {
	e := newEnv(t)
	r := e.runner(container.Config{
		App: e.app, Ports: []string{"0"}, Replicas: 2, HealthPath: "/health",
		HealthTimeout: 20 * time.Second, DrainTime: 500 * time.Millisecond, StopTimeout: 5 * time.Second, KeepImages: 2,
		CrashWindow: 500 * time.Millisecond,
	})

	e.publish("v1.0.0", testimage.Options{})
	d1 := e.next(r)
	if d1.Version != "v1.0.0" {
		t.Fatalf("selected %s, want v1.0.0", d1.Version)
	}
	if err := r.Deploy(t.Context(), d1); err != nil {
		t.Fatal(err)
	}
	url := proxyURL(t, r)
	wantVersion(t, url, "v1.0.0")

	l := startLoad(url, 8)
	hostDigest := e.publishIndex("v1.1.0")
	e.publish("latest", testimage.Options{}) // never chosen
	d2 := e.next(r)
	if want := e.reg.Repository(e.app) + "@" + hostDigest.String(); d2.Image != want {
		t.Errorf("v1.1.0 pinned to %s, want the %s image of the index, %s", d2.Image, runtime.GOARCH, want)
	}
	if err := r.Deploy(t.Context(), d2); err != nil {
		t.Fatal(err)
	}
	wantVersion(t, url, "v1.1.0")
	e.publish("v1.2.0", testimage.Options{})
	d3 := e.next(r)
	if err := r.Deploy(t.Context(), d3); err != nil {
		t.Fatal(err)
	}
	wantVersion(t, url, "v1.2.0")
	time.Sleep(200 * time.Millisecond)
	versions := finishLoad(t, l)
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0"} {
		if versions[v] == 0 {
			t.Errorf("no request answered by %s during the updates: %v", v, versions)
		}
	}

	got := e.containers(true)
	if len(got) != 2 {
		t.Errorf("containers after the updates: %v, want 2 of v1.2.0", got)
	}
	for id, v := range got {
		if v != "v1.2.0" {
			t.Errorf("container %s runs %s, want v1.2.0 only", id[:12], v)
		}
	}
	if e.hasImage(d1.Image) {
		t.Errorf("image %s still present; keep_images 2 should have removed it", d1.Image)
	}
	for _, d := range []runners.Deployment{d2, d3} {
		if !e.hasImage(d.Image) {
			t.Errorf("image %s removed; it is one of the newest 2", d.Image)
		}
	}
	if w := r.Workload(); !w.Running || w.Restarts != 0 || w.CrashLooping || w.PID == 0 {
		t.Errorf("Workload() = %+v, want running without restarts", w)
	}
}

// TestFailedDeployKeepsOld tries releases that cannot serve, under load: each
// deploy fails with a message that says why, the old replica keeps serving
// untouched, and the new containers and image are removed.
func TestFailedDeployKeepsOld(t *testing.T) {
	e := newEnv(t)
	r := e.runner(e.webConfig(3*time.Second, 200*time.Millisecond))
	e.publish("v1.0.0", testimage.Options{})
	if err := r.Deploy(t.Context(), e.next(r)); err != nil {
		t.Fatal(err)
	}
	url := proxyURL(t, r)
	before := e.containers(false)
	l := startLoad(url, 4)

	tests := []struct {
		name    string
		opts    testimage.Options
		wantErr string
	}{
		{name: "health check fails", opts: testimage.Options{Env: []string{"FAIL_HEALTH=1"}}, wantErr: "is not healthy after 3s: GET /health: 503 Service Unavailable"},
		// The engine may already be restarting it (exit code 0 while it does), so
		// only the word is checked.
		{name: "exits at start", opts: testimage.Options{Env: []string{"EXIT_AT_START=1"}}, wantErr: "exited with code"},
		{name: "exposes two ports", opts: testimage.Options{ExtraPorts: []int{9000}}, wantErr: "exposes 2 (8080, 9000)"},
		{name: "exposes no port", opts: testimage.Options{NoExpose: true}, wantErr: "exposes none"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ver := fmt.Sprintf("v1.0.%d", i+1)
			e.publish(ver, tt.opts)
			d := e.next(r)
			if d.Version != ver {
				t.Fatalf("selected %s, want %s", d.Version, ver)
			}
			err := r.Deploy(t.Context(), d)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Deploy error = %v, want one containing %q", err, tt.wantErr)
			}
			t.Logf("Deploy error: %v", err)
			if got := e.containers(true); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Errorf("containers after the failed deploy: %v, want the old one untouched: %v", got, before)
			}
			if e.hasImage(d.Image) {
				t.Errorf("image of the failed release %s still present", d.Image)
			}
			wantVersion(t, url, "v1.0.0")
		})
	}
	versions := finishLoad(t, l)
	if len(versions) != 1 || versions["v1.0.0"] == 0 {
		t.Errorf("answers during the failed deploys: %v, want v1.0.0 only", versions)
	}
}

// TestCrashWindowRollsBack deploys a release that passes its health check and
// crashes soon after going live: the deploy is rolled back to the old replica,
// which kept running out of rotation meanwhile.
func TestCrashWindowRollsBack(t *testing.T) {
	e := newEnv(t)
	r := e.runner(e.webConfig(10*time.Second, 5*time.Second))
	e.publish("v1.0.0", testimage.Options{})
	d1 := e.next(r)
	d1.Activate = func() error { return nil }
	d1.Rollback = func() error { return nil }
	if err := r.Deploy(t.Context(), d1); err != nil {
		t.Fatal(err)
	}
	before := e.containers(false)
	e.publish("v1.1.0", testimage.Options{Env: []string{"EXIT_AFTER=1500ms"}})
	d2 := e.next(r)
	var activated, rolledBack int
	d2.Activate = func() error { activated++; return nil }
	d2.Rollback = func() error { rolledBack++; return nil }
	err := r.Deploy(t.Context(), d2)
	if err == nil || !strings.Contains(err.Error(), "exited within 5s of going live") {
		t.Fatalf("Deploy error = %v, want a crash within the window", err)
	}
	if activated != 1 || rolledBack != 1 {
		t.Errorf("Activate called %d times, Rollback %d; want 1 and 1", activated, rolledBack)
	}
	wantVersion(t, proxyURL(t, r), "v1.0.0")
	if got := e.containers(true); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("containers after the rollback: %v, want the old one untouched: %v", got, before)
	}
}

// TestRestartAdoptRemove stops a runner as the agent does on shutdown, checks the
// containers keep running, adopts them with a new runner without restarting
// them, replaces them when the settings changed, and removes them all when the
// app is removed.
func TestRestartAdoptRemove(t *testing.T) {
	e := newEnv(t)
	cfg := e.webConfig(20*time.Second, 200*time.Millisecond)
	cfg.Replicas = 2
	first := e.runner(cfg)
	e.publish("v1.0.0", testimage.Options{})
	d := e.next(first)
	if err := first.Deploy(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	ids := e.containers(false)
	if len(ids) != 2 {
		t.Fatalf("running containers: %v, want 2", ids)
	}
	firstURL := proxyURL(t, first)
	if err := first.Stop(t.Context(), runners.AgentShutdown); err != nil {
		t.Fatal(err)
	}
	if got := e.containers(false); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("after AgentShutdown: running %v, want the same %v", got, ids)
	}
	if _, err := fetch(firstURL + "/version"); err == nil {
		t.Error("the stopped runner's proxy still answers")
	}

	// A leftover of a deploy that the agent did not finish: not started, another version.
	stray, err := e.cli.ContainerCreate(t.Context(), &dcontainer.Config{Image: d.Image, Labels: map[string]string{
		container.LabelManaged: "true", container.LabelApp: e.app, container.LabelVersion: "v0.9.0",
	}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}

	// A restarted agent: state.json knows the version; the image comes from the
	// runner's own record.
	second := e.runner(cfg)
	if err := second.Resume(t.Context(), runners.Deployment{Version: d.Version}); err != nil {
		t.Fatal(err)
	}
	if got := e.containers(true); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("after Resume: containers %v, want the same %v (adopted, not restarted) and the stray %s removed", got, ids, stray.ID[:12])
	}
	url := proxyURL(t, second)
	hosts := map[string]bool{}
	for range 10 {
		h, err := fetch(url + "/hostname")
		if err != nil {
			t.Fatal(err)
		}
		hosts[h] = true
	}
	for h := range hosts {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(ids)), func(id string) bool { return strings.HasPrefix(id, h) }) {
			t.Errorf("answer from %s, not one of the adopted containers %v", h, ids)
		}
	}
	if len(hosts) != 2 {
		t.Errorf("answers from %d replicas, want both", len(hosts))
	}
	if err := second.Stop(t.Context(), runners.AgentShutdown); err != nil {
		t.Fatal(err)
	}

	// Restarted with other settings: the containers are replaced.
	changed := cfg
	changed.Env = map[string]string{"EXTRA": "1"}
	third := e.runner(changed)
	if err := third.Resume(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	replaced := e.containers(true)
	if len(replaced) != 2 {
		t.Errorf("after Resume with new settings: %v, want 2 containers", replaced)
	}
	for id := range replaced {
		if _, ok := ids[id]; ok {
			t.Errorf("container %s made with the old settings is still there", id[:12])
		}
	}
	wantVersion(t, proxyURL(t, third), "v1.0.0")

	if err := third.Stop(t.Context(), runners.AppRemoved); err != nil {
		t.Fatal(err)
	}
	if got := e.containers(true); len(got) != 0 {
		t.Errorf("after AppRemoved: containers %v, want none", got)
	}
	if err := third.Deploy(t.Context(), d); err == nil {
		t.Error("Deploy after Stop succeeded")
	}
}

// TestEngineRestartsReplica runs a release whose containers crash 3s after start,
// past the crash window: the engine restarts them, the monitor counts the restarts and reports a
// crash loop, and the replica serves again between crashes.
func TestEngineRestartsReplica(t *testing.T) {
	e := newEnv(t)
	r := e.runner(e.webConfig(10*time.Second, 200*time.Millisecond))
	e.publish("v1.0.0", testimage.Options{Env: []string{"EXIT_AFTER=3s"}})
	if err := r.Deploy(t.Context(), e.next(r)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !r.Workload().CrashLooping && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	w := r.Workload()
	if !w.CrashLooping || w.Restarts < 3 {
		t.Fatalf("Workload() = %+v, want a crash loop of 3 or more restarts", w)
	}
	// Between crashes the restarted replica is back in rotation, on whatever
	// port the engine published it this time.
	var served bool
	for i := 0; i < 50 && !served; i++ {
		got, err := fetch(proxyURL(t, r) + "/version")
		served = err == nil && got == "v1.0.0"
		time.Sleep(100 * time.Millisecond)
	}
	if !served {
		t.Error("the restarted replica never served through the proxy")
	}
}

// TestWorkerWithoutPorts deploys an app that publishes nothing (a worker): no
// proxy, healthy when still running after the settle time.
func TestWorkerWithoutPorts(t *testing.T) {
	e := newEnv(t)
	r := e.runner(container.Config{
		App: e.app, SettleTime: 500 * time.Millisecond, DrainTime: 100 * time.Millisecond, StopTimeout: time.Second,
		CrashWindow: 200 * time.Millisecond,
		Env:         map[string]string{"PORT": "9999"},
	})
	for _, ver := range []string{"v1.0.0", "v1.1.0"} {
		e.publish(ver, testimage.Options{})
		if err := r.Deploy(t.Context(), e.next(r)); err != nil {
			t.Fatal(err)
		}
	}
	if addrs := r.Addrs(); len(addrs) != 0 {
		t.Errorf("Addrs() = %v, want none", addrs)
	}
	got := e.containers(true)
	if len(got) != 1 || slices.Collect(maps.Values(got))[0] != "v1.1.0" {
		t.Errorf("containers %v, want one of v1.1.0", got)
	}
	if w := r.Workload(); !w.Running {
		t.Errorf("Workload() = %+v, want running", w)
	}
}
