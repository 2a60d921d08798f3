// Package container is the runner that runs an app as Docker containers behind a
// TCP proxy held by the agent, and replaces them by rolling update without one
// failed request. Its words:
//
//   - Replica: one container of the app. Config.Replicas of them serve at once.
//     Each publishes its container ports on 127.0.0.1, on free ports the engine
//     picks, so that replicas of two versions can run side by side.
//   - Proxy: one listener per Config.Ports entry, on all interfaces, held by the
//     runner. Each connection goes to the next replica in rotation
//     (round-robin); a replica that refuses it is skipped. The proxy forwards TCP
//     and knows nothing of HTTP.
//   - Rotation: the replicas a proxy sends new connections to. A replica leaves
//     the rotation before it is stopped; its open connections go on (drain).
//   - Ownership: the labels dewy-agent.managed=true and dewy-agent.app=<app> mark
//     the app's containers; dewy-agent.version, dewy-agent.image and
//     dewy-agent.config (a hash of the container settings) say what each is.
//
// # Deploy
//
// The image (Deployment.Image, pinned by digest by the agent) is pulled with the
// credentials of Docker's config.json and credential helpers. Config.Replicas new
// containers start while the old ones serve; each must be healthy within
// HealthTimeout (a 2xx from HealthPath through its first port, or without
// HealthPath still running after SettleTime). Then the new replicas enter the
// rotation and the old ones leave it. The new ones are watched for CrashWindow
// while the old ones, still running, drain: their open connections get up to
// DrainTime to finish. Then the old ones are stopped (`docker stop`: the image's
// stop signal, StopTimeout, then SIGKILL) and removed. If a new replica fails its
// health check, or exits within the crash window (the old ones are then put back
// in rotation), the new ones are removed, the old ones serve, and Deploy returns
// the error with the replica's last output lines. The app should stop well on SIGTERM: stop accepting, finish what it
// accepted and close idle keep-alive connections.
//
// # Restarts and removal
//
// Stop(AgentShutdown) closes the proxies and LEAVES THE CONTAINERS RUNNING; the
// engine's restart policy (unless-stopped) keeps them up, also across a reboot.
// While the agent is down the app is reachable only on the replicas' published
// ports. Resume after a restart adopts the running containers of the deployed
// version without restarting them and serves them through new proxies; a
// container made with other settings (another dewy-agent.config hash) is replaced
// by a rolling update, and containers of other versions or not running are
// removed. Stop(AppRemoved) drains and removes every container of the app.
//
// While running, a monitor follows the engine's events of the app's containers
// and inspects the replicas every few seconds: a replica whose process exits
// leaves the rotation at once (its "die" event), and comes back (on its new
// published port) once the engine has restarted it and it is healthy again; its
// restarts are reported by Workload.
//
// # Engine
//
// The runner reaches the container engine only through Engine, the calls it
// makes. New uses the Docker engine of the environment; WithEngine gives it
// another (the tests' fake engine).
//
// # Images
//
// The images pulled for the app are recorded in <AppDir>/container-images.json.
// After each deploy the newest Config.KeepImages are kept and the runner's
// references to older ones removed (the engine deletes an image when nothing else
// references it). Images of a removed app are left to `docker image prune`.
//
// Containers' output stays in the engine's log driver (`docker logs`); a replica
// that fails its health check has its last lines in the error.
package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/tcpproxy"
	"github.com/dewy-agent/dewy-agent/runners"
)

// watchEvery is the monitor's period.
const watchEvery = 2 * time.Second

// healthEvery is the period of a new replica's health checks and of the crash
// window's inspections.
const healthEvery = 200 * time.Millisecond

// crash-loop rule, as the server runner's: this many restarts within the window.
const (
	crashLoopRestarts = 3
	crashLoopWindow   = time.Minute
)

// Container runs an app's image as replicas behind the agent's proxy.
type Container struct {
	cfg         Config
	app         string
	appDir      string
	logger      *slog.Logger
	health      *http.Client
	watchEvery  time.Duration
	healthEvery time.Duration
	newEngine   func() (Engine, error)
	ownEngine   bool // the runner made the engine and closes it at Stop

	op sync.Mutex // one Resume, Deploy or Stop at a time

	mu      sync.Mutex // guards the fields below and the replicas' guarded fields
	specs   []portSpec
	eng     Engine
	proxies []*tcpproxy.Proxy // one per spec
	live    []*replica
	recent  []time.Time // restarts seen by the monitor, for CrashLooping
	stopped bool
	cancel  context.CancelFunc // stops the monitor
	watched chan struct{}      // closed when the monitor returns
}

