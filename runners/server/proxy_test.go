package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
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

// TestProxyInheritance: in proxy mode the app inherits private loopback
// listeners, named after the public ports, and answers through the public ones.
func TestProxyInheritance(t *testing.T) {
	t.Parallel()
	for _, convention := range []string{"systemd", "server-starter"} {
		t.Run(convention, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			s, _ := newServer(t, proxyConfig(2))
			if err := s.Resume(t.Context(), h.release("v1", "-convention", convention)); err != nil {
				t.Fatal(err)
			}
			addrs := s.Addrs()
			if len(addrs) != 2 {
				t.Fatalf("Addrs() = %v, want 2", addrs)
			}
			public := []int{addrs[0].(*net.TCPAddr).Port, addrs[1].(*net.TCPAddr).Port}
			for _, a := range addrs {
				if got := mustGet(t, a, "/version"); got != "v1" {
					t.Errorf("GET %s/version = %q, want v1", a, got)
				}
			}
			var c struct {
				Names []string `json:"names"`
				Addrs []string `json:"addrs"`
			}
			if err := json.Unmarshal([]byte(mustGet(t, addrs[0], "/conventions")), &c); err != nil {
				t.Fatal(err)
			}
			if len(c.Addrs) != 3 {
				t.Fatalf("inherited listeners = %v, want 2 private ones and the health listener", c.Addrs)
			}
			for i, a := range c.Addrs {
				host, port, _ := net.SplitHostPort(a)
				if host != "127.0.0.1" || slices.Contains([]string{strconv.Itoa(public[0]), strconv.Itoa(public[1])}, port) {
					t.Errorf("listener %d is %s, want a private 127.0.0.1 port", i, a)
				}
			}
			want := []string{fmt.Sprint("port", public[0]), fmt.Sprint("port", public[1]), "health"}
			if convention == "server-starter" {
				want = c.Addrs // the private addresses themselves
			}
			if !slices.Equal(c.Names, want) {
				t.Errorf("names = %q, want %q", c.Names, want)
			}
		})
	}
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
			s, _ := newServer(t, cfg)
			v1 := h.release("v1")
			h.link(v1.Dir)
			if err := s.Resume(t.Context(), v1); err != nil {
				t.Fatal(err)
			}
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

// TestProxyDeployUnderLoad: healthy releases take over through the proxy
// without one failed request, and every request after a deploy goes to the new
// release.
func TestProxyDeployUnderLoad(t *testing.T) {
	t.Parallel()
	for _, ka := range []testkit.KeepAlive{testkit.KeepAliveNone, testkit.KeepAliveHalf} {
		t.Run("keepalive="+string(ka), func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			cfg := proxyConfig(1)
			cfg.CrashWindow = 300 * time.Millisecond
			s, _ := newServer(t, cfg)
			v1 := h.release("v1", "-delay", "2ms")
			h.link(v1.Dir)
			if err := s.Resume(t.Context(), v1); err != nil {
				t.Fatal(err)
			}
			addr := s.Addrs()[0]
			load := testkit.StartLoad("http://"+loopback(addr)+"/version", testkit.LoadOptions{Workers: 8, KeepAlive: ka})
			testkit.Eventually(t, 5*time.Second, "the load to get answers", func() bool { sent, _ := load.Counts(); return sent >= 50 })
			for _, v := range []string{"v2", "v3"} {
				oldPID := s.Stats().PID
				if err := s.Deploy(t.Context(), h.release(v, "-delay", "2ms")); err != nil {
					load.Stop()
					t.Fatalf("deploy %s: %v", v, err)
				}
				if got := mustGet(t, addr, "/version"); got != v {
					t.Errorf("right after deploying %s, /version = %q", v, got)
				}
				if !gone(oldPID) {
					t.Errorf("old generation %d still runs after deploying %s", oldPID, v)
				}
				sent, _ := load.Counts()
				testkit.Eventually(t, 5*time.Second, "answers after the deploy", func() bool { n, _ := load.Counts(); return n >= sent+50 })
			}
			res := load.Stop()
			t.Logf("sent %d, failed %d, versions %v", res.Sent, res.Failed, res.Answers)
			if res.Failed > 0 {
				t.Errorf("%d of %d requests failed during deploys, e.g. %v", res.Failed, res.Sent, res.Errors)
			}
			for _, v := range []string{"v1", "v2", "v3"} {
				if res.Answers[v] == 0 {
					t.Errorf("no request was answered by %s: %v", v, res.Answers)
				}
			}
			if st := s.Stats(); st.Version != "v3" || !st.Running || st.Restarts != 0 {
				t.Errorf("Stats() = %+v", st)
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
	s, _ := newServer(t, proxyConfig(1))
	v1 := h.release("v1", "-delay", "1500ms") // /version is slow; /pid is not
	h.link(v1.Dir)
	if err := s.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
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

// TestProxyBadRelease: a release that never becomes healthy is never routed; one
// that crashes after going live is rolled back and the old release is routed
// again.
func TestProxyBadRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		flags   []string
		cancel  time.Duration // Deploy's context ends after this long
		wantErr string
		wantV2  bool // v2 went live, so it may have answered
	}{
		{name: "exits at once", flags: []string{"-exit-at-start", "2"}, wantErr: "exited before it was healthy"},
		{name: "deploy canceled while unhealthy", flags: []string{"-unhealthy"}, cancel: 500 * time.Millisecond, wantErr: "context deadline exceeded"},
		{name: "crashes right after going live", flags: []string{"-crash-after", "300ms"}, wantErr: "of going live", wantV2: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			s, _ := newServer(t, proxyConfig(1))
			v1 := h.release("v1")
			h.link(v1.Dir)
			if err := s.Resume(t.Context(), v1); err != nil {
				t.Fatal(err)
			}
			load := testkit.StartLoad("http://"+loopback(s.Addrs()[0])+"/version", testkit.LoadOptions{Workers: 4})
			ctx := t.Context()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.cancel)
				defer cancel()
			}
			err := s.Deploy(ctx, h.release("v2", tt.flags...))
			if got := mustGet(t, s.Addrs()[0], "/version"); got != "v1" {
				t.Errorf("after the failed deploy /version = %q, want v1", got)
			}
			res := load.Stop()
			t.Logf("sent %d, failed %d, answers %v", res.Sent, res.Failed, res.Answers)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Deploy() = %v, want %q", err, tt.wantErr)
			}
			if h.target() != v1.Dir {
				t.Errorf("current -> %s, want v1", h.target())
			}
			if pids := h.pidsOf("v2"); len(pids) > 0 {
				t.Errorf("v2 processes left: %v", pids)
			}
			if tt.wantV2 {
				return // it crashed while serving: its requests in flight failed
			}
			if res.Answers["v2"] != 0 || res.Failed != 0 {
				t.Errorf("v2 answered %d, %d failed (%v); want none", res.Answers["v2"], res.Failed, res.Errors)
			}
		})
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
