package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dewy-agent/dewy-agent/internal/procgroup"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
)

// testapp is the test app binary, built once by TestMain.
var testapp string

func TestMain(m *testing.M) {
	if runHelperAgent() { // the test binary started as an agent to kill
		return
	}
	dir, err := os.MkdirTemp("", "server-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testapp = filepath.Join(dir, "testapp")
	if out, err := exec.Command("go", "build", "-o", testapp, "../../testdata/testapp").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testapp: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// home is one app's directory: releases and a real `current` link that the fake
// Activate and Rollback switch, as the agent's would.
type home struct {
	t          *testing.T
	root       string
	current    string
	activated  atomic.Int32
	rolledBack atomic.Int32
	failSwitch atomic.Bool // Activate fails
}

func newHome(t *testing.T) *home {
	root := t.TempDir()
	return &home{t: t, root: root, current: filepath.Join(root, "current")}
}

// release makes a release dir whose ./run execs the test app with the version and
// flags, and returns its Deployment.
func (h *home) release(version string, flags ...string) runners.Deployment {
	h.t.Helper()
	dir := filepath.Join(h.root, "releases", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	args := []string{shellQuote(testapp), "-version", shellQuote(version)}
	for _, f := range flags {
		args = append(args, shellQuote(f))
	}
	script := "#!/bin/sh\nexec " + strings.Join(args, " ") + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte(script), 0o755); err != nil {
		h.t.Fatal(err)
	}
	var prev string
	return runners.Deployment{
		Version: version,
		Dir:     dir,
		Activate: func() error {
			h.activated.Add(1)
			if h.failSwitch.Load() {
				return errors.New("disk full")
			}
			prev, _ = os.Readlink(h.current)
			return h.link(dir)
		},
		Rollback: func() error {
			h.rolledBack.Add(1)
			if prev == "" {
				return os.Remove(h.current)
			}
			return h.link(prev)
		},
	}
}

// link points current at target atomically.
func (h *home) link(target string) error {
	tmp := h.current + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, h.current)
}

func (h *home) target() string {
	t, _ := os.Readlink(h.current)
	return t
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// testConfig is a config with short timeouts and n ports chosen by the kernel.
func testConfig(ports int) Config {
	return Config{
		Command:       []string{"./run"},
		Ports:         make([]int, ports),
		HealthPath:    "/health",
		HealthTimeout: 3 * time.Second,
		StopTimeout:   3 * time.Second,
		SettleTime:    300 * time.Millisecond,
		CrashWindow:   time.Second,
	}
}

// newServer returns a runner logging JSON into the returned buffer (printed if the
// test fails), stopped when the test ends.
func newServer(t *testing.T, cfg Config) (*Server, *testkit.LogBuffer) {
	t.Helper()
	logs := &testkit.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			for line := range strings.Lines(logs.String()) {
				if len(line) > 300 {
					line = line[:300] + "...\n"
				}
				b.WriteString(line)
			}
			t.Logf("runner log:\n%s", b.String())
		}
	})
	s := New(cfg, runners.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), AppDir: t.TempDir()})
	s.minBackoff = 50 * time.Millisecond
	t.Cleanup(func() {
		if err := s.Stop(context.Background(), runners.AppRemoved); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s, logs
}

// runCurrent returns a runner for cfg running v1 of h, made with flags and
// linked as h's current release, as after a deploy.
func runCurrent(t *testing.T, h *home, cfg Config, flags ...string) (*Server, runners.Deployment) {
	t.Helper()
	s, _ := newServer(t, cfg)
	v1 := h.release("v1", flags...)
	h.link(v1.Dir)
	if err := s.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	return s, v1
}

// get fetches path from addr on a new connection.
func get(addr net.Addr, path string) (string, error) {
	return testkit.Get(nil, "http://"+loopback(addr)+path)
}

// loopback is addr's port on 127.0.0.1 (the ports listen on all interfaces).
func loopback(addr net.Addr) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.(*net.TCPAddr).Port))
}

