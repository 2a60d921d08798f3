package fdstore

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPutAndRemove: Put sends FDSTORE=1 and FDNAME= with the descriptor
// itself (the same socket arrives), Remove sends FDSTOREREMOVE=1, and names
// systemd would refuse are refused before anything is sent.
func TestPutAndRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	fake, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	s := Open(path)
	if !s.Enabled() {
		t.Fatal("a store with a socket is not enabled")
	}
	if err := s.Put("api/8000", f); err != nil {
		t.Fatal(err)
	}
	msg, fds := receive(t, fake)
	if msg != "FDSTORE=1\nFDNAME=api/8000\n" || len(fds) != 1 {
		t.Fatalf("got %q with %d descriptors", msg, len(fds))
	}
	var a, b syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &a)
	syscall.Fstat(fds[0], &b)
	syscall.Close(fds[0])
	if a.Ino != b.Ino {
		t.Errorf("the descriptor received is another file (inode %d, want %d)", b.Ino, a.Ino)
	}
	if err := s.Remove("api/8000"); err != nil {
		t.Fatal(err)
	}
	if msg, fds := receive(t, fake); msg != "FDSTOREREMOVE=1\nFDNAME=api/8000\n" || len(fds) != 0 {
		t.Errorf("got %q with %d descriptors", msg, len(fds))
	}
	for _, bad := range []string{"", "a:b", "a\nFDSTOREREMOVE=1", strings.Repeat("x", 256)} {
		if err := s.Put(bad, f); err == nil {
			t.Errorf("Put(%q) was not refused", bad)
		}
	}

	var none *Store
	if none.Enabled() || none.Take("x") != nil || none.Put("x", f) != nil || none.Remove("x") != nil {
		t.Error("a nil store does something")
	}
	if err := Open("").Put("api/8000", f); err != nil {
		t.Errorf("a store without a socket: %v", err)
	}
}

func receive(t *testing.T, c *net.UnixConn) (string, []int) {
	t.Helper()
	buf, oob := make([]byte, 512), make([]byte, 128)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		got, _ := syscall.ParseUnixRights(&m)
		fds = append(fds, got...)
	}
	return string(buf[:n]), fds
}
