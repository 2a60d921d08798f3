package main

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// notifySocket listens where systemd would, on a unixgram socket named by
// NOTIFY_SOCKET, and hands out each datagram the agent sends.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n := &notifySocket{path: path, msgs: make(chan string, 256)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// next waits for a message that contains want, returning it; the messages
// before it are returned too, for the test to check their order.
func (n *notifySocket) next(t *testing.T, want string) (string, []string) {
	t.Helper()
	var skipped []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %q (got %q)", want, skipped)
			}
			if strings.Contains(m, want) {
				return m, skipped
			}
			skipped = append(skipped, m)
		case <-timeout:
			t.Fatalf("no %q on NOTIFY_SOCKET within 20s (got %q)", want, skipped)
		}
	}
}

// fields parses "A=1\nB=2" into a map.
func fields(msg string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(msg, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestSystemdNotify runs the real binary as systemd would with Type=notify and
// WatchdogSec=: READY=1 once it is up (with a STATUS= summary), WATCHDOG=1
// while it runs, RELOADING=1 with MONOTONIC_USEC= and then READY=1 around a
// reload, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	e := newEnv(t)
	e.publishSite(t, "v1.0.0")
	e.writeConfig(t, `admin = "127.0.0.1:0"`, e.siteApp())
	state, cfg := e.state, e.cfg

	ns := listenNotify(t)
	p := startAgent(t, cfg, "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=400000")

	ready, before := ns.next(t, "READY=1")
	if len(before) > 0 {
		t.Errorf("messages before READY=1: %q", before)
	}
	if st := fields(ready)["STATUS"]; !strings.HasPrefix(st, "1 app") {
		t.Errorf("READY=1 came with STATUS=%q, want a summary starting with \"1 app\"", st)
	}
	waitVersion(t, p, state, "site", "v1.0.0")
	ns.next(t, "WATCHDOG=1")

	p.cmd.Process.Signal(syscall.SIGHUP)
	reloading, _ := ns.next(t, "RELOADING=1")
	usec, err := strconv.ParseInt(fields(reloading)["MONOTONIC_USEC"], 10, 64)
	if err != nil || usec <= 0 {
		t.Errorf("RELOADING=1 without a MONOTONIC_USEC: %q", reloading)
	}
	after, _ := ns.next(t, "READY=1")
	if st := fields(after)["STATUS"]; !strings.Contains(st, "last reload success") {
		t.Errorf("READY=1 after the reload came with STATUS=%q", st)
	}

	p.stop(t)
	ns.next(t, "STOPPING=1")
}
