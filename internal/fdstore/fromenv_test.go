package fdstore

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFromEnv runs this test binary again the way systemd starts a service
// with stored descriptors: two listening sockets at fds 3 and 4, LISTEN_FDS,
// LISTEN_FDNAMES, and LISTEN_PID set to the child's own pid (sh's $$, kept
// by exec). The child takes each by name and says the address it listens
// on, which must be the one the parent opened under that name.
func TestFromEnv(t *testing.T) {
	if os.Getenv("FDSTORE_FROMENV_CHILD") == "1" {
		fromEnvChild()
		return
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to set LISTEN_PID to the child's pid")
	}
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close() // the dup in f keeps the socket listening
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^TestFromEnv$'`, os.Args[0])
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), "FDSTORE_FROMENV_CHILD=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=api/8000:web/9000", "NOTIFY_SOCKET=/run/fake-notify")
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("child said nothing: %v", err)
	}
	if want := "enabled names=api/8000,web/9000 env-cleared\n"; line != want {
		t.Fatalf("child: %q, want %q", line, want)
	}
	for i, name := range []string{"api/8000", "web/9000"} {
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := name + " listens on " + addrs[i] + "\n"; got != want {
			t.Fatalf("child: %q, want %q", got, want)
		}
	}
	if got, _ := r.ReadString('\n'); got != "taken once\n" {
		t.Fatalf("child: %q, want a descriptor taken once only", got)
	}
}

// fromEnvChild is TestFromEnv's other side.
func fromEnvChild() {
	s := FromEnv()
	cleared := os.Getenv("LISTEN_FDS") == "" && os.Getenv("LISTEN_PID") == "" && os.Getenv("LISTEN_FDNAMES") == ""
	state := "disabled"
	if s.Enabled() {
		state = "enabled"
	}
	msg := state + " names=" + strings.Join(s.Names(), ",")
	if cleared {
		msg += " env-cleared"
	}
	os.Stdout.WriteString(msg + "\n")
	for _, name := range []string{"api/8000", "web/9000"} {
		f := s.Take(name)
		if f == nil {
			os.Stdout.WriteString("missing " + name + "\n")
			os.Exit(1)
		}
		ln, err := net.FileListener(f)
		if err != nil {
			os.Stdout.WriteString("not a listener " + name + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString(name + " listens on " + ln.Addr().String() + "\n")
	}
	if s.Take("api/8000") == nil {
		os.Stdout.WriteString("taken once\n")
	}
	os.Exit(0)
}