func mustGet(t *testing.T, addr net.Addr, path string) string {
	t.Helper()
	body, err := get(addr, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return body
}

// gone reports whether no live process has the pid. A zombie counts as gone: the
// app's children are reparented to init when it dies, and init in some containers
// never reaps them.
func gone(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || isZombie(stat)
}

// groupGone reports whether no live process is left in the process group.
func groupGone(t *testing.T, pgid int) bool {
	if syscall.Kill(-pgid, 0) == syscall.ESRCH {
		return true
	}
	for _, p := range procs(t) {
		if p.pgrp == pgid && !p.zombie {
			return false
		}
	}
	return true
}

type proc struct {
	pid, pgrp int
	zombie    bool
	cmdline   string
	cwd       string
}

// procs lists the processes in /proc.
func procs(t *testing.T) []proc {
	t.Helper()
	all, err := procgroup.Procs()
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var ps []proc
	for _, p := range all {
		dir := filepath.Join("/proc", strconv.Itoa(p.Pid))
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		cwd, _ := os.Readlink(filepath.Join(dir, "cwd"))
		ps = append(ps, proc{pid: p.Pid, pgrp: p.Pgrp, zombie: p.State == "Z", cmdline: string(cmdline), cwd: cwd})
	}
	return ps
}

// pidsOf lists the live test app processes of a release of h.
func (h *home) pidsOf(version string) []int {
	h.t.Helper()
	var pids []int
	dir := filepath.Join(h.root, "releases", version)
	for _, p := range procs(h.t) {
		if !p.zombie && p.cwd == dir && strings.HasPrefix(p.cmdline, testapp+"\x00") {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// ignoresTERM reports whether the process ignores SIGTERM (SigIgn in its status).
func ignoresTERM(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(status)) {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && mask&(1<<(uint(syscall.SIGTERM)-1)) != 0
		}
	}
	return false
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// TestInheritance: the app inherits its listeners under the names of the
// convention it asks for. With proxy = true they are private loopback
// listeners, named after the public ports, and the app answers through the
// public ones.
func TestInheritance(t *testing.T) {
	t.Parallel()
	systemd := func(public []int, health string) []string {
		names := []string{fmt.Sprint("port", public[0]), fmt.Sprint("port", public[1])}
		if health != "" {
			names = append(names, "health")
		}
		return names
	}
	tests := []struct {
		name       string
		convention string
		healthPath string
		proxy      bool
		// wantNames are the listener names, from the public ports, the
		// inherited addresses and the health listener's ("" for none).
		wantNames func(public []int, inherited []string, health string) []string
	}{
		{
			name:       "systemd with health listener",
			convention: "systemd",
			healthPath: "/health",
			wantNames:  func(p []int, _ []string, h string) []string { return systemd(p, h) },
		},
		{
			name:       "server-starter with health listener",
			convention: "server-starter",
			healthPath: "/health",
			wantNames: func(p []int, _ []string, h string) []string {
				return []string{strconv.Itoa(p[0]), strconv.Itoa(p[1]), h}
			},
		},
		{
			name:       "systemd without health path",
			convention: "systemd",
			wantNames:  func(p []int, _ []string, h string) []string { return systemd(p, h) },
		},
		{
			name:       "server-starter without health path",
			convention: "server-starter",
			wantNames: func(p []int, _ []string, _ string) []string {
				return []string{strconv.Itoa(p[0]), strconv.Itoa(p[1])}
			},
		},
		{
			name:       "systemd behind the proxy",
			convention: "systemd",
			healthPath: "/health",
			proxy:      true,
			wantNames:  func(p []int, _ []string, h string) []string { return systemd(p, h) },
		},
		{
			name:       "server-starter behind the proxy",
			convention: "server-starter",
			healthPath: "/health",
			proxy:      true,
			wantNames:  func(_ []int, inherited []string, _ string) []string { return inherited }, // the private addresses themselves
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			cfg := testConfig(2)
			cfg.HealthPath = tt.healthPath
			cfg.Proxy = tt.proxy
			s, _ := newServer(t, cfg)
			if err := s.Resume(t.Context(), h.release("v1", "-convention", tt.convention)); err != nil {
				t.Fatal(err)
			}
			addrs := s.Addrs()
			if len(addrs) != 2 {
				t.Fatalf("Addrs() = %v, want 2", addrs)
			}
			ports := []int{addrs[0].(*net.TCPAddr).Port, addrs[1].(*net.TCPAddr).Port}
			for _, a := range addrs {
				if got := mustGet(t, a, "/version"); got != "v1" {
					t.Errorf("GET %s/version = %q, want v1", a, got)
				}
			}
			var c struct {
				Convention       string   `json:"convention"`
				ListenPIDMatched bool     `json:"listen_pid_matched"`
				Names            []string `json:"names"`
				Addrs            []string `json:"addrs"`
				ListenFDs        string   `json:"listen_fds"`
			}
			if err := json.Unmarshal([]byte(mustGet(t, addrs[1], "/conventions")), &c); err != nil {
				t.Fatal(err)
			}
			if c.Convention != tt.convention {
				t.Errorf("convention = %q, want %q", c.Convention, tt.convention)
			}
			if !c.ListenPIDMatched {
				t.Error("LISTEN_PID is not the app's pid")
			}
			health := ""
			if tt.healthPath != "" {
				if len(c.Addrs) != 3 || !strings.HasPrefix(c.Addrs[2], "127.0.0.1:") {
					t.Fatalf("inherited listeners = %v, want the 2 ports and a 127.0.0.1 health listener", c.Addrs)
				}
				health = c.Addrs[2]
			}
			for i, a := range c.Addrs {
				host, port, _ := net.SplitHostPort(a)
				private := host == "127.0.0.1" && !slices.Contains([]string{strconv.Itoa(ports[0]), strconv.Itoa(ports[1])}, port)
				if tt.proxy && !private {
					t.Errorf("listener %d is %s, want a private 127.0.0.1 port", i, a)
				}
			}
			if want := tt.wantNames(ports, c.Addrs, health); !slices.Equal(c.Names, want) {
				t.Errorf("names = %q, want %q", c.Names, want)
			}
			if want := strconv.Itoa(len(tt.wantNames(ports, c.Addrs, health))); c.ListenFDs != want {
				t.Errorf("LISTEN_FDS = %q, want %q", c.ListenFDs, want)
			}
			if pid := mustGet(t, addrs[0], "/pid"); pid != strconv.Itoa(s.Stats().PID) {
				t.Errorf("app pid %s, Stats().PID %d", pid, s.Stats().PID)
			}
		})
	}
}

// TestDeployUnderLoad: healthy releases take over without one failed
// request, through the socket hand-off or the proxy, and every request after
// a deploy goes to the new release.
func TestDeployUnderLoad(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		proxy bool
		ka    testkit.KeepAlive
	}{
		{false, testkit.KeepAliveNone}, {false, testkit.KeepAliveAll},
		{true, testkit.KeepAliveNone}, {true, testkit.KeepAliveHalf},
	} {
		t.Run(fmt.Sprintf("proxy=%v/keepalive=%s", tt.proxy, tt.ka), func(t *testing.T) {
			if testing.Short() && !tt.proxy {
				t.Skip("deploys under continuous requests: skipped with -short")
			}
			t.Parallel()
			h := newHome(t)
			cfg := testConfig(1)
			cfg.Proxy = tt.proxy
			cfg.CrashWindow = 300 * time.Millisecond
			s, _ := runCurrent(t, h, cfg, "-delay", "2ms")
			addr := s.Addrs()[0]
			load := testkit.StartLoad("http://"+loopback(addr)+"/version", testkit.LoadOptions{Workers: 8, KeepAlive: tt.ka})
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
			if got, want := h.target(), filepath.Join(h.root, "releases", "v3"); got != want {
				t.Errorf("current -> %s, want %s", got, want)
			}
			if st := s.Stats(); st.Version != "v3" || !st.Running || st.Restarts != 0 {
				t.Errorf("Stats() = %+v", st)
			}
		})
	}
}

func TestDeployBadRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		flags         []string
		proxy         bool
		alsoProxy     bool          // run the case behind the proxy too
		cancel        time.Duration // Deploy's context ends after this long
		failActivate  bool
		healthTimeout time.Duration
		wantErr       string
		wantBad       bool // the error says the release is at fault
		wantActivated int32
		wantRollback  int32
		oldKeepsPID   bool // the old generation was never stopped
	}{
		{
			name:          "fails its health check",
			flags:         []string{"-unhealthy"},
			healthTimeout: 500 * time.Millisecond,
			wantErr:       "not healthy within 500ms",
			wantBad:       true,
			oldKeepsPID:   true,
		},
		{
			name:        "exits at once",
			flags:       []string{"-exit-at-start", "2"},
			alsoProxy:   true,
			wantErr:     "exited before it was healthy (exit status 2)",
			wantBad:     true,
			oldKeepsPID: true,
		},
		{
			name:          "activate fails",
			failActivate:  true,
			wantErr:       "activate: disk full",
			wantActivated: 1,
			oldKeepsPID:   true,
		},
		{
			name:          "crashes right after going live",
			flags:         []string{"-crash-after-healthy", "300ms"},
			alsoProxy:     true,
			wantErr:       "exit status 3 within 1s of going live",
			wantBad:       true,
			wantActivated: 1,
			wantRollback:  1,
		},
		{
			name:        "deploy canceled while unhealthy",
			flags:       []string{"-unhealthy"},
			alsoProxy:   true,
			cancel:      500 * time.Millisecond,
			wantErr:     "context deadline exceeded",
			oldKeepsPID: true,
		},
	}
	// Behind the proxy, a release that never becomes healthy is never routed;
	// one that crashes after going live is rolled back and the old release is
	// routed again.
	for _, tt := range tests {
		if tt.alsoProxy {
			tt.name, tt.proxy = "proxy: "+tt.name, true
			tests = append(tests, tt)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			cfg := testConfig(1)
			cfg.Proxy = tt.proxy
			if tt.healthTimeout > 0 {
				cfg.HealthTimeout = tt.healthTimeout
			}
			s, v1 := runCurrent(t, h, cfg)
			oldPID := s.Stats().PID
			h.failSwitch.Store(tt.failActivate)
			ctx := t.Context()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.cancel)
				defer cancel()
			}
			var load *testkit.Load
			if tt.proxy { // users must not reach v2 before it went live
				load = testkit.StartLoad("http://"+loopback(s.Addrs()[0])+"/version", testkit.LoadOptions{Workers: 4})
			}
			start := time.Now()
			err := s.Deploy(ctx, h.release("v2", tt.flags...))
			var res testkit.LoadResult
			if load != nil {
				res = load.Stop()
				t.Logf("sent %d, failed %d, answers %v", res.Sent, res.Failed, res.Answers)
			}
			if took := time.Since(start); tt.cancel > 0 && took > tt.cancel+2*time.Second {
				t.Errorf("Deploy took %s after its context was done", took-tt.cancel)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Deploy() error = %v, want one containing %q", err, tt.wantErr)
			}
			if got := errors.Is(err, runners.ErrBadRelease); got != tt.wantBad {
				t.Errorf("errors.Is(err, ErrBadRelease) = %v, want %v", got, tt.wantBad)
			}
			if got := h.activated.Load(); got != tt.wantActivated {
				t.Errorf("Activate called %d times, want %d", got, tt.wantActivated)
			}
			if got := h.rolledBack.Load(); got != tt.wantRollback {
				t.Errorf("Rollback called %d times, want %d", got, tt.wantRollback)
			}
			if got := h.target(); got != v1.Dir {
				t.Errorf("current -> %s, want %s", got, v1.Dir)
			}
			if got := mustGet(t, s.Addrs()[0], "/version"); got != "v1" {
				t.Errorf("/version = %q, want v1", got)
			}
			st := s.Stats()
			if st.Version != "v1" || !st.Running {
				t.Errorf("Stats() = %+v, want v1 running", st)
			}
			if tt.oldKeepsPID && st.PID != oldPID {
				t.Errorf("old generation was replaced: pid %d, was %d", st.PID, oldPID)
			}
			if pids := h.pidsOf("v2"); len(pids) > 0 {
				t.Errorf("v2 processes left: %v", pids)
			}
			// Behind the proxy a release that never went live answers nobody
			// (one that crashed while serving failed its requests in flight).
			if load != nil && tt.wantActivated == 0 && (res.Answers["v2"] != 0 || res.Failed != 0) {
				t.Errorf("v2 answered %d, %d failed (%v); want none", res.Answers["v2"], res.Failed, res.Errors)
			}
		})
	}
}