// Option changes how New makes a runner.
type Option func(*Container)

// WithEngine makes the runner use eng instead of the Docker engine of the
// environment (DOCKER_HOST, else the local socket). The caller keeps it: the
// runner does not close it.
func WithEngine(eng Engine) Option {
	return func(c *Container) { c.eng = eng }
}

// New returns a container runner. It does no I/O: the engine is reached and the
// ports bound by the first Resume or Deploy. cfg.App "" is the base name of
// opts.AppDir.
func New(cfg Config, opts runners.Options, options ...Option) *Container {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	app := cfg.App
	if app == "" && opts.AppDir != "" {
		app = filepath.Base(opts.AppDir)
	}
	cfg.App = app
	c := &Container{
		cfg:         cfg.withDefaults(),
		app:         app,
		appDir:      opts.AppDir,
		logger:      logger,
		health:      newHealthClient(),
		watchEvery:  watchEvery,
		healthEvery: healthEvery,
		newEngine:   newDockerEngine,
	}
	for _, o := range options {
		o(c)
	}
	return c
}

// errStopped is returned by Resume and Deploy after Stop.
var errStopped = errors.New("container: runner is stopped")

// prepare validates the config, makes the engine client and binds the proxies,
// the first time. It returns the engine.
func (c *Container) prepare() (Engine, error) {
	if err := c.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("container: config: %w", err)
	}
	if c.app == "" {
		return nil, errors.New("container: the app has no name (set Config.App)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, errStopped
	}
	if c.specs == nil {
		for _, s := range c.cfg.Ports {
			p, _ := parsePort(s) // Validate checked it
			c.specs = append(c.specs, p)
		}
	}
	if c.eng == nil {
		eng, err := c.newEngine()
		if err != nil {
			return nil, fmt.Errorf("container: docker client: %w", err)
		}
		c.eng, c.ownEngine = eng, true
	}
	if c.proxies == nil {
		var ps []*tcpproxy.Proxy
		for _, s := range c.specs {
			p, err := tcpproxy.Listen(":"+strconv.Itoa(s.proxy), c.logger)
			if err != nil {
				for _, q := range ps {
					q.Close(context.Background(), 0)
				}
				return nil, fmt.Errorf("container: proxy port %d: %w", s.proxy, err)
			}
			ps = append(ps, p)
		}
		c.proxies = ps
	}
	if c.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.watched = cancel, make(chan struct{})
		go c.watch(ctx, c.watched)
	}
	return c.eng, nil
}

// Deploy replaces the running replicas with replicas of d.Image: see the package
// doc. On error the previous replicas serve as before.
func (c *Container) Deploy(ctx context.Context, d runners.Deployment) error {
	c.op.Lock()
	defer c.op.Unlock()
	if d.Image == "" {
		return fmt.Errorf("container: deploy %s: the deployment has no image", d.Version)
	}
	eng, err := c.prepare()
	if err != nil {
		return err
	}
	logger := c.logger.With("version", d.Version, "image", d.Image)
	known := c.recorded(d.Image)
	pulled, err := c.pull(ctx, eng, d.Image)
	if err != nil {
		return fmt.Errorf("container: deploy %s: %w", d.Version, err)
	}
	if pulled {
		logger.Info("image pulled")
	}
	c.mu.Lock()
	old := slices.Clone(c.live)
	c.mu.Unlock()
	if err := c.rollout(ctx, eng, d.Version, d.Image, old, d.Activate, d.Rollback); err != nil {
		if pulled && !known {
			if rerr := removeImage(context.WithoutCancel(ctx), eng, d.Image); rerr != nil {
				logger.Warn("remove the failed release's image", "err", rerr)
			}
		}
		return fmt.Errorf("container: deploy %s: %w", d.Version, err)
	}
	c.removeStrays(ctx, eng)
	c.recordImage(context.WithoutCancel(ctx), eng, d.Version, d.Image)
	logger.Info("release deployed", "replicas", c.cfg.Replicas)
	return nil
}

