// Package fdstore keeps the agent's listening sockets in systemd's file
// descriptor store, so that they outlive the agent's crash or restart in the
// service manager's hands. Its words:
//
//   - Store: systemd keeps descriptors a service sends it with FDSTORE=1 (up
//     to the unit's FileDescriptorStoreMax=) while the service restarts, and
//     hands them to the next start of the service as LISTEN_FDS, with their
//     FDNAME= in LISTEN_FDNAMES (sd_notify(3), sd_listen_fds(3)).
//   - Name: what a descriptor is stored under; the server runner uses
//     "<app>/<port>".
//
// Without NOTIFY_SOCKET (not under systemd) Put and Remove do nothing; Take
// finds only what LISTEN_FDS passed.
package fdstore

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
)

// Store is the agent's view of the service manager's descriptor store. It is
// safe for concurrent use. A nil *Store stores nothing and holds nothing.
type Store struct {
	socket string

	mu    sync.Mutex
	files map[string][]*os.File // passed at start, not yet taken
}

// FromEnv returns the store of this process: it sends to $NOTIFY_SOCKET and
// holds the descriptors systemd passed (LISTEN_FDS, LISTEN_FDNAMES), if
// LISTEN_PID is this process. It unsets the LISTEN_* variables, so that no
// child sees them. Call it once, early.
func FromEnv() *Store {
	s := &Store{socket: os.Getenv("NOTIFY_SOCKET"), files: map[string][]*os.File{}}
	for _, f := range activation.Files(true) {
		s.files[f.Name()] = append(s.files[f.Name()], f)
	}
	return s
}

// Open returns a store that sends to the datagram socket at socket and holds
// nothing passed at start.
func Open(socket string) *Store {
	return &Store{socket: socket, files: map[string][]*os.File{}}
}

// Enabled reports whether descriptors are sent to a service manager.
func (s *Store) Enabled() bool { return s != nil && s.socket != "" }

// Take returns a descriptor passed at start under name, or nil; each one is
// returned once. The caller owns it.
func (s *Store) Take(name string) *os.File {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[name]
	if len(fs) == 0 {
		return nil
	}
	s.files[name] = fs[1:]
	if len(s.files[name]) == 0 {
		delete(s.files, name)
	}
	return fs[0]
}

// Names are the names of the descriptors passed at start and not yet taken,
// sorted.
func (s *Store) Names() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.files))
}

// Put asks the service manager to keep a copy of f under name. The store
// skips a descriptor it holds already.
func (s *Store) Put(name string, f *os.File) error {
	if !s.Enabled() {
		return nil
	}
	if err := checkName(name); err != nil {
		return err
	}
	return s.send("FDSTORE=1\nFDNAME="+name+"\n", f)
}

// Remove asks the service manager to drop what it keeps under name, and
// closes what was passed at start under name and not taken: the socket is
// then closed everywhere but where it is still used.
func (s *Store) Remove(name string) error {
	if s == nil {
		return nil
	}
	for f := s.Take(name); f != nil; f = s.Take(name) {
		f.Close()
	}
	if !s.Enabled() {
		return nil
	}
	if err := checkName(name); err != nil {
		return err
	}
	return s.send("FDSTOREREMOVE=1\nFDNAME="+name+"\n", nil)
}

// checkName refuses what systemd does not take as a descriptor name: more
// than 255 bytes, control characters and ':'.
func checkName(name string) error {
	if name == "" || len(name) > 255 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f || r == ':' }) {
		return fmt.Errorf("fdstore: %q is not a valid descriptor name", name)
	}
	return nil
}

// send sends one notification datagram, with f's descriptor when f is set.
func (s *Store) send(state string, f *os.File) error {
	// Close-on-exec under ForkLock, as net does where SOCK_CLOEXEC is
	// missing (macOS), so no child started meanwhile inherits the socket.
	syscall.ForkLock.RLock()
	sock, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err == nil {
		syscall.CloseOnExec(sock)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return fmt.Errorf("fdstore: %w", err)
	}
	defer syscall.Close(sock)
	var oob []byte
	if f != nil {
		// The raw descriptor, without Fd(), which would change the mode of a
		// description shared with the apps.
		rc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("fdstore: %w", err)
		}
		var fd int
		if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
			return fmt.Errorf("fdstore: %w", err)
		}
		oob = syscall.UnixRights(fd)
	}
	// A name that begins with @ is an abstract socket; syscall handles it.
	err = syscall.Sendmsg(sock, []byte(state), oob, &syscall.SockaddrUnix{Name: s.socket}, 0)
	runtime.KeepAlive(f)
	if err != nil {
		return fmt.Errorf("fdstore: send to %s: %w", s.socket, err)
	}
	return nil
}
