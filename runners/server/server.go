// Package server is the runner that runs an app's release as a long-lived process
// and replaces it with a new release without one failed request. Its words:
//
//   - Release dir: the extracted release the agent hands over (Deployment.Dir). The
//     command runs there unless Config.Dir says otherwise; a relative program path
//     ("./myapp", "bin/app") resolves inside it, a bare name ("python3") through PATH.
//   - Generation: one started process of a release, in its own process group. During
//     a deploy two generations run side by side: the old one serving, the new one
//     starting.
//   - Listeners: the TCP sockets of Config.Ports. The runner binds each port once, on
//     all interfaces, and hands the same sockets to every generation, so the port
//     never closes: connections that arrive while no generation accepts wait in the
//     socket's queue instead of being refused.
//   - Health listener: a private socket on 127.0.0.1 given to each generation when
//     Config.HealthPath is set. The ports are shared, so a health request sent to
//     them could be answered by the old generation; the health listener belongs to
//     the new one alone, and the runner checks http://127.0.0.1:<its port><HealthPath>.
//   - Live: the generation of the release `current` points to, supervised: when it
//     exits on its own it is restarted per Config.Restart, with backoff.
//   - Crash window: how long a new generation is watched after the old one was
//     stopped; an exit in that window rolls the deploy back.
//   - Proxy mode (Config.Proxy): the runner keeps the ports as TCP proxies and
//     each generation gets private loopback listeners instead of the shared
//     sockets; only a generation that passed its health check gets connections.
//     See proxy.go. Everything below describes the default, socket hand-off mode.
//
// # What the app receives
//
// The sockets are inherited descriptors from fd 3 on: the ports in Config.Ports order,
// then the health listener. They are announced both ways:
//
//	SERVER_STARTER_PORT=8000=3;8001=4;127.0.0.1:40123=5   (server-starter)
//	LISTEN_FDS=3 LISTEN_PID=<the app's pid> LISTEN_FDNAMES=port8000:port8001:health   (systemd)
//
// LISTEN_PID is the app's own pid: the runner starts the command through
// `/bin/sh -c 'export LISTEN_PID=$$; exec "$@"'`, and exec keeps the pid. An app that
// serves every inherited listener, the usual way for both conventions, answers the
// health check without knowing about it. An app that serves only the first one must
// run without HealthPath: it is then healthy when it is still running after
// Config.SettleTime. The command must not daemonize: the runner watches the process it
// started.
//
// # Deploy
//
// The new generation starts while the old one serves; from its start it accepts from
// the shared sockets too. Once it is healthy, `current` is switched (Activate), the
// old generation's group gets Config.StopSignal and up to Config.StopTimeout to
// finish its requests (then SIGKILL), and the new one is watched for
// Config.CrashWindow. If the new generation exits or is not healthy in time, it is
// stopped the same graceful way (it may already hold accepted connections) and the
// old one keeps serving; if it exits within the crash window, the previous release is
// started again and `current` switched back (Rollback). Either way Deploy returns an
// error.
//
// The promise also needs the app to stop well: on StopSignal, stop accepting and
// finish what it accepted. A Go app should not rely on http.Server.Shutdown alone, which
// closes a connection whose request it reads after Shutdown began, even one accepted
// before (golang/go#75591): close the listeners, wait for Serve to return, turn
// keep-alives off, wait for the open connections to close, then call Shutdown, as
// testdata/testapp (at the module root) does.
//
// The output of every generation is logged line by line at info, with stream=stdout
// or stream=stderr.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/runners"
)