// rollout starts Replicas new replicas of img, waits for all to be healthy, calls
// activate (when not nil), swaps them into the rotation in place of old, watches
// them for CrashWindow while old drains, then removes old. If a new replica fails
// before or within the crash window, the new ones are removed and old serves
// again (rollback is called if activate was).
func (c *Container) rollout(ctx context.Context, eng Engine, version, img string, old []*replica, activate, rollback func() error) error {
	ports, err := c.containerPorts(ctx, eng, img)
	if err != nil {
		return err
	}
	// Removing failed replicas must happen even when ctx is done.
	detached := context.WithoutCancel(ctx)
	var news []*replica
	fail := func(err error) error {
		if rerr := c.removeAll(detached, eng, news); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	for range c.cfg.Replicas {
		r, err := c.start(ctx, eng, version, img, ports)
		if err != nil {
			return fail(err)
		}
		news = append(news, r)
	}
	errs := make([]error, len(news))
	var wg sync.WaitGroup
	for i, r := range news {
		wg.Go(func() { errs[i] = c.waitHealthy(ctx, eng, r) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	if activate != nil {
		if err := activate(); err != nil {
			return fail(fmt.Errorf("activate: %w", err))
		}
	}
	swapped := time.Now()
	c.swap(news, old)
	c.logger.Info("new replicas in rotation", "version", version, "replicas", len(news), "retiring", len(old))
	if err := c.watchNew(ctx, eng, news); err != nil {
		err = fmt.Errorf("%w: %w", runners.ErrBadRelease, err)
		c.logger.Warn("new replica failed within the crash window; rolling back", "version", version, "err", err)
		c.swap(old, news)
		if rollback != nil {
			if rerr := rollback(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("switch current back: %w", rerr))
			}
		}
		c.retire(detached, eng, news, swapped)
		return err
	}
	c.retire(detached, eng, old, swapped)
	return nil
}

// watchNew watches the new replicas for CrashWindow (or until ctx is done, which
// ends the watch: the deploy has happened). It fails when one exits or is
// restarted by the engine.
func (c *Container) watchNew(ctx context.Context, eng Engine, news []*replica) error {
	window := time.NewTimer(c.cfg.CrashWindow)
	defer window.Stop()
	tick := time.NewTicker(c.healthEvery)
	defer tick.Stop()
	for {
		for _, r := range news {
			ins, err := eng.InspectContainer(ctx, r.id)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				continue // the engine's hiccup is not the release's fault
			}
			if failed(ins) {
				return fmt.Errorf("replica %s exited within %s of going live%s%s", r.name, c.cfg.CrashWindow, exitDetail(ins),
					c.logsTail(context.WithoutCancel(ctx), eng, r.id))
			}
		}
		select {
		case <-window.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// swap puts news in rotation and takes old out, at once for every proxy.
func (c *Container) swap(news, old []*replica) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range news {
		r.retired = false // a rollback brings retired replicas back
	}
	for _, r := range old {
		r.retired = true
	}
	for i, p := range c.proxies {
		var add, rm []*tcpproxy.Backend
		for _, r := range news {
			add = append(add, r.backends[i])
		}
		for _, r := range old {
			if i < len(r.backends) {
				rm = append(rm, r.backends[i])
			}
		}
		p.Add(add...)
		p.Remove(rm...)
	}
	live := slices.DeleteFunc(slices.Clone(c.live), func(r *replica) bool { return slices.Contains(old, r) })
	c.live = append(live, news...)
}

// retire waits for the replicas' open connections to end (until DrainTime after
// since), then stops and removes them. They must be out of rotation.
func (c *Container) retire(ctx context.Context, eng Engine, rs []*replica, since time.Time) {
	if len(rs) == 0 {
		return
	}
	var bs []*tcpproxy.Backend
	for _, r := range rs {
		bs = append(bs, r.backends...)
	}
	if !tcpproxy.Idle(ctx, since.Add(c.cfg.DrainTime), bs) {
		c.logger.Info("drain time over; stopping replicas with connections still open", "drain_time", c.cfg.DrainTime)
	}
	if err := c.removeAll(ctx, eng, rs); err != nil {
		c.logger.Warn("remove old replicas", "err", err)
	}
}

// removeStrays removes the app's containers that are not live: leftovers of an
// agent that stopped during a deploy, or of a removed replica.
func (c *Container) removeStrays(ctx context.Context, eng Engine) {
	list, err := c.appContainers(ctx, eng)
	if err != nil {
		c.logger.Warn("look for stray containers", "err", err)
		return
	}
	c.mu.Lock()
	var strays []*replica
	for _, s := range list {
		if !slices.ContainsFunc(c.live, func(r *replica) bool { return r.id == s.ID }) {
			strays = append(strays, summaryReplica(s))
		}
	}
	c.mu.Unlock()
	if len(strays) == 0 {
		return
	}
	c.logger.Info("removing stray containers of the app", "count", len(strays))
	if err := c.removeAll(context.WithoutCancel(ctx), eng, strays); err != nil {
		c.logger.Warn("remove stray containers", "err", err)
	}
}

// Resume brings the deployed release up after an agent restart. Running
// containers of d.Version are adopted as they are and served through the proxies;
// if they were made with other settings or from another image than d.Image (when
// set) they are then replaced by a rolling update; if none runs, replicas of the
// image are started. The image is d.Image, else the one recorded for d.Version at
// its deploy, else the one the adopted containers run. The app's other containers
// (stopped, or of another version: leftovers of a deploy the agent did not finish)
// are removed. A zero d (nothing deployed yet) is not an error.
func (c *Container) Resume(ctx context.Context, d runners.Deployment) error {
	c.op.Lock()
	defer c.op.Unlock()
	if d.Version == "" && d.Image == "" {
		return nil
	}
	eng, err := c.prepare()
	if err != nil {
		return err
	}
	list, err := c.appContainers(ctx, eng)
	if err != nil {
		return fmt.Errorf("container: resume %s: %w", d.Version, err)
	}
	var adopted, stale []*replica
	for _, s := range list {
		r := summaryReplica(s)
		if !s.Running || r.version != d.Version {
			stale = append(stale, r)
			continue
		}
		if err := c.adopt(ctx, eng, r); err != nil {
			c.logger.Warn("cannot adopt container; it will be replaced", "container", r.name, "err", err)
			stale = append(stale, r)
			continue
		}
		adopted = append(adopted, r)
	}
	c.swap(adopted, nil)
	hash := c.cfg.hash()
	current := !slices.ContainsFunc(adopted, func(r *replica) bool {
		return r.config != hash || (d.Image != "" && r.image != d.Image)
	})
	if len(adopted) > 0 {
		c.logger.Info("adopted running replicas", "version", d.Version, "replicas", len(adopted), "up_to_date", current)
	}
	// Stale containers are in no rotation: they serve nobody through the proxies.
	defer func() {
		if len(stale) == 0 {
			return
		}
		c.logger.Info("removing containers of the app that are not the deployed release", "count", len(stale))
		if err := c.removeAll(context.WithoutCancel(ctx), eng, stale); err != nil {
			c.logger.Warn("remove containers", "err", err)
		}
	}()
	img := d.Image
	if img == "" {
		img = c.imageFor(d.Version)
	}
	if img == "" && len(adopted) > 0 {
		img = adopted[0].image
	}
	if len(adopted) > 0 && current {
		return c.scale(ctx, eng, d.Version, img, adopted)
	}
	if img == "" {
		return fmt.Errorf("container: resume %s: no container runs it and its image is unknown; deploy it again", d.Version)
	}
	if _, err := c.pull(ctx, eng, img); err != nil {
		return fmt.Errorf("container: resume %s: %w", d.Version, err)
	}
	if err := c.rollout(ctx, eng, d.Version, img, adopted, nil, nil); err != nil {
		if len(adopted) > 0 {
			return fmt.Errorf("container: resume %s: replacing the adopted replicas: %w (they keep serving)", d.Version, err)
		}
		return fmt.Errorf("container: resume %s: %w", d.Version, err)
	}
	c.logger.Info("release resumed", "version", d.Version, "replicas", c.cfg.Replicas)
	return nil
}

// adopt fills a listed container's ports and backends from the engine.
func (c *Container) adopt(ctx context.Context, eng Engine, r *replica) error {
	ins, err := eng.InspectContainer(ctx, r.id)
	if err != nil {
		return err
	}
	img := r.image
	if ins.Image != "" {
		img = ins.Image // the image ID: present as long as the container exists
	}
	ports, err := c.containerPorts(ctx, eng, img)
	if err != nil {
		return err
	}
	r.ports = ports
	return c.bind(r, ins)
}

// scale brings the adopted replicas to Config.Replicas: extra ones are retired,
// missing ones started.
func (c *Container) scale(ctx context.Context, eng Engine, version, img string, adopted []*replica) error {
	n := c.cfg.Replicas
	switch {
	case len(adopted) > n:
		extra := adopted[n:]
		c.swap(nil, extra)
		c.retire(context.WithoutCancel(ctx), eng, extra, time.Now())
	case len(adopted) < n:
		ports, err := c.containerPorts(ctx, eng, img)
		if err != nil {
			return fmt.Errorf("container: resume %s: add replicas: %w", version, err)
		}
		for range n - len(adopted) {
			r, err := c.start(ctx, eng, version, img, ports)
			if err == nil {
				if err = c.waitHealthy(ctx, eng, r); err != nil {
					c.removeContainer(context.WithoutCancel(ctx), eng, r)
				}
			}
			if err != nil {
				return fmt.Errorf("container: resume %s: add a replica (%d of %d serve): %w", version, len(adopted), n, err)
			}
			c.swap([]*replica{r}, nil)
			adopted = append(adopted, r)
		}
	}
	c.logger.Info("release resumed", "version", version, "replicas", n)
	return nil
}

// Stop ends the runner. AppRemoved: the replicas leave the rotation, get up to
// DrainTime to finish, and every container of the app is stopped and removed.
// AgentShutdown (and any other reason): the proxies are closed after their
// connections end (up to DrainTime) and the containers are LEFT RUNNING for the
// next agent to adopt. Either way the proxies' ports are free afterwards, and
// Resume and Deploy fail.
func (c *Container) Stop(ctx context.Context, why runners.StopReason) error {
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	cancel, watched := c.cancel, c.watched
	eng, own, proxies, live := c.eng, c.ownEngine, c.proxies, slices.Clone(c.live)
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-watched
	}
	c.logger.Info("stopping", "reason", string(why), "replicas", len(live))
	var err error
	if why == runners.AppRemoved && eng != nil {
		c.swap(nil, live)
		var bs []*tcpproxy.Backend
		for _, r := range live {
			bs = append(bs, r.backends...)
		}
		tcpproxy.Idle(ctx, time.Now().Add(c.cfg.DrainTime), bs)
		all := live
		if list, lerr := c.appContainers(ctx, eng); lerr == nil {
			for _, s := range list {
				if !slices.ContainsFunc(all, func(r *replica) bool { return r.id == s.ID }) {
					all = append(all, summaryReplica(s))
				}
			}
		} else {
			err = lerr
		}
		if rerr := c.removeAll(ctx, eng, all); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	for _, p := range proxies {
		p.Close(ctx, c.cfg.DrainTime)
	}
	c.mu.Lock()
	c.proxies = nil
	if why == runners.AppRemoved {
		c.live = nil
	}
	c.mu.Unlock()
	if eng != nil && own {
		eng.Close()
		c.mu.Lock()
		c.eng = nil
		c.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("container: stop: %w", err)
	}
	return nil
}

// Workload reports the replicas for the agent's status and metrics: running when
// at least one live replica runs, the PID of the first running one, the engine's
// restarts of the live replicas, and crash looping when the monitor saw 3 or more
// restarts within a minute.
func (c *Container) Workload() runners.Workload {
	c.mu.Lock()
	defer c.mu.Unlock()
	var w runners.Workload
	for _, r := range c.live {
		if r.running && !w.Running {
			w.Running, w.PID = true, r.pid
		}
		w.Restarts += r.restarts
	}
	cut := time.Now().Add(-crashLoopWindow)
	n := 0
	for _, t := range c.recent {
		if t.After(cut) {
			n++
		}
	}
	w.CrashLooping = n >= crashLoopRestarts
	return w
}

// Addrs are the proxies' addresses, in Config.Ports order; nil before the first
// Resume or Deploy and after Stop. With proxy port 0 this is how to learn the port.
func (c *Container) Addrs() []net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	var as []net.Addr
	for _, p := range c.proxies {
		as = append(as, p.Addr())
	}
	return as
}

// Replica is one live replica, as Replicas reports it.
type Replica struct {
	// ID and Name are the container's.
	ID, Name string
	// Version and Image are what it runs.
	Version, Image string
	// Addrs are its published ports ("127.0.0.1:<port>"), in Config.Ports order.
	Addrs []string
	// Running is the engine's view at the last check.
	Running bool
}

// Replicas lists the live replicas.
func (c *Container) Replicas() []Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Replica, 0, len(c.live))
	for _, r := range c.live {
		rep := Replica{ID: r.id, Name: r.name, Version: r.version, Image: r.image, Running: r.running}
		for _, b := range r.backends {
			rep.Addrs = append(rep.Addrs, b.Addr())
		}
		out = append(out, rep)
	}
	return out
}

// Platform is the engine's platform, "os/arch" ("linux/amd64"), the one to pin
// images for.
func (c *Container) Platform(ctx context.Context) (string, error) {
	c.mu.Lock()
	eng := c.eng
	c.mu.Unlock()
	if eng == nil {
		var err error
		if eng, err = c.newEngine(); err != nil {
			return "", fmt.Errorf("container: docker client: %w", err)
		}
		defer eng.Close()
	}
	p, err := eng.Platform(ctx)
	if err != nil {
		return "", fmt.Errorf("container: engine version: %w", err)
	}
	return p, nil
}

var (
	_ runners.Runner     = (*Container)(nil)
	_ runners.Observable = (*Container)(nil)
)