func TestFirstDeployCrashes(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	cfg := testConfig(1)
	cfg.CrashWindow = 500 * time.Millisecond
	s, _ := newServer(t, cfg)
	err := s.Deploy(t.Context(), h.release("v1", "-crash-after-healthy", "200ms"))
	if err == nil || !strings.Contains(err.Error(), "of going live") {
		t.Fatalf("Deploy() error = %v, want a crash within the window", err)
	}
	if h.rolledBack.Load() != 1 {
		t.Errorf("Rollback called %d times, want 1", h.rolledBack.Load())
	}
	if _, err := os.Lstat(h.current); !os.IsNotExist(err) {
		t.Errorf("current still exists after rolling back the first deploy: %v", err)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Errorf("Stats() = %+v, want nothing live", st)
	}
	// The runner still deploys a good release afterwards.
	if err := s.Deploy(t.Context(), h.release("v2")); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s.Addrs()[0], "/version"); got != "v2" {
		t.Errorf("/version = %q, want v2", got)
	}
}

func TestRestartPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		restart     string
		flags       []string
		kill        bool // SIGKILL the app from outside instead of letting it crash
		wantRestart bool
		wantLoop    bool
	}{
		{name: "always restarts a crash, then reports a crash loop", restart: "always", flags: []string{"-crash-after", "150ms"}, wantRestart: true, wantLoop: true},
		{name: "always restarts a clean exit", restart: "always", flags: []string{"-crash-after", "150ms", "-crash-code", "0"}, wantRestart: true},
		{name: "default is always", flags: []string{"-crash-after", "150ms", "-crash-code", "0"}, wantRestart: true},
		{name: "on-failure restarts a crash", restart: "on-failure", flags: []string{"-crash-after", "150ms"}, wantRestart: true},
		{name: "on-failure restarts a killed app", restart: "on-failure", kill: true, wantRestart: true},
		{name: "on-failure leaves a clean exit", restart: "on-failure", flags: []string{"-crash-after", "150ms", "-crash-code", "0"}},
		{name: "never leaves a crash", restart: "never", flags: []string{"-crash-after", "150ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			cfg := testConfig(1)
			cfg.Restart = tt.restart
			s, _ := newServer(t, cfg)
			if err := s.Resume(t.Context(), h.release("v1", tt.flags...)); err != nil {
				t.Fatal(err)
			}
			first := s.Stats().PID
			if tt.kill {
				syscall.Kill(first, syscall.SIGKILL)
			}
			if !tt.wantRestart {
				testkit.Eventually(t, 3*time.Second, "the app to exit", func() bool { return !s.Stats().Running })
				time.Sleep(200 * time.Millisecond) // several backoffs
				if st := s.Stats(); st.Restarts != 0 || st.Running || st.Version != "v1" {
					t.Errorf("Stats() = %+v, want v1 not restarted", st)
				}
				return
			}
			testkit.Eventually(t, 5*time.Second, "a restart", func() bool {
				st := s.Stats()
				return st.Restarts >= 1 && st.Running && st.PID != first
			})
			// The restarted app serves v1. It may crash again 150 ms after
			// it started (that is the test), so a refused or cut request is
			// tried again rather than failing a slow machine.
			var got string
			testkit.Eventually(t, 5*time.Second, "v1 served after the restart", func() bool {
				body, err := get(s.Addrs()[0], "/version")
				got = body
				return err == nil
			})
			if got != "v1" {
				t.Errorf("/version after restart = %q", got)
			}
			if !tt.wantLoop {
				return
			}
			testkit.Eventually(t, 5*time.Second, "a crash loop", func() bool {
				st := s.Stats()
				return st.Restarts >= 3 && st.CrashLooping
			})
		})
	}
}

