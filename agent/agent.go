// Package agent is the supervisor: one worker goroutine per app, started from a
// config file, each polling its registry and deploying through its runner. Its words:
//
//   - Agent: the supervisor of all apps of one config file.
//   - worker: one app's loop (poll, select, deploy), owned by the Agent.
//   - app directory: <state_dir>/apps/<app>, holding releases/, current and state.json.
//   - reload: reading the file again and applying only the difference.
//
// Two different events end an app's workload, and runners see which one it is:
//
//   - The app is removed from the file, or its runner kind changed: its loop
//     ends and its runner is stopped with runners.AppRemoved. A changed runner
//     block of the same kind stops it with runners.Reconfigured (containers are
//     left for the new runner to replace by a rolling update; a server process
//     is stopped and started again). A change that leaves the runner block as
//     it was (interval, registry, hooks, ...) restarts only the loop; the
//     runner and its process pass to the new loop untouched.
//   - The agent stops (SIGINT/SIGTERM, Run's ctx cancelled): every loop ends and
//     every runner is stopped with runners.AgentShutdown.
//
// An app's failure is logged, recorded and retried with backoff; it never stops
// the agent or another app. A config file with any error changes nothing.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/notify"
	"github.com/dewy-agent/dewy-agent/releasestore"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Options configure an Agent.
type Options struct {
	// Logger is the agent's logger; each app's lines are tagged with app=<name>.
	Logger *slog.Logger
	// Level, when set, is the logger's level; a reload that changes log_level
	// sets it, so the level applies live.
	Level *slog.LevelVar
	// HTTPClient is used for registry traffic. Nil means DefaultHTTPClient().
	HTTPClient *http.Client
	// Now returns the time; nil means Clock.Now, or time.Now without a Clock.
	Now func() time.Time
	// Clock makes the timers the apps' loops and the config watcher wait on.
	// Nil means the wall clock. Tests pass a fake one (see Clock).
	Clock Clock
	// Statfs measures the file system holding a path, for the disk reserve
	// and the wait after disk_full; nil means releasestore.StatFS. Tests
	// pass a fake.
	Statfs func(path string) (releasestore.Space, error)
	// StallTimeout is how long a registry response may send nothing before
	// it fails; zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// StopTimeout bounds how long stopping all runners may take on shutdown.
	// Zero means two minutes.
	StopTimeout time.Duration
	// Watch makes Run watch the config file and reload it when it changes.
	Watch bool
	// Debounce is how long the watcher waits for a burst of file events to end.
	// Zero means 250ms.
	Debounce time.Duration
	// Version is the agent's own version, shown in status.
	Version string
	// Notifier, when set, is told when the agent is ready, reloading and
	// stopping, and fed the watchdog (systemd's sd_notify; see ServiceNotifier).
	Notifier ServiceNotifier
	// FDStore, when set, keeps the server runners' listening sockets while
	// the agent restarts (systemd's FDSTORE=1; internal/fdstore).
	FDStore runners.FDStore
	// AllowEmpty accepts a file that is empty or declares no app, at start and
	// on reload (dewy-agent run -allow-empty). Without it such a file is refused
	// on reload and changes nothing: a file caught while it is being rewritten
	// must not stop every app.
	AllowEmpty bool
	// Watchdog is the service manager's watchdog interval (WATCHDOG_USEC);
	// zero sends no WATCHDOG=1.
	Watchdog time.Duration
	// FleetCounter, when set, counts the fleet member's etcd requests
	// (benchmarks and tests).
	FleetCounter *fleet.RequestCounter
}