// Config is the `runner "server" {}` block. It is plain comparable data apart from
// Env and Command; zero durations and values mean the defaults below.
type Config struct {
	// Command is the argv. A relative program path with a slash ("./myapp",
	// "bin/app") resolves inside the release dir; a bare name ("python3") via PATH.
	Command []string
	// Dir is the working directory; "" is the release dir, a relative path is inside it.
	Dir string
	// Ports are bound by the runner on all interfaces and handed to each generation.
	// None for workers and consumers. Port 0 binds a free port (see Server.Addrs).
	Ports []int
	// Env is added to the agent's environment (and wins over it). Of the agent's
	// environment an app sees only PATH, HOME, LANG, TZ, USER, the DEWY_*
	// variables and the names in InheritEnv.
	Env map[string]string
	// InheritEnv names further variables of the agent's environment the app
	// receives ("HTTP_PROXY"); a name the agent does not have is skipped.
	InheritEnv []string
	// HealthPath, when set, is requested on the generation's private health listener;
	// a 2xx answer means healthy. "" means healthy = still running after SettleTime.
	HealthPath string
	// HealthTimeout bounds the wait for a new generation to be healthy. Default 30s.
	HealthTimeout time.Duration
	// StopSignal is sent to a generation's process group to stop it. Default SIGTERM.
	StopSignal syscall.Signal
	// StopTimeout is how long a stopped generation may take before SIGKILL. Default 30s.
	StopTimeout time.Duration
	// Restart says when a generation that exits on its own is started again:
	// "always" (default), "on-failure" (non-zero exit or signal) or "never".
	Restart string
	// SettleTime: without HealthPath, a generation still running after this long is
	// healthy. Default 2s.
	SettleTime time.Duration
	// CrashWindow: a new generation that exits within this long after the old one was
	// stopped makes the deploy roll back. Default 10s.
	CrashWindow time.Duration
	// Proxy: the runner keeps the ports and forwards connections only to the
	// generation that passed its health check; each generation gets private
	// loopback listeners. False (the default) hands the shared sockets to every
	// generation, so a new one serves users from its start. See proxy.go.
	Proxy bool
}

// Defaults of Config's zero values.
const (
	DefaultHealthTimeout = 30 * time.Second
	DefaultStopTimeout   = 30 * time.Second
	DefaultSettleTime    = 2 * time.Second
	DefaultCrashWindow   = 10 * time.Second
	DefaultRestart       = "always"
)

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.HealthTimeout == 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.StopSignal == 0 {
		c.StopSignal = syscall.SIGTERM
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Restart == "" {
		c.Restart = DefaultRestart
	}
	if c.SettleTime == 0 {
		c.SettleTime = DefaultSettleTime
	}
	if c.CrashWindow == 0 {
		c.CrashWindow = DefaultCrashWindow
	}
	return c
}

// Stats is what the agent shows of a server runner in status and metrics.
type Stats struct {
	// Version of the live release; "" before Resume or Deploy and after Stop.
	Version string
	// PID of the live generation; 0 when none runs.
	PID int
	// Running: the live generation is running.
	Running bool
	// Restarts by supervision since the live release was deployed or resumed.
	Restarts int
	// CrashLooping: at least 3 restarts within the last minute.
	CrashLooping bool
}

// Server runs an app's release as a process with zero-downtime deploys.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	envKeys []string // Config.Env's keys, sorted
	health  *http.Client

	// Backoff of restarts: minBackoff doubling to maxBackoff, back to minBackoff
	// after a generation ran resetAfter. Fields so that tests can shorten them.
	minBackoff, maxBackoff, resetAfter time.Duration

	op sync.Mutex // one Resume, Deploy or Stop at a time

	mu      sync.Mutex // guards the fields below and the supervisors' fields
	ports   *portListeners
	proxies *publicProxies // Config.Proxy: proxies on the ports' sockets
	live    *supervisor
	stopped bool
	resumed bool // Resume looked for generations of an earlier agent life

	appDir string // where the record file is kept; "" keeps none
	// fdstore keeps the ports' sockets while the agent restarts (fdstore.go);
	// storedPorts: the store has the sockets of ports.
	fdstore     runners.FDStore
	storedPorts bool
	recMu       sync.Mutex  // guards recs and the record file
	recs        []genRecord // the running generations (adopt.go)
}

// New returns a server runner. It does no I/O: the ports are bound by the first
// Resume or Deploy.
func New(cfg Config, opts runners.Options) *Server {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return &Server{
		cfg:        cfg.withDefaults(),
		logger:     logger,
		appDir:     opts.AppDir,
		fdstore:    opts.FDStore,
		envKeys:    keys,
		health:     newHealthClient(),
		minBackoff: time.Second,
		maxBackoff: time.Minute,
		resetAfter: time.Minute,
	}
}

// errStopped is returned by Resume and Deploy after Stop.
var errStopped = errors.New("server: runner is stopped")

// prepare validates the config and binds the ports the first time.
func (s *Server) prepare() error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("server: config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errStopped
	}
	if s.ports == nil {
		pl, err := bindPorts(s.cfg.Ports)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.ports = pl
		s.storedPorts = false
	}
	s.storePortsLocked()
	if s.cfg.Proxy && s.proxies == nil {
		pp, err := s.serveProxies(s.ports)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.proxies = pp
	}
	return nil
}