func TestResumeUnhealthy(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	cfg := testConfig(1)
	cfg.HealthTimeout = 500 * time.Millisecond
	s, _ := newServer(t, cfg)
	err := s.Resume(t.Context(), h.release("v1", "-unhealthy"))
	if err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("Resume() error = %v, want the failed health check", err)
	}
	if st := s.Stats(); !st.Running || st.Version != "v1" {
		t.Errorf("Stats() = %+v, want v1 still running under supervision", st)
	}
}

func TestResumeNothingDeployed(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, testConfig(1))
	if err := s.Resume(t.Context(), runners.Deployment{}); err != nil {
		t.Fatal(err)
	}
	if s.Addrs() != nil || s.Stats() != (Stats{}) {
		t.Errorf("Resume of nothing bound %v or started %+v", s.Addrs(), s.Stats())
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		flags       []string
		stopTimeout time.Duration
		minTook     time.Duration
	}{
		{name: "graceful"},
		{name: "ignores SIGTERM", flags: []string{"-ignore-term"}, stopTimeout: 300 * time.Millisecond, minTook: 300 * time.Millisecond},
		{name: "child in its group ignores SIGTERM", flags: []string{"-spawn", "trap '' TERM; sleep 30"}, stopTimeout: 300 * time.Millisecond, minTook: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			cfg := testConfig(2)
			if tt.stopTimeout > 0 {
				cfg.StopTimeout = tt.stopTimeout
			}
			s, _ := newServer(t, cfg)
			if err := s.Resume(t.Context(), h.release("v1", tt.flags...)); err != nil {
				t.Fatal(err)
			}
			addrs := s.Addrs()
			pid := s.Stats().PID
			var children []int
			if err := json.Unmarshal([]byte(mustGet(t, addrs[0], "/children")), &children); err != nil {
				t.Fatal(err)
			}
			for _, c := range children { // the trap is set once the shell ran it
				testkit.Eventually(t, 3*time.Second, "the child to ignore SIGTERM", func() bool { return ignoresTERM(c) })
			}
			start := time.Now()
			if err := s.Stop(t.Context(), runners.AgentShutdown); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < tt.minTook || took > cfg.StopTimeout+time.Second {
				t.Errorf("Stop took %s, want between %s and %s", took, tt.minTook, cfg.StopTimeout+time.Second)
			}
			if !gone(pid) {
				t.Errorf("app %d still exists after Stop", pid)
			}
			if !groupGone(t, pid) {
				t.Errorf("process group %d still has processes after Stop", pid)
			}
			for _, c := range children {
				if !gone(c) {
					t.Errorf("child %d still exists after Stop", c)
				}
			}
			for _, a := range addrs {
				l, err := net.Listen("tcp", a.String())
				if err != nil {
					t.Errorf("port not freed: %v", err)
					continue
				}
				l.Close()
			}
			if s.Addrs() != nil || s.Stats() != (Stats{}) {
				t.Errorf("after Stop: Addrs() = %v, Stats() = %+v", s.Addrs(), s.Stats())
			}
			if err := s.Stop(t.Context(), runners.AgentShutdown); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if err := s.Deploy(t.Context(), h.release("v2")); !errors.Is(err, errStopped) {
				t.Errorf("Deploy after Stop: %v, want %v", err, errStopped)
			}
		})
	}
}

