package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StatusReport is the body of GET /status.
type StatusReport struct {
	Agent AgentStatus `json:"agent"`
	Apps  []Status    `json:"apps"`
}

// AgentStatus is the agent part of GET /status.
type AgentStatus struct {
	Version    string       `json:"version"`
	Config     string       `json:"config"`
	StateDir   string       `json:"state_dir"`
	StartedAt  time.Time    `json:"started_at"`
	LastReload ReloadStatus `json:"last_reload"`
}

// Report returns what GET /status shows.
func (a *Agent) Report() StatusReport {
	a.mu.Lock()
	ag := AgentStatus{
		Version:    a.opts.Version,
		Config:     a.cfg.Path,
		StateDir:   a.cfg.Agent.StateDir,
		StartedAt:  a.started,
		LastReload: a.lastReload,
	}
	a.mu.Unlock()
	return StatusReport{Agent: ag, Apps: a.Statuses()}
}

// Handler is the admin API (startAdmin serves it behind adminGuard's rules
// and connLimiter's limit):
//
//	GET  /status   JSON: every app's state and the agent's (StatusReport)
//	GET  /healthz  200 "ok" while the agent runs
//	GET  /metrics  Prometheus metrics
//	POST /reload   reload the config file now; 200 with the ReloadStatus, or 422
//	               with the diagnostics when the file has errors (nothing changed)
//	POST /apps/{name}/retry
//	               forget the app's bad versions and poll at once (202)
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Report())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Reload(true)
		switch {
		case errors.Is(err, ErrReloadFailed):
			writeJSON(w, http.StatusUnprocessableEntity, st)
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusOK, st)
		}
	})
	mux.HandleFunc("POST /apps/{name}/retry", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Retry(r.PathValue("name")); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"result": "retry requested"})
	})
	return mux
}

// Retry makes an app forget its bad versions and poll at once.
func (a *Agent) Retry(app string) error {
	a.mu.Lock()
	w := a.workers[app]
	a.mu.Unlock()
	if w == nil {
		return fmt.Errorf("the agent has no app named %q", app)
	}
	w.requestRetry()
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// adminServer is the running admin API.
type adminServer struct {
	srv   *http.Server
	addr  string
	done  chan struct{}
	conns *connLimiter
}

// startAdmin binds addr and serves the admin API on it.
func (a *Agent) startAdmin(addr string) (*adminServer, error) {
	ln, err := listenAdmin(addr)
	if err != nil {
		return nil, fmt.Errorf("admin API on %s: %w (is another dewy-agent running? set admin = \"\" in the agent block to turn the API off)", addr, err)
	}
	guardAddr := addr
	if strings.HasPrefix(addr, "unix://") {
		guardAddr = AdminUnixHost + ":0" // the Host the CLI sends over the socket
	} else if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) {
		a.opts.Logger.Warn("admin API listens beyond loopback; only requests with its admin_token are answered", "admin", addr)
	}
	lim := newConnLimiter(ln, AdminMaxConns)
	token := func() string {
		if t := a.adminToken.Load(); t != nil {
			return *t
		}
		return ""
	}
	s := &adminServer{
		srv: &http.Server{
			Handler:           newAdminGuard(a.Handler(), guardAddr, ln.Addr().String(), token),
			ReadHeaderTimeout: AdminReadHeaderTimeout,
			ReadTimeout:       AdminReadTimeout,
			WriteTimeout:      AdminWriteTimeout,
			IdleTimeout:       AdminIdleTimeout,
			MaxHeaderBytes:    AdminMaxHeaderBytes,
			ConnState:         lim.track,
			ErrorLog:          slog.NewLogLogger(a.opts.Logger.Handler(), slog.LevelDebug),
		},
		addr:  ln.Addr().String(),
		done:  make(chan struct{}),
		conns: lim,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(lim); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.opts.Logger.Error("admin API stopped", "err", err)
		}
	}()
	a.opts.Logger.Info("admin API listening", "addr", s.addr)
	return s, nil
}

// AdminUnixHost is the Host a client names when it reaches the admin API
// over its unix socket.
const AdminUnixHost = "dewy-agent.sock"

// AdminSocketMode is the mode of the admin API's unix socket: the agent's
// user and group may use it, nobody else.
const AdminSocketMode = 0o660

// listenAdmin listens on addr: host:port over TCP, or unix:///path on a unix
// socket made with AdminSocketMode (a stale socket file left by a crash is
// replaced; any other file there is an error).
func listenAdmin(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by a running process", path)
		}
		os.Remove(path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, AdminSocketMode); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Close stops the server, letting requests in flight finish for up to 5s.
func (s *adminServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	<-s.done
}

// moveAdmin replaces the admin server with one on addr ("" turns it off). The new
// address is bound before the old server is closed; on failure the old one stays.
func (a *Agent) moveAdmin(addr string) error {
	var next *adminServer
	if addr != "" {
		var err error
		if next, err = a.startAdmin(addr); err != nil {
			return err
		}
	}
	replaceClosing(&a.mu, &a.admin, next)
	return nil
}

// AdminAddr returns the address the admin API listens on, or "" when it is off.
func (a *Agent) AdminAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.admin == nil {
		return ""
	}
	return a.admin.addr
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
