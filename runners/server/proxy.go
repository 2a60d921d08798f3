package server

// Proxy mode (Config.Proxy). The runner keeps the public ports itself, as TCP
// proxies (internal/tcpproxy) on the sockets it binds, and gives each generation private listeners on
// 127.0.0.1 at ports the kernel chooses, one per public port, handed over the
// same way as the shared sockets (LISTEN_FDS, SERVER_STARTER_PORT). A proxy
// forwards connections only to the routed generation: the live one, once it has
// passed its health check. So:
//
//   - A new generation serves nobody until it is healthy; one that fails its
//     health check, exits, or is cancelled is stopped without a user ever
//     reaching it.
//   - Switching is one step (tcpproxy.Proxy.Set) after the health check passes
//     and `current` is switched; from then on every new connection goes to the
//     new generation.
//   - The old generation leaves the rotation, keeps its open connections (the
//     proxy does not cut them), and is stopped as in the socket hand-off mode:
//     StopSignal, StopTimeout to finish what it has, then SIGKILL.
//   - A generation the supervisor restarts, or the previous release brought back
//     by a rollback, is routed once it is healthy.
//
// The app names the listeners as before: LISTEN_FDNAMES says port<public port>,
// SERVER_STARTER_PORT gives the private address (127.0.0.1:<port>=<fd>).
//
// Surviving the agent: each generation also inherits the public sockets,
// after the announced descriptors and not named in LISTEN_FDS, only to hold
// them: when the agent dies, the ports stay bound and connections queue. The
// next agent life takes them back from the adopted generation (pidfd_getfd),
// reads the private addresses from the record (genRecord.Backends) and
// proxies on.

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/tcpproxy"
)

// publicProxies are the public ports of proxy mode, serving the runner's
// port sockets (Server.ports) for the runner's life.
type publicProxies struct {
	ps []*tcpproxy.Proxy
}

// serveProxies starts a proxy on each socket of pl. The proxies accept from
// copies of the sockets; pl keeps its own, which every generation holds too
// (unannounced), so that a socket outlives the agent's crash and the next
// agent life takes it back (adopt.go): connections that arrive meanwhile wait
// in its queue instead of being refused.
func (s *Server) serveProxies(pl *portListeners) (*publicProxies, error) {
	pp := &publicProxies{}
	for i, f := range pl.files {
		ln, err := net.FileListener(f)
		if err != nil {
			pp.close(context.Background())
			return nil, fmt.Errorf("proxy on port %d: %w", pl.port(i), err)
		}
		pp.ps = append(pp.ps, tcpproxy.Serve(ln, s.logger))
	}
	return pp, nil
}

// close frees the ports. Connections still open are closed: the generations
// behind them are stopped by then.
func (pp *publicProxies) close(ctx context.Context) {
	for _, p := range pp.ps {
		p.Close(ctx, 0)
	}
	pp.ps = nil
}

// addrs are the public addresses, in Config.Ports order.
func (pp *publicProxies) addrs() []net.Addr {
	var as []net.Addr
	for _, p := range pp.ps {
		as = append(as, p.Addr())
	}
	return as
}

// port is the number the i-th proxy listens on.
func (pp *publicProxies) port(i int) int {
	if a, ok := pp.ps[i].Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// privateListeners binds one loopback listener per public port for a new
// generation, and returns them as files for the child (from fd 3 on), their
// names and server-starter entries, and the backends the proxies will forward
// to. The caller closes the files once the child holds its copies.
func (s *Server) privateListeners(version string) (files []*os.File, names, starter []string, backends []*tcpproxy.Backend, err error) {
	s.mu.Lock()
	pp := s.proxies
	s.mu.Unlock()
	if pp == nil {
		return nil, nil, nil, nil, nil
	}
	for i := range pp.ps {
		f, addr, err := listenFile("127.0.0.1:0", "private"+strconv.Itoa(i))
		if err != nil {
			closeFiles(files)
			return nil, nil, nil, nil, err
		}
		files = append(files, f)
		names = append(names, "port"+strconv.Itoa(pp.port(i)))
		starter = append(starter, fmt.Sprintf("%s=%d", addr, 3+i))
		backends = append(backends, tcpproxy.NewBackend(version, addr.String()))
	}
	return files, names, starter, backends, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// routeLocked sends every new connection to g, if sv is the live release and g
// its generation. Callers hold s.mu, so that routing and s.live change together.
func (s *Server) routeLocked(sv *supervisor, g *generation) {
	if s.proxies == nil || g == nil || s.live != sv || sv.gen != g || g.exited() {
		return
	}
	for i, p := range s.proxies.ps {
		if i < len(g.backends) && !slices.Equal(p.Rotation(), g.backends[i:i+1]) {
			p.Set(g.backends[i])
			if i == 0 {
				g.logger.Info("proxy: connections go to this generation")
			}
		}
	}
}

// route is routeLocked for callers that do not hold s.mu.
func (s *Server) route(sv *supervisor, g *generation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routeLocked(sv, g)
}

// routeWhenHealthy routes g once it passes a health check, however long that
// takes, in the background: for a generation the supervisor restarted, or one
// that was not healthy within HealthTimeout on resume or rollback and must not
// get users before it is. It gives up when sv is retired or g exits. Without
// proxy mode it does nothing.
func (s *Server) routeWhenHealthy(sv *supervisor, g *generation) {
	if !s.cfg.Proxy || g == nil {
		return
	}
	go func() {
		for {
			ctx, cancel := context.WithTimeout(sv.ctx, s.cfg.HealthTimeout)
			err := s.waitHealthy(ctx, g)
			cancel()
			switch {
			case err == nil:
				s.route(sv, g)
				return
			case sv.ctx.Err() != nil, g.exited():
				return
			}
			select {
			case <-sv.ctx.Done():
				return
			case <-g.done:
				return
			case <-time.After(pollEvery):
			}
		}
	}()
}