// Resume starts the release that is already current after an agent restart, and
// waits for it to be healthy like a deploy. If it is not, it stays supervised (and
// restarted per Config.Restart) and the error is returned. An empty d.Dir (nothing
// deployed yet) is not an error.
//
// The first Resume first takes back what an earlier agent life left running
// (adopt.go): the generation of d it adopts as live instead of starting one;
// the sockets of any it can, for the ports; the rest it stops.
func (s *Server) Resume(ctx context.Context, d runners.Deployment) error {
	s.op.Lock()
	defer s.op.Unlock()
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("server: config: %w", err)
	}
	s.mu.Lock()
	first := !s.resumed && s.live == nil && s.ports == nil
	s.resumed = true
	s.mu.Unlock()
	var others []*generation
	if first {
		var live *generation
		live, others = s.adoptEarlier(ctx, d.Version, d.Dir)
		if live != nil && d.Dir != "" {
			sv := newSupervisor(d.Version, d.Dir, live)
			s.mu.Lock()
			s.live = sv
			s.mu.Unlock()
			go s.supervise(sv)
			defer s.stopAll(ctx, others)
			if err := s.prepare(); err != nil { // proxy mode: proxy on the sockets taken back
				return err
			}
			s.route(sv, live)
			return nil
		} else if live != nil {
			others = append(others, live)
		}
	}
	// The generations of an earlier life are stopped once the resumed one
	// serves, or when it fails: never left running unsupervised.
	defer s.stopAll(ctx, others)
	if d.Dir == "" {
		return nil
	}
	if err := s.prepare(); err != nil {
		return err
	}
	s.mu.Lock()
	prev := s.live
	s.mu.Unlock()
	if prev != nil { // the contract says Resume comes once; be safe if not
		s.retire(ctx, prev)
	}
	g, err := s.start(d.Dir, d.Version)
	sv := newSupervisor(d.Version, d.Dir, g)
	s.mu.Lock()
	s.live = sv
	s.mu.Unlock()
	go s.supervise(sv)
	if err != nil {
		return fmt.Errorf("server: %w (retrying with backoff)", err)
	}
	if err := s.waitHealthy(ctx, g); err != nil {
		s.logger.Warn("resumed release is not healthy; it stays supervised", "version", d.Version, "restart", s.cfg.Restart)
		s.routeWhenHealthy(sv, g)
		return fmt.Errorf("server: %w", err)
	}
	s.route(sv, g)
	s.logger.Info("release resumed", "version", d.Version, "pid", g.pid)
	return nil
}

// Deploy replaces the live release with d without dropping a request: see the
// package doc. On error, the previous release serves and `current` points to it.
//
// If ctx is done before the new generation is live, it is stopped and ctx's error
// returned. If ctx is done during the crash window, the deploy has already happened:
// the new generation stays live and Deploy returns nil.
func (s *Server) Deploy(ctx context.Context, d runners.Deployment) error {
	s.op.Lock()
	defer s.op.Unlock()
	if d.Dir == "" || d.Activate == nil || d.Rollback == nil {
		return errors.New("server: Dir, Activate and Rollback are required")
	}
	if err := s.prepare(); err != nil {
		return err
	}
	logger := s.logger.With("version", d.Version)
	g, err := s.start(d.Dir, d.Version)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, exec.ErrNotFound) {
			// The release lacks its program, or it is not executable.
			return fmt.Errorf("server: %w: %w", runners.ErrBadRelease, err)
		}
		return fmt.Errorf("server: %w", err)
	}
	// A failed new generation is stopped gracefully even when ctx is done: it may
	// already serve connections it accepted from the shared sockets.
	detached := context.WithoutCancel(ctx)
	if err := s.waitHealthy(ctx, g); err != nil {
		s.stopGeneration(detached, g)
		if ctx.Err() != nil {
			return fmt.Errorf("server: %w", err)
		}
		return fmt.Errorf("server: %w: %w", runners.ErrBadRelease, err)
	}
	if err := d.Activate(); err != nil {
		s.stopGeneration(detached, g)
		return fmt.Errorf("server: activate: %w", err)
	}
	logger.Info("new generation healthy; current switched", "pid", g.pid)

	sv := newSupervisor(d.Version, d.Dir, g)
	s.mu.Lock()
	old := s.live
	s.live = sv
	s.routeLocked(sv, g)
	s.mu.Unlock()
	if old != nil {
		s.retire(detached, old)
	}

	window := time.NewTimer(s.cfg.CrashWindow)
	defer window.Stop()
	select {
	case <-g.done:
		g.finish()
		logger.Warn("new generation exited within the crash window; rolling back", append(g.exitAttrs(), "crash_window", s.cfg.CrashWindow)...)
		err := fmt.Errorf("server: %w: %s within %s of going live", runners.ErrBadRelease, g.exitString(), s.cfg.CrashWindow)
		return s.rollback(ctx, d, old, err)
	case <-window.C:
	case <-ctx.Done():
	}
	go s.supervise(sv)
	logger.Info("release deployed", "pid", g.pid)
	return nil
}