func TestStopCutShortByContext(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	cfg := testConfig(1)
	cfg.StopTimeout = 10 * time.Second
	s, _ := newServer(t, cfg)
	if err := s.Resume(t.Context(), h.release("v1", "-ignore-term")); err != nil {
		t.Fatal(err)
	}
	pid := s.Stats().PID
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx, runners.AppRemoved); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Stop took %s with a 300ms context", took)
	}
	if !gone(pid) {
		t.Errorf("app %d still exists", pid)
	}
}

// A worker: no ports, no health path, a bare command found through PATH.
func TestWorker(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	s, _ := newServer(t, Config{Command: []string{"sleep", "30"}, SettleTime: 200 * time.Millisecond, StopTimeout: 3 * time.Second, CrashWindow: 200 * time.Millisecond})
	v1 := h.release("v1")
	if err := s.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	first := s.Stats()
	if !first.Running || s.Addrs() != nil {
		t.Fatalf("Stats() = %+v, Addrs() = %v", first, s.Addrs())
	}
	if err := s.Deploy(t.Context(), h.release("v2")); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); !st.Running || st.Version != "v2" || st.PID == first.PID {
		t.Errorf("Stats() after deploy = %+v", st)
	}
	if !gone(first.PID) {
		t.Errorf("old worker %d still runs", first.PID)
	}
}

