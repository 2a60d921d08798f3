package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
	"github.com/dewy-agent/dewy-agent/internal/procgroup"
	"github.com/dewy-agent/dewy-agent/internal/tcpproxy"
)

// Surviving the agent. A generation is started so that it outlives the agent
// (no death signal; its stdout and stderr go to files in <app dir>/output, so
// it never blocks on output while no agent reads it) and recorded in
// <app dir>/server.json the moment it starts: pid, process start time, the fd
// numbers of its sockets in the child, its output files, release dir and
// version. The next agent tails the output files from where the last one
// stopped, so what the app wrote meanwhile is logged too. A restarted agent's Resume reads
// the record (adoptEarlier): a recorded process that is still the same process
// (pid and start time) gives its listening sockets back (pidfd_getfd); the one
// running the release `current` names is adopted as the live generation,
// watched through a pidfd; every other one is stopped, its whole group, with
// SIGKILL after StopTimeout. A process whose sockets cannot be taken back is
// stopped before the ports are bound, so nothing is left holding a port.

// recordFile is the runner's record of its running generations, in the app dir.
const recordFile = "server.json"

// genRecord is one running generation, as a later agent life needs it.
type genRecord struct {
	Version   string `json:"version"`
	Dir       string `json:"dir"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // clock ticks since boot (/proc/<pid>/stat)
	// Ports are the bound ports in Config.Ports order and Fds their descriptor
	// numbers in the child.
	Ports []int `json:"ports,omitempty"`
	Fds   []int `json:"fds,omitempty"`
	// Inodes are the sockets' inode numbers. An app may close the descriptors
	// it inherited once it made listeners of them (Go's net.FileListener keeps a
	// duplicate), so the sockets are looked up by inode in /proc/<pid>/fd; Fds
	// is the fallback.
	Inodes []uint64 `json:"inodes,omitempty"`
	// StdoutFile and StderrFile are the files its output goes to.
	StdoutFile string `json:"stdout_file,omitempty"`
	StderrFile string `json:"stderr_file,omitempty"`
	// Stdout and Stderr are the child's copies of its output pipes' read ends,
	// for a generation whose output goes to pipes (an app dir-less runner, or
	// an agent before output files).
	Stdout int `json:"stdout_fd,omitempty"`
	Stderr int `json:"stderr_fd,omitempty"`
	// Backends are its private listeners' addresses in proxy mode, in
	// Config.Ports order.
	Backends []string `json:"backends,omitempty"`
	// Stopping: the generation was being stopped; it is never adopted as live.
	Stopping bool `json:"stopping,omitempty"`
}

// genRecords is the record file.
type genRecords struct {
	Generations []genRecord `json:"generations"`
}

// remember records g as running (or forgets it, with running false) and writes
// the record file. Without an app dir (tests that build the runner bare) nothing
// is written.
func (s *Server) remember(r genRecord, running bool) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	s.recs = slices.DeleteFunc(s.recs, func(x genRecord) bool { return x.PID == r.PID })
	if running {
		s.recs = append(s.recs, r)
	}
	if err := s.saveRecords(); err != nil {
		s.logger.Warn("record generations", "err", err)
	}
}

// markStopping records that the generation pid is being stopped.
func (s *Server) markStopping(pid int) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	for i := range s.recs {
		if s.recs[i].PID == pid && !s.recs[i].Stopping {
			s.recs[i].Stopping = true
			if err := s.saveRecords(); err != nil {
				s.logger.Warn("record generations", "err", err)
			}
		}
	}
}

// saveRecords writes s.recs; recMu is held.
func (s *Server) saveRecords() error {
	if s.appDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.appDir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(s.appDir, recordFile), genRecords{Generations: s.recs}, 0o600)
}

// loadRecords reads the record file of an earlier agent life; none is no error.
func (s *Server) loadRecords() ([]genRecord, error) {
	if s.appDir == "" {
		return nil, nil
	}
	var rs genRecords
	err := atomicfile.ReadJSON(filepath.Join(s.appDir, recordFile), &rs)
	return rs.Generations, err
}

// sameDir reports whether a and b name the same directory (through symlinks).
func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// adoptEarlier takes back what an earlier agent life left running (see the top
// of this file). It returns the generation adopted as live for the release in
// dir (nil if none) and the other generations it took sockets from, which the
// caller stops once a live generation serves. On return, s.ports holds the
// recovered sockets when any could be taken back; everything of an earlier life
// that could not be adopted has been stopped.
func (s *Server) adoptEarlier(ctx context.Context, version, dir string) (live *generation, others []*generation) {
	recs, err := s.loadRecords()
	if err != nil {
		s.logger.Warn("record of earlier generations unreadable", "err", err)
	}
	// A generation started by an agent that died before recording it is found
	// by the mark in its environment, and stopped; output files no record
	// names are removed.
	defer s.sweepOutput()
	defer s.stopUnrecorded(ctx, recs)
	// The service manager's store is asked first (fdstore.go).
	s.takeStored()
	for _, r := range recs {
		logger := s.logger.With("version", r.Version, "pid", r.PID)
		src := procgroup.OutputSource{Files: [2]string{r.StdoutFile, r.StderrFile}, Fds: [2]int{r.Stdout, r.Stderr}}
		a, err := procgroup.Adopt(r.PID, r.StartTime, src, s.output(logger))
		if err != nil {
			s.stopLeftovers(ctx, r, err)
			continue
		}
		g := s.adopted(r, a)
		s.remember(r, true)
		// A generation that holds the ports (every one outside proxy mode; in
		// proxy mode one whose record names them) must give them back, or the
		// ports cannot be bound for the next.
		if !s.takeSockets(r, a) && (!s.cfg.Proxy || len(r.Ports) > 0) {
			logger.Warn("sockets of an earlier generation cannot be taken back; stopping it before binding the ports")
			s.stopGeneration(ctx, g)
			continue
		}
		routable := !s.cfg.Proxy || len(g.backends) == len(s.cfg.Ports)
		if live == nil && !r.Stopping && routable && r.Version == version && sameDir(r.Dir, dir) {
			live = g
			logger.Info("adopted the generation an earlier agent left running")
			continue
		}
		logger.Info("took the sockets of a generation an earlier agent left running; it will be stopped")
		others = append(others, g)
	}
	return live, others
}

// stopLeftovers stops what is left of a recorded generation whose process
// cannot be adopted. If its pid now names another process, the recorded group
// is gone (a group id is not reused while its group has a member) and nothing
// is touched; if no process has the pid, members of its group may still live
// (the children of a wrapper shell) and the group is stopped.
func (s *Server) stopLeftovers(ctx context.Context, r genRecord, why error) {
	defer s.remember(r, false)
	defer procgroup.RemoveOutputFiles(r.StdoutFile, r.StderrFile)
	if syscall.Kill(r.PID, 0) != syscall.ESRCH {
		if !errors.Is(why, procgroup.ErrNotSame) {
			s.logger.Warn("earlier generation cannot be adopted; stopping its group", "pid", r.PID, "err", why)
			_ = procgroup.StopGroup(ctx, r.PID, s.cfg.StopSignal, s.cfg.StopTimeout)
		}
		return
	}
	if procgroup.GroupAlive(r.PID) {
		s.logger.Warn("earlier generation's leader is gone but its group lives; stopping it", "pgid", r.PID)
		_ = procgroup.StopGroup(ctx, r.PID, s.cfg.StopSignal, s.cfg.StopTimeout)
	}
}

// adopted wraps an adopted process as a generation.
func (s *Server) adopted(r genRecord, a *procgroup.Adopted) *generation {
	g := &generation{
		version: r.Version,
		dir:     r.Dir,
		pid:     r.PID,
		started: time.Now(),
		logger:  s.logger.With("version", r.Version, "pid", r.PID),
		proc:    a.Process,
		done:    a.Done(),
		adopted: a,
	}
	for _, addr := range r.Backends {
		g.backends = append(g.backends, tcpproxy.NewBackend(r.Version, addr))
	}
	g.forget = func() { s.remember(r, false) }
	return g
}

// takeSockets makes the sockets of r the runner's ports, unless the runner has
// them already or the configured ports differ. It reports whether the runner
// now holds sockets for every configured port.
func (s *Server) takeSockets(r genRecord, a *procgroup.Adopted) bool {
	s.mu.Lock()
	have := s.ports != nil
	s.mu.Unlock()
	if have || len(s.cfg.Ports) == 0 {
		return true
	}
	if len(r.Ports) != len(s.cfg.Ports) || len(r.Fds) != len(r.Ports) {
		return false
	}
	pl := &portListeners{}
	for i, p := range s.cfg.Ports {
		if p != 0 && p != r.Ports[i] {
			pl.close()
			return false
		}
		fd := r.Fds[i]
		var ino uint64
		if i < len(r.Inodes) {
			ino = r.Inodes[i]
			if n, ok := findSocketFd(r.PID, ino); ok {
				fd = n
			}
		}
		f, err := a.TakeFd(fd, false)
		if err == nil && ino != 0 && inodeOf(f) != ino {
			f.Close()
			err = fmt.Errorf("descriptor %d of %d is not the recorded socket", fd, r.PID)
		}
		if err != nil {
			s.logger.Warn("take socket back", "port", r.Ports[i], "err", err)
			pl.close()
			return false
		}
		sa, err := syscall.Getsockname(int(f.Fd()))
		if err != nil {
			f.Close()
			pl.close()
			return false
		}
		pl.files = append(pl.files, f)
		pl.addrs = append(pl.addrs, sockaddrTCP(sa))
	}
	s.mu.Lock()
	s.ports = pl
	s.mu.Unlock()
	return true
}

// sockaddrTCP turns a socket address into a *net.TCPAddr.
func sockaddrTCP(sa syscall.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return &net.TCPAddr{}
}

// detach ends the runner's part without stopping the workload: supervision ends,
// the generation keeps running and stays recorded for the next agent life,
// which reads its output files on from where this one stopped.
func (s *Server) detach(sv *supervisor) {
	if g := s.endSupervision(sv); g != nil {
		g.proc.Detach()
	}
}

// outputDir is where the generations' output files are; "" (output to pipes)
// without an app dir.
func (s *Server) outputDir() string {
	if s.appDir == "" {
		return ""
	}
	return filepath.Join(s.appDir, "output")
}

// sweepOutput removes the output files that no generation of recs still
// recorded names: those of a generation an agent started but died before
// recording. Called once, before any generation of this life starts.
func (s *Server) sweepOutput() {
	dir := s.outputDir()
	if dir == "" {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	s.recMu.Lock()
	for _, r := range s.recs {
		// By name: state_dir may be spelt another way than when recorded.
		keep[filepath.Base(r.StdoutFile)], keep[filepath.Base(r.StderrFile)] = true, true
	}
	s.recMu.Unlock()
	for _, e := range entries {
		if !keep[strings.TrimSuffix(e.Name(), ".offset")] {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// stopAll stops the generations gracefully, one after the other.
func (s *Server) stopAll(ctx context.Context, gs []*generation) {
	for _, g := range gs {
		s.stopGeneration(context.WithoutCancel(ctx), g)
	}
}

// findSocketFd looks in /proc/<pid>/fd for the descriptor of the socket with
// inode ino.
func findSocketFd(pid int, ino uint64) (int, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	want := "socket:[" + strconv.FormatUint(ino, 10) + "]"
	for _, e := range entries {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

// inodeOf is the inode number of the open file f; 0 if unknown.
func inodeOf(f *os.File) uint64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// appMarkEnv marks a generation's environment with the app dir, so that one
// started by an agent that died before recording it can still be found.
const appMarkEnv = "DEWY_AGENT_APP_DIR"

// stopUnrecorded stops the process groups of processes marked with this app
// dir that are not in recs.
func (s *Server) stopUnrecorded(ctx context.Context, recs []genRecord) {
	if s.appDir == "" {
		return
	}
	known := map[int]bool{}
	for _, r := range recs {
		known[r.PID] = true
	}
	mark := []byte(appMarkEnv + "=" + s.appDir + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	groups := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !containsEnv(env, mark) {
			continue
		}
		pgid, err := syscall.Getpgid(pid)
		if err != nil || known[pgid] || pgid == syscall.Getpgrp() {
			continue
		}
		groups[pgid] = true
	}
	for pgid := range groups {
		s.logger.Warn("stopping an app process no agent recorded (the agent died while starting it)", "pgid", pgid)
		_ = procgroup.StopGroup(ctx, pgid, s.cfg.StopSignal, s.cfg.StopTimeout)
	}
}

// containsEnv reports whether the NUL-separated environment env holds the
// entry mark (which ends in NUL).
func containsEnv(env, mark []byte) bool {
	if len(env) == 0 || env[len(env)-1] != 0 {
		env = append(env, 0)
	}
	return bytes.HasPrefix(env, mark) || bytes.Contains(env, append([]byte{0}, mark...))
}
