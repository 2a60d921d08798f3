package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

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

	ns := testkit.ListenNotify(t)
	p := startAgent(t, cfg, "NOTIFY_SOCKET="+ns.Path, "WATCHDOG_USEC=400000")

	ready, _, before := ns.Next(t, "READY=1")
	if len(before) > 0 {
		t.Errorf("messages before READY=1: %q", before)
	}
	if st := fields(ready)["STATUS"]; !strings.HasPrefix(st, "1 app") {
		t.Errorf("READY=1 came with STATUS=%q, want a summary starting with \"1 app\"", st)
	}
	waitVersion(t, p, state, "site", "v1.0.0")
	ns.Next(t, "WATCHDOG=1")

	p.cmd.Process.Signal(syscall.SIGHUP)
	reloading, _, _ := ns.Next(t, "RELOADING=1")
	usec, err := strconv.ParseInt(fields(reloading)["MONOTONIC_USEC"], 10, 64)
	if err != nil || usec <= 0 {
		t.Errorf("RELOADING=1 without a MONOTONIC_USEC: %q", reloading)
	}
	after, _, _ := ns.Next(t, "READY=1")
	if st := fields(after)["STATUS"]; !strings.Contains(st, "last reload success") {
		t.Errorf("READY=1 after the reload came with STATUS=%q", st)
	}

	p.stop(t)
	ns.Next(t, "STOPPING=1")
}