func TestEnvironment(t *testing.T) {
	// Not parallel: t.Setenv. The agent's own socket variables must not reach the app.
	t.Setenv("LISTEN_FDS", "7")
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("SERVER_STARTER_PORT", "9=9")
	h := newHome(t)
	dir := filepath.Join(h.root, "releases", "env")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(1)
	cfg.Command = []string{"bin/app", "-convention", "auto"}
	cfg.Env = map[string]string{"TESTAPP_VERSION": "from-env"}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testapp, filepath.Join(dir, "bin", "app")); err != nil {
		t.Fatal(err)
	}
	s, _ := newServer(t, cfg)
	if err := s.Resume(t.Context(), runners.Deployment{Version: "env", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s.Addrs()[0], "/version"); got != "from-env" {
		t.Errorf("/version = %q, want the value from Config.Env", got)
	}
	var c struct {
		Convention string `json:"convention"`
		ListenFDs  string `json:"listen_fds"`
	}
	if err := json.Unmarshal([]byte(mustGet(t, s.Addrs()[0], "/conventions")), &c); err != nil {
		t.Fatal(err)
	}
	if c.Convention != "systemd" || c.ListenFDs != "2" {
		t.Errorf("conventions = %+v, want systemd with LISTEN_FDS=2", c)
	}
}

