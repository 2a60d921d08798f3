package fdstore

import (
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestPutAndRemove: Put sends FDSTORE=1 and FDNAME= with the descriptor
// itself (the same socket arrives), Remove sends FDSTOREREMOVE=1, and names
// systemd would refuse are refused before anything is sent.
func TestPutAndRemove(t *testing.T) {
	fake := testkit.ListenNotify(t)
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

	s := Open(fake.Path)
	if !s.Enabled() {
		t.Fatal("a store with a socket is not enabled")
	}
	if err := s.Put("api/8000", f); err != nil {
		t.Fatal(err)
	}
	msg, fds, _ := fake.Next(t, "FDSTORE=1")
	if msg != "FDSTORE=1\nFDNAME=api/8000\n" || len(fds) != 1 {
		t.Fatalf("got %q with %d descriptors", msg, len(fds))
	}
	var a, b syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &a)
	syscall.Fstat(int(fds[0].Fd()), &b)
	fds[0].Close()
	if a.Ino != b.Ino {
		t.Errorf("the descriptor received is another file (inode %d, want %d)", b.Ino, a.Ino)
	}
	if err := s.Remove("api/8000"); err != nil {
		t.Fatal(err)
	}
	if msg, fds, _ := fake.Next(t, "FDSTOREREMOVE=1"); msg != "FDSTOREREMOVE=1\nFDNAME=api/8000\n" || len(fds) != 0 {
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
