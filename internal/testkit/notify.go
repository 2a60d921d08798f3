package testkit

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NotifySocket is a fake systemd notification socket: a unixgram socket at
// Path (pass it as NOTIFY_SOCKET) that keeps each datagram's text and the
// descriptors sent with it (FDSTORE=1).
type NotifySocket struct {
	Path string
	conn *net.UnixConn
}

// ListenNotify listens in a temporary directory; closed when the test ends.
func ListenNotify(t testing.TB) *NotifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &NotifySocket{Path: path, conn: conn}
}

// Next waits up to 20 s for a datagram that contains want and returns its
// text and the descriptors it carried (the caller closes them), and the text
// of the datagrams before it (their descriptors closed), for the test to
// check their order.
func (n *NotifySocket) Next(t testing.TB, want string) (msg string, files []*os.File, skipped []string) {
	t.Helper()
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	deadline := time.Now().Add(20 * time.Second)
	for {
		n.conn.SetReadDeadline(deadline)
		k, oobn, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatalf("no %q on NOTIFY_SOCKET: %v (got %q)", want, err, skipped)
		}
		files = nil
		msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			fds, _ := syscall.ParseUnixRights(&m)
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "passed"))
			}
		}
		if msg = string(buf[:k]); strings.Contains(msg, want) {
			return msg, files, skipped
		}
		for _, f := range files {
			f.Close()
		}
		skipped = append(skipped, msg)
	}
}
