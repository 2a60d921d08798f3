package server

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dewy-agent/dewy-agent/internal/procgroup"
)

// The service manager's descriptor store (runners.Options.FDStore; systemd's
// FDSTORE=1). Every socket the runner binds or takes back is stored under
// "<app>/<port>" ("<app>/any<i>" for the i-th port 0). A restarted agent takes
// the ports from the store first (LISTEN_FDS, with LISTEN_PID checked) and
// from an adopted generation (pidfd_getfd) only when the store does not have
// them all. A stop other than for the agent's upgrade removes them from the
// store, so that systemd does not keep a port bound for an app that is gone.

// fdName is the store's name of the i-th port.
func (s *Server) fdName(i int) string {
	app := filepath.Base(s.appDir)
	if p := s.cfg.Ports[i]; p != 0 {
		return app + "/" + strconv.Itoa(p)
	}
	return app + "/any" + strconv.Itoa(i)
}

// storeOn reports whether the runner keeps its sockets in a store.
func (s *Server) storeOn() bool { return s.fdstore != nil && s.appDir != "" }

// takeStored makes the sockets the store passed at start the runner's ports,
// if it has one for every configured port and each is a listening socket on
// its port. It reports whether it did; if not, nothing of the store is kept.
func (s *Server) takeStored() bool {
	if !s.storeOn() {
		return false
	}
	defer s.dropStale()
	if len(s.cfg.Ports) == 0 {
		return false
	}
	pl := &portListeners{}
	for i, want := range s.cfg.Ports {
		f := plain(s.fdstore.Take(s.fdName(i)))
		if f == nil {
			pl.close()
			s.unstore()
			return false
		}
		pl.files = append(pl.files, f)
		sa, err := syscall.Getsockname(int(f.Fd()))
		listening, lerr := syscall.GetsockoptInt(int(f.Fd()), syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
		addr, ok := sockaddrTCP(sa).(*net.TCPAddr)
		if err != nil || lerr != nil || listening != 1 || !ok || (want != 0 && addr.Port != want) {
			s.logger.Warn("descriptor from the service manager's store is not the port's listening socket; not used", "name", s.fdName(i))
			pl.close()
			s.unstore()
			return false
		}
		pl.addrs = append(pl.addrs, addr)
	}
	s.mu.Lock()
	s.ports = pl
	s.storedPorts = true
	s.mu.Unlock()
	s.logger.Info("listening sockets restored from the service manager's descriptor store", "ports", len(pl.files))
	return true
}

// unstore removes every port of this app from the store, after a restore
// that failed part way: what it still holds would keep the ports bound in the
// service manager and in the agent, and the next Put would store them twice.
func (s *Server) unstore() {
	for i := range s.cfg.Ports {
		_ = s.fdstore.Remove(s.fdName(i))
	}
}

// dropStale removes from the store what it holds of this app under names
// that are not its ports any more (ports changed while no agent ran).
func (s *Server) dropStale() {
	mine := map[string]bool{}
	for i := range s.cfg.Ports {
		mine[s.fdName(i)] = true
	}
	prefix := filepath.Base(s.appDir) + "/"
	for _, n := range s.fdstore.Names() {
		if strings.HasPrefix(n, prefix) && !mine[n] {
			s.logger.Info("dropping a socket of a port no longer configured from the service manager's store", "name", n)
			_ = s.fdstore.Remove(n)
		}
	}
}

// storePortsLocked puts the sockets of s.ports in the store, unless they came
// from it or are there already. Callers hold s.mu.
func (s *Server) storePortsLocked() {
	if s.storedPorts || s.ports == nil {
		return
	}
	s.storedPorts = true
	if !s.storeOn() {
		return
	}
	for i, f := range s.ports.files {
		if err := s.fdstore.Put(s.fdName(i), f); err != nil {
			s.logger.Warn("socket not kept in the service manager's descriptor store", "name", s.fdName(i), "err", err)
		}
	}
}

// unstorePorts removes the runner's sockets from the store.
func (s *Server) unstorePorts() {
	if !s.storeOn() {
		return
	}
	for i := range s.cfg.Ports {
		if err := s.fdstore.Remove(s.fdName(i)); err != nil {
			s.logger.Warn("socket not removed from the service manager's descriptor store", "name", s.fdName(i), "err", err)
		}
	}
}

// plain makes f, a descriptor passed at start, a file that is not pollable
// (procgroup.PlainFile): it is a socket the apps share. Nil stays nil.
func plain(f *os.File) *os.File {
	if f == nil {
		return nil
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	nfd := -1
	_ = rc.Control(func(fd uintptr) {
		nfd, _ = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if nfd < 0 {
		return nil
	}
	return procgroup.PlainFile(nfd, f.Name())
}