// Agent supervises the apps of one config file.
type Agent struct {
	opts    Options
	metrics *metrics
	started time.Time
	reloads atomic.Int64 // reloads that read and applied (or refused) a changed file
	host    string       // this machine's name, for deployment reports

	// reloadMu serialises reloads (file watcher, SIGHUP, POST /reload).
	reloadMu sync.Mutex
	runCtx   context.Context // set by Run; parent of every worker
	src      []byte          // the content cfg was loaded from, to skip no-op reloads

	mu         sync.Mutex // guards the fields below
	cfg        *config.File
	workers    map[string]*worker
	queue      *deployQueue // max_parallel_deploys, shared by every worker
	lastReload ReloadStatus
	admin      *adminServer
	adminToken atomic.Pointer[string] // the admin API's bearer token; "" or nil: none
	notifier   *notify.Dispatcher     // agent notify; nil when none
	fleet      *fleetState            // set by Run with a fleet block (fleet.go)

	// watchSeen, when set (by tests, before Run), is told the name of every
	// file event the config watcher handles, before it is filtered.
	watchSeen func(name string)
}

// New returns an agent for cfg. It does no I/O.
func New(cfg *config.File, opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = DefaultHTTPClient()
	}
	if opts.Now == nil && opts.Clock != nil {
		opts.Now = opts.Clock.Now
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{now: opts.Now}
	}
	if opts.Statfs == nil {
		opts.Statfs = releasestore.StatFS
	}
	if opts.StallTimeout == 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Minute
	}
	if opts.Debounce == 0 {
		opts.Debounce = 250 * time.Millisecond
	}
	a := &Agent{opts: opts, cfg: cfg, workers: map[string]*worker{}, metrics: newMetrics(), queue: newDeployQueue(parallelDeploys(cfg))}
	a.metrics.reg.MustRegister(newWorkloadCollector(a.Statuses), newFleetCollector(a.Statuses))
	a.metrics.reg.MustRegister(queueMetrics(a.queue)...)
	return a
}

// DefaultHTTPClient is the registry client: bounded connect, TLS and header waits,
// but no overall timeout, since an artifact download may take long.
func DefaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: t}
}

// Run starts every app and blocks until ctx is cancelled, then stops them all
// (runners.AgentShutdown) and returns. It returns an error only when the agent
// cannot start at all (an app cannot be built; the state directory
// cannot be created; the admin address is taken).
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(cfg.Agent.StateDir, "apps"), 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if src, err := os.ReadFile(cfg.Path); err == nil {
		a.src = src
	}
	a.started = a.opts.Now()
	a.host, _ = os.Hostname()
	a.setAgentNotifier(cfg.Agent.Notify)
	a.setReload(ReloadStatus{Time: a.started, Result: "success"})
	a.metrics.lastReloadOK.Set(1)
	a.metrics.lastReloadTime.SetToCurrentTime()
	a.adminToken.Store(&cfg.Agent.AdminToken)
	if cfg.Agent.Admin != "" {
		adm, err := a.startAdmin(cfg.Agent.Admin)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.admin = adm
		a.mu.Unlock()
	}

	if err := a.joinFleet(ctx, cfg); err != nil {
		return err
	}
	a.reloadMu.Lock()
	a.runCtx = ctx
	a.opts.Logger.Info("agent started", "config", cfg.Path, "apps", len(cfg.Apps), "state_dir", cfg.Agent.StateDir, "version", a.opts.Version)
	for _, app := range cfg.Apps {
		a.startApp(cfg, app)
	}
	a.reloadMu.Unlock()
	a.notifyReady()
	if a.opts.Watchdog > 0 {
		go a.watchdog(ctx, a.opts.Watchdog)
	}

	var watchDone chan struct{}
	if a.opts.Watch {
		watchDone = make(chan struct{})
		go func() {
			defer close(watchDone)
			a.watch(ctx, cfg.Path)
		}()
	}
	<-ctx.Done()
	a.notify(daemon.SdNotifyStopping)

	if watchDone != nil {
		<-watchDone
	}
	a.reloadMu.Lock() // no reload may start workers from here on
	defer a.reloadMu.Unlock()
	a.opts.Logger.Info("agent stopping", "apps", len(a.Statuses()))
	why := runners.AgentShutdown
	if a.cfg.Agent.KeepAppsRunningOnStop {
		why = runners.AgentUpgrade // the next agent adopts the apps
	}
	a.stopWorkers(a.takeAll(), why)
	a.leaveFleet()
	a.mu.Lock()
	adm := a.admin
	a.mu.Unlock()
	if adm != nil {
		adm.Close()
	}
	a.setAgentNotifier(nil) // delivers what is queued, within its drain bound
	a.opts.Logger.Info("agent stopped")
	return nil
}

