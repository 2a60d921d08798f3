package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
)

// proxyConfig is testConfig with proxy mode on.
func proxyConfig(ports int) Config {
	cfg := testConfig(ports)
	cfg.Proxy = true
	return cfg
}

// TestUnhealthyReleaseUnderLoad: a release that fails its health check while
// users send requests. With proxy = true it answers none of them and the old
// release serves them all; with the socket hand-off (the default) it answers
// some during its health window, which is what the docs warn about.
func TestUnhealthyReleaseUnderLoad(t *testing.T) {
	t.Parallel()
	for _, proxy := range []bool{true, false} {
		t.Run(fmt.Sprintf("proxy=%v", proxy), func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			cfg := testConfig(1)
			cfg.Proxy = proxy
			cfg.HealthTimeout = time.Second
			s, _ := runCurrent(t, h, cfg)
			oldPID := s.Stats().PID
			// A new connection per request: each one is routed afresh.
			load := testkit.StartLoad("http://"+loopback(s.Addrs()[0])+"/version", testkit.LoadOptions{Workers: 8})
			testkit.Eventually(t, 5*time.Second, "the load to get answers", func() bool { sent, _ := load.Counts(); return sent >= 50 })
			err := s.Deploy(t.Context(), h.release("v2", "-unhealthy"))
			sent, _ := load.Counts()
			testkit.Eventually(t, 5*time.Second, "more answers after the deploy", func() bool { n, _ := load.Counts(); return n >= sent+50 })
			res := load.Stop()
			t.Logf("sent %d, failed %d, answers %v", res.Sent, res.Failed, res.Answers)

			if !errors.Is(err, runners.ErrBadRelease) || !strings.Contains(err.Error(), "not healthy within 1s") {
				t.Fatalf("Deploy() = %v, want a failed health check", err)
			}
			if st := s.Stats(); st.Version != "v1" || st.PID != oldPID {
				t.Errorf("Stats() = %+v, want v1 still on pid %d", st, oldPID)
			}
			if pids := h.pidsOf("v2"); len(pids) > 0 {
				t.Errorf("v2 processes left: %v", pids)
			}
			if !proxy {
				if res.Answers["v2"] == 0 {
					t.Errorf("the hand-off mode's unhealthy release answered nobody (%v): the proxy test above proves nothing", res.Answers)
				}
				return
			}
			if res.Answers["v2"] != 0 {
				t.Errorf("the unhealthy release answered %d of %d user requests", res.Answers["v2"], res.Sent)
			}
			if res.Failed != 0 {
				t.Errorf("%d of %d requests failed, e.g. %v", res.Failed, res.Sent, res.Errors)
			}
			if res.Answers["v1"] != res.Sent {
				t.Errorf("v1 answered %d of %d", res.Answers["v1"], res.Sent)
			}
		})
	}
}

// TestProxyDrain: a request the old generation is answering when the new one
// goes live is answered in full by the old one, while new connections already
// go to the new one; the old one is stopped afterwards.
func TestProxyDrain(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	s, _ := runCurrent(t, h, proxyConfig(1), "-delay", "1500ms") // /version is slow; /pid is not
	addr := s.Addrs()[0]
	oldPID := s.Stats().PID
	s.mu.Lock()
	oldBackend := s.live.gen.backends[0]
	s.mu.Unlock()

	type answer struct {
		body string
		err  error
		at   time.Time
	}
	slow := make(chan answer, 1)
	go func() {
		body, err := get(addr, "/version")
		slow <- answer{body, err, time.Now()}
	}()
	testkit.Eventually(t, 5*time.Second, "the slow request to reach v1", func() bool { return oldBackend.Active() > 0 })

	deployed := make(chan error, 1)
	go func() { deployed <- s.Deploy(context.WithoutCancel(t.Context()), h.release("v2")) }()
	var switched time.Time
	testkit.Eventually(t, 5*time.Second, "a new connection to reach v2", func() bool {
		pid, err := get(addr, "/pid")
		if err == nil && pid != strconv.Itoa(oldPID) {
			switched = time.Now()
			return true
		}
		return false
	})
	a := <-slow
	if a.err != nil || a.body != "v1" {
		t.Fatalf("the request in flight during the switch: %q, %v; want v1's answer", a.body, a.err)
	}
	if !switched.Before(a.at) {
		t.Errorf("new connections reached v2 only at %s, after the old request ended at %s", switched.Format(time.StampMilli), a.at.Format(time.StampMilli))
	}
	if err := <-deployed; err != nil {
		t.Fatal(err)
	}
	if !gone(oldPID) {
		t.Errorf("old generation %d still runs after the deploy", oldPID)
	}
	if n := oldBackend.Active(); n != 0 {
		t.Errorf("%d connections still open to the old generation", n)
	}
}

// TestProxyRestart: a live generation that dies is restarted by the supervisor
// and routed again once healthy; the public port stays open meanwhile.
func TestProxyRestart(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	s, _ := newServer(t, proxyConfig(1))
	if err := s.Resume(t.Context(), h.release("v1")); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0]
	first := s.Stats().PID
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the restarted generation to answer through the proxy", func() bool {
		pid, err := get(addr, "/pid")
		return err == nil && pid != strconv.Itoa(first) && pid == strconv.Itoa(s.Stats().PID)
	})
	if st := s.Stats(); st.Restarts != 1 || !st.Running {
		t.Errorf("Stats() = %+v, want one restart", st)
	}
}

// TestProxyRoutesOnceHealthy: a resumed release not healthy within
// HealthTimeout gets no user until it is; a connection that arrives meanwhile
// waits in the proxy and is answered once the release is healthy.
func TestProxyRoutesOnceHealthy(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	cfg := proxyConfig(1)
	cfg.HealthTimeout = 500 * time.Millisecond
	s, _ := newServer(t, cfg)
	const unhealthyFor = 1500 * time.Millisecond
	start := time.Now()
	err := s.Resume(t.Context(), h.release("v1", "-unhealthy-for", unhealthyFor.String()))
	if err == nil || !strings.Contains(err.Error(), "not healthy within 500ms") {
		t.Fatalf("Resume() = %v, want a failed health check", err)
	}
	body, err := get(s.Addrs()[0], "/version")
	if err != nil || body != "v1" {
		t.Fatalf("GET /version = %q, %v; want v1 once healthy", body, err)
	}
	if took := time.Since(start); took < unhealthyFor {
		t.Errorf("answered %s after the start, before the app was healthy (%s)", took, unhealthyFor)
	}
}
