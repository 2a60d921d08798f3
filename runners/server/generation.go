package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/procgroup"
	"github.com/dewy-agent/dewy-agent/internal/tcpproxy"
)

const (
	// maxLine bounds one logged line of a child's output; longer lines are logged
	// in pieces marked partial.
	maxLine = 4096
	// logDrain is how long a finished generation's output may take to reach EOF
	// before its pipes are closed.
	logDrain = time.Second
	// pollEvery is the health-check and stop polling interval.
	pollEvery = 100 * time.Millisecond
	// shim sets LISTEN_PID to the shell's own pid, then execs the app, which keeps
	// the pid: the only way to give a child its own pid in its environment with
	// os/exec.
	shim = `export LISTEN_PID=$$; exec "$@"`
)

// generation is one started process of a release.
type generation struct {
	version string
	dir     string
	pid     int
	started time.Time
	// healthURL is the private health endpoint; "" without Config.HealthPath.
	healthURL string
	logger    *slog.Logger
	// backends are the private listeners in proxy mode, one per port.
	backends []*tcpproxy.Backend

	proc *procgroup.Process
	done <-chan struct{} // closed once the process is reaped

	// adopted is set for a process of an earlier agent life (see adopt.go).
	adopted *procgroup.Adopted
	// forget drops the generation from the record file; finish calls it once.
	forget     func()
	forgetOnce sync.Once
}

// exited reports whether the process has been reaped.
func (g *generation) exited() bool { return g.proc.Exited() }

// exitString describes how the process ended ("exit status 3", "signal: killed").
func (g *generation) exitString() string {
	st := g.proc.State()
	if st == nil {
		return "unknown exit"
	}
	return st.String()
}

// exitAttrs are the log attributes of how the process ended.
func (g *generation) exitAttrs() []any {
	st := g.proc.State()
	if st == nil {
		return []any{"exit", "unknown"}
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return []any{"signal", ws.Signal().String()}
	}
	return []any{"code", st.ExitCode()}
}

// failed reports whether the exit counts as a failure for Restart "on-failure":
// a non-zero code or a signal.
func (g *generation) failed() bool {
	st := g.proc.State()
	return st == nil || !st.Success()
}

// start starts a generation of the release in dir. The process runs in its own
// process group with the runner's sockets at fd 3 onwards, plus a private health
// socket when Config.HealthPath is set.
func (s *Server) start(dir, version string) (*generation, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("release dir: %w", err)
	}
	prog, err := resolveProgram(s.cfg.Command[0], dir)
	if err != nil {
		return nil, err
	}
	workdir := dir
	if s.cfg.Dir != "" {
		workdir = s.cfg.Dir
		if !filepath.IsAbs(workdir) {
			workdir = filepath.Join(dir, workdir)
		}
	}

	var files []*os.File
	var names, starter []string
	s.mu.Lock()
	pl := s.ports
	s.mu.Unlock()
	if pl != nil && !s.cfg.Proxy {
		for i, f := range pl.files {
			port := pl.port(i)
			files = append(files, f)
			names = append(names, "port"+strconv.Itoa(port))
			starter = append(starter, fmt.Sprintf("%d=%d", port, 3+i))
		}
	}
	pfiles, pnames, pstarter, backends, err := s.privateListeners(version)
	if err != nil {
		return nil, fmt.Errorf("private listeners: %w", err)
	}
	defer closeFiles(pfiles) // the child holds its own copies once started
	files, names, starter = append(files, pfiles...), append(names, pnames...), append(starter, pstarter...)
	healthURL := ""
	if s.cfg.HealthPath != "" {
		hf, addr, err := listenFile("127.0.0.1:0", "health")
		if err != nil {
			return nil, fmt.Errorf("health listener: %w", err)
		}
		defer hf.Close() // the child holds its own copy once started
		files = append(files, hf)
		names = append(names, "health")
		starter = append(starter, fmt.Sprintf("%s=%d", addr, 3+len(files)-1))
		healthURL = "http://" + addr.String() + s.cfg.HealthPath
	}

	announced := len(files)
	portFd := 3 // the child's descriptor of the first port socket
	if pl != nil && s.cfg.Proxy {
		// Held, not announced: see proxy.go.
		portFd = 3 + len(files)
		files = append(files, pl.files...)
	}

	cmd := &exec.Cmd{
		Path:        prog,
		Args:        append([]string{prog}, s.cfg.Command[1:]...),
		Dir:         workdir,
		Env:         s.environ(announced, names, starter),
		ExtraFiles:  files,
		SysProcAttr: sysProcAttr(s.cfg.StopSignal),
	}
	if len(files) > 0 {
		cmd.Path = "/bin/sh"
		cmd.Args = append([]string{"sh", "-c", shim, "sh", prog}, s.cfg.Command[1:]...)
	}
	logger := s.logger.With("version", version)
	// The generation outlives the agent's crash and is recorded at once, so that
	// the agent's next life can adopt it (adopt.go).
	p, err := procgroup.StartSurviving(cmd, s.output(logger), s.outputDir())
	if err != nil {
		return nil, err
	}
	rec := genRecord{Version: version, Dir: dir, PID: p.Pid()}
	rec.StartTime, _ = procgroup.StartTime(p.Pid())
	rec.StdoutFile, rec.StderrFile = p.OutputFiles()
	if rec.StdoutFile == "" {
		rec.Stdout, rec.Stderr = p.PipeFds()
	}
	if pl != nil {
		for i := range pl.files {
			rec.Ports = append(rec.Ports, pl.port(i))
			rec.Fds = append(rec.Fds, portFd+i)
			rec.Inodes = append(rec.Inodes, inodeOf(pl.files[i]))
		}
	}
	for _, b := range backends {
		rec.Backends = append(rec.Backends, b.Addr())
	}
	s.remember(rec, true)
	g := &generation{
		version:   version,
		dir:       dir,
		pid:       p.Pid(),
		started:   time.Now(),
		healthURL: healthURL,
		backends:  backends,
		logger:    logger.With("pid", p.Pid()),
		proc:      p,
		done:      p.Done(),
		forget:    func() { s.remember(rec, false) },
	}
	g.logger.Info("generation started", "dir", dir)
	return g, nil
}

