package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Started by an init function of the GCS client's dependencies; never ends.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// env is a test world: a local folder registry with one release and a config file.
type env struct {
	t     *testing.T
	dir   string
	reg   string
	state string
	cfg   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, reg: filepath.Join(dir, "registry"), state: filepath.Join(dir, "state"), cfg: filepath.Join(dir, "dewy.hcl")}
	e.publish("v1.0.0")
	return e
}

func (e *env) publish(v string) {
	e.t.Helper()
	d := filepath.Join(e.reg, v)
	if err := os.MkdirAll(d, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "site.tar.gz"), site(v), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// config returns a config file text with the named apps, each with interval.
func (e *env) config(interval string, apps ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "agent {\n  state_dir = %q\n  admin = \"\"\n}\n", e.state)
	for _, a := range apps {
		fmt.Fprintf(&b, "app %q {\n  registry = \"file://%s\"\n  artifact = \"site.tar.gz\"\n  interval = %q\n  runner \"assets\" {}\n}\n", a, e.reg, interval)
	}
	return b.String()
}

func (e *env) write(text string) {
	e.t.Helper()
	if err := os.WriteFile(e.cfg, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// start runs an agent on the config file until the test ends.
func (e *env) start(opts Options) *Agent {
	e.t.Helper()
	return e.run(e.newAgent(opts))
}

// startPolled starts an agent on a fake clock and returns once the app
// "site" has ended its first poll: from then on the test drives the polls.
func (e *env) startPolled() (*Agent, *worker, *fakeClock) {
	e.t.Helper()
	return e.startPolledWith(Options{})
}

// startPolledWith is startPolled with opts (its Clock is the fake one).
func (e *env) startPolledWith(opts Options) (*Agent, *worker, *fakeClock) {
	e.t.Helper()
	clk := newFakeClock()
	opts.Clock = clk
	a := e.start(opts)
	waitFor(e.t, "a worker", func() bool { return a.worker("site") != nil })
	w := a.worker("site")
	waitFor(e.t, "the first poll", func() bool { return w.polled.Load() > 0 })
	return a, w, clk
}

// startSite starts an agent as startPolled does, with the one app "site"
// polling every second, and checks that the first poll deployed v1.0.0.
func (e *env) startSite() (*Agent, *worker, *fakeClock) {
	e.t.Helper()
	e.write(e.config("1s", "site"))
	a, w, clk := e.startPolled()
	if got := w.snapshot().Deployed; got != "v1.0.0" {
		e.t.Fatalf("deployed %q after the first poll, want v1.0.0", got)
	}
	return a, w, clk
}

// newAgent returns an agent on the config file, not yet running.
func (e *env) newAgent(opts Options) *Agent {
	e.t.Helper()
	cfg, diags := config.Load(e.cfg)
	if diags.HasErrors() {
		e.t.Fatalf("config: %v", diags)
	}
	if opts.Logger == nil {
		opts.Logger = testkit.Logger(e.t, slog.LevelDebug)
	}
	return New(cfg, opts)
}

// run runs a until the test ends.
func (e *env) run(a *Agent) *Agent {
	e.t.Helper()
	testkit.Go(e.t, "Run", a.Run)
	return a
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, what, cond)
}

func (a *Agent) worker(name string) *worker {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.workers[name]
}

func deployed(a *Agent, name string) func() bool {
	return func() bool {
		w := a.worker(name)
		return w != nil && w.snapshot().Deployed != ""
	}
}