// startApp builds and starts one app's worker under the run context. A worker
// that cannot be built is logged and left out; the other apps run. The caller
// holds reloadMu.
func (a *Agent) startApp(cfg *config.File, app config.App) {
	a.startAppWith(cfg, app, nil)
}

// startAppWith is startApp with the runner of the app's previous worker when
// run is not nil (see handover).
func (a *Agent) startAppWith(cfg *config.File, app config.App, run runners.Runner) {
	w, err := a.newWorker(cfg, app, run)
	if err != nil {
		a.opts.Logger.Error("app not started", "app", app.Name, "err", err)
		return
	}
	a.mu.Lock()
	a.workers[app.Name] = w
	a.mu.Unlock()
	w.start(a.runCtx)
}

// takeAll removes every worker from the agent and returns them.
func (a *Agent) takeAll() []*worker {
	a.mu.Lock()
	defer a.mu.Unlock()
	ws := make([]*worker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.workers = map[string]*worker{}
	return ws
}

// stopWorkers stops the workers concurrently and waits for all of them.
func (a *Agent) stopWorkers(ws []*worker, why runners.StopReason) {
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.StopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { w.stop(ctx, why) })
	}
	wg.Wait()
}

// Statuses returns every app's status, sorted by name.
func (a *Agent) Statuses() []Status {
	a.mu.Lock()
	ws := make([]*worker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	out := make([]Status, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// appDir is <state_dir>/apps/<name>.
func appDir(cfg *config.File, name string) string {
	return filepath.Join(cfg.Agent.StateDir, "apps", name)
}

func policy(app config.App) version.Policy {
	return version.Policy{
		PreRelease: app.PreRelease,
		Artifact:   app.Artifact,
		CalVer:     app.CalVer,
		Slot:       app.Slot,
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

func (a *Agent) newWorker(cfg *config.File, app config.App, run runners.Runner) (*worker, error) {
	logger := a.opts.Logger.With("app", app.Name)
	dir := appDir(cfg, app.Name)
	srcOpts, limits := a.sourceOptions(logger, app)
	src, err := newSource(app, srcOpts)
	if err != nil {
		return nil, err
	}
	handedOver := run != nil
	run, input, err := newRunner(app, runners.Options{Logger: logger.With("runner", app.Runner.Kind()), AppDir: dir, FDStore: a.opts.FDStore}, run)
	if err != nil {
		return nil, err
	}
	w := &worker{
		app:        app,
		dir:        dir,
		logger:     logger,
		src:        src,
		runner:     run,
		pipe:       newPipeline(input, src, run, newStore(cfg, dir, app, logger, a.opts.Statfs), dir, logger),
		policy:     policy(app),
		now:        a.opts.Now,
		clock:      a.opts.Clock,
		queue:      a.queue,
		metrics:    a.metrics,
		host:       a.host,
		client:     a.opts.HTTPClient,
		retry:      make(chan struct{}, 1),
		handedOver: handedOver,
		events:     &events{app: app.Name, agent: a.agentNotifier},
		scrub:      hookScrubber(cfg, app, os.Environ()),
		fleet:      a.fleetFor(app),
		limits:     limits,
		statfs:     a.opts.Statfs,
	}
	if fp, ok := w.pipe.(*filePipeline); ok && w.fleet != nil {
		fp.published = w.fleet.publishedSum
	}
	if app.Verify != nil {
		v, err := app.Verify.New()
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		switch p := w.pipe.(type) {
		case *filePipeline:
			p.verifier = v
		case *imagePipeline:
			if app.Verify.Images() {
				p.verify = v
			}
		}
	}
	w.status = Status{Name: app.Name, Registry: app.Registry.URL, Runner: app.Runner.Kind(), State: StateStarting}
	if fp, ok := w.pipe.(*filePipeline); ok {
		w.progress = &progress{}
		fp.progress = w.progress
	}
	return w, nil
}