// resolveProgram finds the program: a relative path with a slash resolves inside the
// release dir, a bare name through PATH.
func resolveProgram(prog, dir string) (string, error) {
	switch {
	case filepath.IsAbs(prog):
	case strings.ContainsRune(prog, '/'):
		prog = filepath.Join(dir, prog)
	default:
		p, err := exec.LookPath(prog)
		if err != nil {
			return "", fmt.Errorf("find %s: %w", prog, err)
		}
		return p, nil
	}
	if _, err := os.Stat(prog); err != nil {
		return "", fmt.Errorf("command: %w", err)
	}
	return prog, nil
}

// environ is the agent's environment cleaned (cleanEnviron: PATH, HOME, LANG, TZ,
// USER, DEWY_*, Config.InheritEnv), plus Config.Env, plus the socket variables of
// this generation. LISTEN_PID is set by the shim.
func (s *Server) environ(nfiles int, names, starter []string) []string {
	env := cleanEnviron(os.Environ(), s.cfg.InheritEnv)
	for _, k := range s.envKeys {
		env = append(env, k+"="+s.cfg.Env[k]) // exec keeps the last of duplicate keys
	}
	if s.appDir != "" {
		env = append(env, appMarkEnv+"="+s.appDir) // see stopUnrecorded
	}
	if nfiles > 0 {
		env = append(env,
			"LISTEN_FDS="+strconv.Itoa(nfiles),
			"LISTEN_FDNAMES="+strings.Join(names, ":"),
			"SERVER_STARTER_PORT="+strings.Join(starter, ";"),
		)
	}
	return env
}

// finish cleans up after the process was reaped: it kills what is left of its
// process group (children of a crashed app would otherwise keep the sockets) and
// reads the output to its end, for at most logDrain. Safe to call more than once.
//
// The group id is the reaped leader's pid; it cannot belong to anyone else while a
// member of the group is alive, and an empty group answers ESRCH.
func (g *generation) finish() {
	g.proc.Drain(syscall.SIGKILL, logDrain)
	g.forgetOnce.Do(func() {
		if g.adopted != nil {
			g.adopted.Release()
		}
		if g.forget != nil {
			g.forget()
		}
	})
}

// output is how a generation's output is logged.
func (s *Server) output(logger *slog.Logger) procgroup.Output {
	return procgroup.Output{Logger: logger, LogPid: true, MaxLineBytes: maxLine, SplitLongLines: true}
}

// stopGeneration stops g: StopSignal to its process group, up to StopTimeout (or
// until ctx is done) for the whole group to exit, then SIGKILL. It returns once the
// process is reaped and the group is gone.
func (s *Server) stopGeneration(ctx context.Context, g *generation) {
	running := !g.exited()
	s.markStopping(g.pid)
	if running {
		g.logger.Info("stopping generation", "signal", s.cfg.StopSignal.String())
	}
	switch err := g.proc.Stop(ctx, s.cfg.StopSignal, s.cfg.StopTimeout); {
	case errors.Is(err, procgroup.ErrStopTimeout):
		g.logger.Warn("generation did not stop in time; killed it", "stop_timeout", s.cfg.StopTimeout)
	case err != nil:
		g.logger.Warn("stop cut short; killed generation", "reason", err)
	}
	<-g.done
	g.finish()
	if running {
		g.logger.Info("generation stopped", g.exitAttrs()...)
	}
}

// errExited is returned when a generation exits while the runner waits for it to
// become healthy.
var errExited = errors.New("exited before it was healthy")

// waitHealthy waits until g is healthy: its health endpoint answers 2xx within
// HealthTimeout, or, without HealthPath, it is still running after SettleTime.
func (s *Server) waitHealthy(ctx context.Context, g *generation) error {
	probing := g.healthURL != ""
	wait := s.cfg.HealthTimeout
	if !probing {
		wait = s.cfg.SettleTime
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last error
	for {
		if probing {
			if last = s.probe(ctx, g.healthURL); last == nil {
				return g.errIfExited()
			}
		}
		select {
		case <-g.done:
			return g.errIfExited()
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			if !probing {
				return g.errIfExited() // settled
			}
			return fmt.Errorf("not healthy within %s: %w", s.cfg.HealthTimeout, last)
		case <-tick.C:
		}
	}
}

// errIfExited is errExited, with how g ended, once g has exited; nil while
// it runs.
func (g *generation) errIfExited() error {
	if g.exited() {
		return fmt.Errorf("%w (%s)", errExited, g.exitString())
	}
	return nil
}

// probe makes one health request; nil means a 2xx answer.
func (s *Server) probe(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, min(time.Second, s.cfg.HealthTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := s.health.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL: the private port means nothing to the reader
		}
		return fmt.Errorf("health check %s: %w", s.cfg.HealthPath, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health check %s: status %s", s.cfg.HealthPath, resp.Status)
	}
	return nil
}

// newHealthClient is the client of the health checks: no proxy, no keep-alive (each
// generation has its own port), no redirects (a 3xx is not healthy).
func newHealthClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
