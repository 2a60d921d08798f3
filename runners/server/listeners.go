package server

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// listenFile binds a TCP listening socket on addr and returns it as a file the runner
// can hand to children, plus the address it is bound to.
//
// The descriptor is a close-on-exec duplicate in blocking mode (what systemd and
// server-starter hand out), wrapped by os.NewFile so the os package never changes its
// mode again. This matters: the mode belongs to the socket shared by every generation,
// and a *os.File made by net.TCPListener.File puts the socket back into blocking mode
// each time it is passed to a child (os.File.Fd does), which can leave an old
// generation's accept blocked in the kernel while it shuts down.
func listenFile(addr, name string) (*os.File, net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close() // the duplicate keeps the socket open
	rc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		// Under ForkLock, as the standard library does, so that no child started
		// between Dup and CloseOnExec inherits the descriptor.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		fd, derr = syscall.Dup(int(s))
		if derr == nil {
			syscall.CloseOnExec(fd)
		}
	}); err != nil {
		return nil, nil, err
	}
	if derr != nil {
		return nil, nil, fmt.Errorf("dup: %w", derr)
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, nil, fmt.Errorf("set blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), name), l.Addr(), nil
}

// portListeners are the sockets of Config.Ports, bound once for the runner's life.
type portListeners struct {
	files []*os.File
	addrs []net.Addr
}

// bindPorts binds every port on all interfaces. On failure nothing stays bound.
func bindPorts(ports []int) (*portListeners, error) {
	pl := &portListeners{}
	for _, p := range ports {
		f, addr, err := listenFile(":"+strconv.Itoa(p), "port"+strconv.Itoa(p))
		if err != nil {
			pl.close()
			return nil, fmt.Errorf("listen on port %d: %w", p, err)
		}
		pl.files = append(pl.files, f)
		pl.addrs = append(pl.addrs, addr)
	}
	return pl, nil
}

func (pl *portListeners) close() {
	for _, f := range pl.files {
		f.Close()
	}
	pl.files, pl.addrs = nil, nil
}

// port is the number the i-th socket is bound to (the configured one, or the one the
// kernel chose for port 0).
func (pl *portListeners) port(i int) int {
	if a, ok := pl.addrs[i].(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}