func TestOutputLogged(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	s, logs := newServer(t, testConfig(1))
	if err := s.Resume(t.Context(), h.release("v1", "-long-line", "10000")); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(t.Context(), runners.AppRemoved); err != nil {
		t.Fatal(err)
	}
	var sawStart, sawStopped bool
	long := 0
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Msg     string `json:"msg"`
			Level   string `json:"level"`
			Stream  string `json:"stream"`
			Partial bool   `json:"partial"`
			Version string `json:"version"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if len(rec.Msg) > maxLine {
			t.Errorf("logged line of %d bytes, bound is %d", len(rec.Msg), maxLine)
		}
		switch {
		case strings.HasPrefix(rec.Msg, "testapp v1 serving on 2 listeners") && rec.Stream == "stdout" && rec.Level == "INFO" && rec.Version == "v1":
			sawStart = true
		case rec.Msg == "testapp: stopped" && rec.Stream == "stdout":
			sawStopped = true
		case strings.Trim(rec.Msg, "x") == "":
			long += len(rec.Msg)
		}
	}
	if !sawStart || !sawStopped {
		t.Errorf("app output not logged with stream=stdout (start %v, stopped %v):\n%s", sawStart, sawStopped, logs)
	}
	if long != 10000 {
		t.Errorf("the long line logged as %d bytes in pieces, want 10000", long)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "minimal", cfg: Config{Command: []string{"./app"}}},
		{name: "full", cfg: Config{Command: []string{"./app", "-x"}, Ports: []int{8000, 8001}, HealthPath: "/health", Restart: "on-failure", StopSignal: syscall.SIGINT, HealthTimeout: time.Second}},
		{name: "no command", cfg: Config{}, wantErr: []string{"command is empty"}},
		{name: "empty program", cfg: Config{Command: []string{""}}, wantErr: []string{"command is empty"}},
		{name: "bad port", cfg: Config{Command: []string{"a"}, Ports: []int{70000}}, wantErr: []string{"port 70000 is not a number from 1 to 65535"}},
		{name: "duplicate port", cfg: Config{Command: []string{"a"}, Ports: []int{8000, 8000}}, wantErr: []string{"port 8000 is listed twice"}},
		{name: "relative health path", cfg: Config{Command: []string{"a"}, HealthPath: "health"}, wantErr: []string{`health_path "health" must start with "/"`}},
		{name: "bad restart", cfg: Config{Command: []string{"a"}, Restart: "sometimes"}, wantErr: []string{`restart "sometimes"`}},
		{
			name:    "every error at once",
			cfg:     Config{Ports: []int{-1}, StopTimeout: -time.Second},
			wantErr: []string{"command is empty", "port -1", "stop_timeout -1s is negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testkit.ExpectError(t, tt.cfg.Validate(), tt.wantErr...)
		})
	}
}

func TestDeployInvalidConfig(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	s, _ := newServer(t, Config{})
	if err := s.Deploy(t.Context(), h.release("v1")); err == nil || !strings.Contains(err.Error(), "command is empty") {
		t.Errorf("Deploy() = %v, want the config error", err)
	}
}