// rollback brings back the release of old after the new generation crashed, and
// switches `current` back. It returns cause, with what went wrong on the way.
func (s *Server) rollback(ctx context.Context, d runners.Deployment, old *supervisor, cause error) error {
	var sv *supervisor
	var g *generation
	var serr error
	if old != nil {
		g, serr = s.start(old.dir, old.version)
		sv = newSupervisor(old.version, old.dir, g)
		go s.supervise(sv)
	}
	s.mu.Lock()
	s.live = sv
	s.mu.Unlock()
	errs := []error{cause}
	if rerr := d.Rollback(); rerr != nil {
		errs = append(errs, fmt.Errorf("switch current back: %w", rerr))
	}
	switch {
	case old == nil:
		s.logger.Warn("no previous release to roll back to", "version", d.Version)
	case serr != nil:
		errs = append(errs, fmt.Errorf("restart %s: %w (retrying with backoff)", old.version, serr))
	default:
		if herr := s.waitHealthy(ctx, g); herr != nil {
			errs = append(errs, fmt.Errorf("restarted %s: %w", old.version, herr))
			s.routeWhenHealthy(sv, g)
		} else {
			s.route(sv, g)
			s.logger.Info("rolled back", "version", old.version, "pid", g.pid)
		}
	}
	return errors.Join(errs...)
}

// Stop ends the workload, whatever the reason: StopSignal to the live generation's
// group, up to StopTimeout (or until ctx is done) to exit, then SIGKILL. It returns
// once the process is reaped and its group gone, and closes the listeners so the
// ports are free. Resume and Deploy fail after Stop.
func (s *Server) Stop(ctx context.Context, why runners.StopReason) error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	sv := s.live
	s.mu.Unlock()
	switch {
	case sv != nil && why == runners.AgentUpgrade:
		s.logger.Info("agent stopping; the app keeps running for the next agent to adopt", "version", sv.version)
		s.detach(sv)
	case sv != nil:
		s.logger.Info("stopping", "reason", string(why), "version", sv.version)
		s.retire(ctx, sv)
	}
	if why != runners.AgentUpgrade {
		s.unstorePorts()
	}
	s.mu.Lock()
	s.live = nil
	if s.ports != nil {
		s.ports.close()
		s.ports = nil
	}
	pp := s.proxies
	s.proxies = nil
	s.mu.Unlock()
	if pp != nil {
		pp.close(ctx)
	}
	return nil
}

// Stats reports the live release's process and restarts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.live
	if sv == nil {
		return Stats{}
	}
	st := Stats{
		Version:      sv.version,
		Restarts:     sv.restarts,
		CrashLooping: len(pruneBefore(sv.recent, time.Now().Add(-crashLoopWindow))) >= crashLoopRestarts,
	}
	if g := sv.gen; g != nil && !g.exited() {
		st.PID, st.Running = g.pid, true
	}
	return st
}

// Workload reports the live generation for the agent's status and metrics.
func (s *Server) Workload() runners.Workload {
	st := s.Stats()
	return runners.Workload{Running: st.Running, PID: st.PID, Restarts: st.Restarts, CrashLooping: st.CrashLooping}
}

// Addrs are the addresses the ports are bound to, in Config.Ports order; nil before
// the first Resume or Deploy and after Stop. With port 0 this is how to learn the
// port.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proxies != nil {
		return s.proxies.addrs()
	}
	if s.ports == nil {
		return nil
	}
	return slices.Clone(s.ports.addrs)
}

var (
	_ runners.Runner     = (*Server)(nil)
	_ runners.Observable = (*Server)(nil)
)
