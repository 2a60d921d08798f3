package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/fdstore"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners"
)

// The tests here kill a real agent: the test binary started again as a
// helper process (helperAgentEnv) that runs a server runner, resumes a
// release and waits to be killed with SIGKILL. The test's own runner then
// plays the restarted agent.

// helperAgentEnv carries a helperSpec to the test binary started as an agent.
const helperAgentEnv = "DEWY_SERVER_TEST_AGENT"

// helperSpec is what the helper agent runs.
type helperSpec struct {
	Cfg     Config
	AppDir  string
	Version string
	Dir     string
}

// runHelperAgent runs the helper agent when the test binary was started as
// one, and never returns then. It returns false otherwise.
func runHelperAgent() bool {
	raw := os.Getenv(helperAgentEnv)
	if raw == "" {
		return false
	}
	var spec helperSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "helper agent:", err)
		os.Exit(2)
	}
	s := New(spec.Cfg, runners.Options{Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil)), AppDir: spec.AppDir, FDStore: fdstore.FromEnv()})
	if err := s.Resume(context.Background(), runners.Deployment{Version: spec.Version, Dir: spec.Dir}); err != nil {
		fmt.Fprintln(os.Stderr, "helper agent: resume:", err)
		os.Exit(2)
	}
	fmt.Println("ready", s.Addrs()[0])
	select {} // until killed
}

// helperAgent is a running helper agent.
type helperAgent struct {
	cmd  *exec.Cmd
	addr net.Addr
	logs *testkit.LogBuffer
}

// startHelperAgent starts the test binary as an agent that resumes d with
// cfg in appDir, and waits until it serves.
func startHelperAgent(t *testing.T, cfg Config, appDir string, d runners.Deployment, tweak ...func(*exec.Cmd)) *helperAgent {
	t.Helper()
	spec, err := json.Marshal(helperSpec{Cfg: cfg, AppDir: appDir, Version: d.Version, Dir: d.Dir})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LogBuffer{}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperAgentEnv+"="+string(spec))
	cmd.Stderr = logs
	for _, f := range tweak {
		f(cmd)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helperAgent{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		h.kill()
		if t.Failed() {
			t.Logf("helper agent log:\n%s", logs)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		t.Fatalf("helper agent did not get ready: %q, %v\n%s", line, err, logs)
	}
	h.addr, err = net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// kill ends the helper agent with SIGKILL, as a crash would.
func (h *helperAgent) kill() {
	if h.cmd.ProcessState == nil {
		_ = h.cmd.Process.Signal(syscall.SIGKILL)
		_ = h.cmd.Wait()
	}
}

// getInt fetches path from addr and reads the answer as a number.
func getInt(t *testing.T, addr net.Addr, path string) int {
	t.Helper()
	n, err := strconv.Atoi(mustGet(t, addr, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return n
}

// TestChattyAppSurvivesAgentKill: an app that writes 2 MB a second to stdout
// goes on writing and serving while the agent is dead (a pipe would have
// blocked it after 64 KiB), and the next agent adopts it and logs both what
// it wrote meanwhile and its later lines; its output files are removed once
// it is stopped.
func TestChattyAppSurvivesAgentKill(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	appDir := t.TempDir()
	cfg := testConfig(1)
	v1 := h.release("v1", "-chatty", "2000")
	agent := startHelperAgent(t, cfg, appDir, v1)
	addr := agent.addr
	pid := mustGet(t, addr, "/pid")
	// Long enough for the agent to have read (and saved an offset) past the
	// file's start.
	testkit.Eventually(t, 20*time.Second, "the app to write 600 lines", func() bool {
		return getInt(t, addr, "/written") >= 600
	})
	agent.kill()

	// More than 1 MiB (1,100 lines of 1,000 bytes) written with no agent.
	w0 := getInt(t, addr, "/written")
	testkit.Eventually(t, 20*time.Second, "the app to write 1.1 MB with no agent reading", func() bool {
		return getInt(t, addr, "/written") >= w0+1100
	})
	if got := mustGet(t, addr, "/pid"); got != pid {
		t.Fatalf("pid %s answers after the agent's death, want %s", got, pid)
	}
	meanwhile := fmt.Sprintf("chatty %09d ", w0+1000)
	resumeAt := savedChattyLine(t, appDir)

	logs := &testkit.LogBuffer{}
	second := New(cfg, runners.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), AppDir: appDir})
	t.Cleanup(func() { second.Stop(context.Background(), runners.AppRemoved) })
	if err := second.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	if st := second.Stats(); strconv.Itoa(st.PID) != pid {
		t.Fatalf("Stats() = %+v, want the adopted pid %s", st, pid)
	}
	// Past 3 MB in the file, so that what the next agent read is freed.
	testkit.Eventually(t, 20*time.Second, "the app to write 3.3 MB", func() bool {
		return getInt(t, addr, "/written") >= 3300
	})
	later := fmt.Sprintf("chatty %09d ", getInt(t, addr, "/written")+200)
	testkit.Eventually(t, 20*time.Second, "the new agent to log a line written after it adopted the app", func() bool {
		return strings.Contains(logs.String(), later)
	})
	if n := strings.Count(logs.String(), meanwhile); n != 1 {
		t.Errorf("the line %q, written while no agent ran, was logged %d times by the next agent, want once", meanwhile, n)
	}
	// The next agent reads on from the offset the dead one saved, not from
	// the file's start.
	if first := firstChattyLine(logs.String()); first != resumeAt {
		t.Errorf("the next agent logged from line %d, want from line %d, the first at the offset the killed agent saved", first, resumeAt)
	}
	// What was read is punched out of the file: its blocks on disk stay far
	// below its apparent size.
	outs, _ := filepath.Glob(filepath.Join(appDir, "output", "*"))
	checked := 0
	for _, out := range outs {
		var st syscall.Stat_t
		if strings.HasSuffix(out, ".offset") || syscall.Stat(out, &st) != nil || st.Size < 2<<20 {
			continue // stderr, quiet
		}
		checked++
		if used := st.Blocks * 512; used > st.Size/2 {
			t.Errorf("%s: %d bytes on disk for %d written: read blocks are not freed", filepath.Base(out), used, st.Size)
		}
	}
	if checked == 0 {
		t.Errorf("no output file of 2 MiB or more in %v", outs)
	}
	if err := second.Stop(t.Context(), runners.AppRemoved); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(filepath.Join(appDir, "output"))
	if len(left) != 0 {
		t.Errorf("output files left after the app was stopped: %v", left)
	}
}

// TestProxyAppSurvivesAgentKill: in proxy mode the public socket outlives the
// agent (the app holds a copy), so while the agent is dead connections wait
// in its queue; the next agent takes the socket back, adopts the app with its
// private listener, and proxies on. Under load, at most the connections open
// through the dead proxy fail.
func TestProxyAppSurvivesAgentKill(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	appDir := t.TempDir()
	cfg := testConfig(1)
	cfg.Proxy = true
	v1 := h.release("v1")
	agent := startHelperAgent(t, cfg, appDir, v1)
	addr := agent.addr
	pid := mustGet(t, addr, "/pid")

	const workers = 4
	load := testkit.StartLoad("http://"+loopback(addr)+"/version", testkit.LoadOptions{Workers: workers, KeepAlive: testkit.KeepAliveHalf, Timeout: 20 * time.Second})
	testkit.Eventually(t, 10*time.Second, "load through the proxy", func() bool { n, _ := load.Counts(); return n > 50 })
	agent.kill()
	// While no agent runs, a new connection is queued, not refused.
	queued := make(chan error, 1)
	go func() {
		_, err := testkit.Get(&http.Client{Timeout: 30 * time.Second}, "http://"+loopback(addr)+"/pid")
		queued <- err
	}()

	logs := &testkit.LogBuffer{}
	second := New(cfg, runners.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), AppDir: appDir})
	t.Cleanup(func() { second.Stop(context.Background(), runners.AppRemoved) })
	if err := second.Resume(t.Context(), v1); err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	if st := second.Stats(); strconv.Itoa(st.PID) != pid {
		t.Fatalf("Stats() = %+v, want the adopted pid %s", st, pid)
	}
	if err := <-queued; err != nil {
		t.Errorf("a connection made while the agent was dead: %v", err)
	}
	sent, _ := load.Counts()
	testkit.Eventually(t, 10*time.Second, "load through the new agent's proxy", func() bool { n, _ := load.Counts(); return n > sent+50 })
	res := load.Stop()
	t.Logf("requests: %d sent, %d failed; %v", res.Sent, res.Failed, res.Errors)
	if res.Failed > workers {
		t.Errorf("%d requests failed, want at most the %d in flight at the kill: %v", res.Failed, workers, res.Errors)
	}
	if got := mustGet(t, addr, "/pid"); got != pid {
		t.Errorf("pid %s answers through the proxy, want the adopted %s", got, pid)
	}
}

// TestSocketsKeptInSystemdStore: under systemd (NOTIFY_SOCKET) the runner
// sends its listening socket with FDSTORE=1 and FDNAME=<app>/<port>; after
// the agent is killed, the next agent, started the way systemd starts it
// (the stored socket at fd 3, LISTEN_FDS, LISTEN_FDNAMES, its own
// LISTEN_PID), takes the socket from there, adopts the app and serves on the
// same port. A stop that ends the app removes the socket from the store.
func TestSocketsKeptInSystemdStore(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	appDir := filepath.Join(t.TempDir(), "web")
	cfg := testConfig(1)
	v1 := h.release("v1")
	notify := testkit.ListenNotify(t)
	withNotify := func(c *exec.Cmd) { c.Env = append(c.Env, "NOTIFY_SOCKET="+notify.Path) }

	first := startHelperAgent(t, cfg, appDir, v1, withNotify)
	msg, fds, _ := notify.Next(t, "FDSTORE=1")
	if !strings.Contains(msg, "FDNAME=web/any0\n") || len(fds) != 1 {
		t.Fatalf("store notification %q with %d descriptors, want FDNAME=web/any0 and 1", msg, len(fds))
	}
	stored := fds[0]
	defer stored.Close()
	if sa, err := syscall.Getsockname(int(stored.Fd())); err != nil || sockaddrTCP(sa).(*net.TCPAddr).Port != first.addr.(*net.TCPAddr).Port {
		t.Fatalf("the stored descriptor is not the port's socket: %v, %v", sa, err)
	}
	pid := mustGet(t, first.addr, "/pid")
	first.kill()

	second := startHelperAgent(t, cfg, appDir, v1, withNotify, func(c *exec.Cmd) {
		// As systemd starts a service with a descriptor store: LISTEN_PID is
		// the agent's own pid, set by a shell that then execs it.
		c.Args = append([]string{"sh", "-c", shim, "sh"}, c.Args...)
		c.Path = "/bin/sh"
		c.ExtraFiles = []*os.File{stored}
		c.Env = append(c.Env, "LISTEN_FDS=1", "LISTEN_FDNAMES=web/any0")
	})
	if second.addr.String() != first.addr.String() {
		t.Errorf("the next agent serves %s, want %s", second.addr, first.addr)
	}
	testkit.Eventually(t, 10*time.Second, "the next agent to log the restored sockets", func() bool {
		return strings.Contains(second.logs.String(), "listening sockets restored from the service manager's descriptor store")
	})
	if got := mustGet(t, second.addr, "/pid"); got != pid {
		t.Errorf("pid %s answers, want the adopted %s", got, pid)
	}
	second.kill()

	// An agent upgrade keeps the sockets stored: the next life needs them.
	upgraded := New(cfg, runners.Options{Logger: slog.New(slog.DiscardHandler), AppDir: appDir, FDStore: fdstore.Open(notify.Path)})
	if err := upgraded.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	notifyMark(t, notify) // what the agents sent so far (a resume re-stores)
	if err := upgraded.Stop(t.Context(), runners.AgentUpgrade); err != nil {
		t.Fatal(err)
	}
	if before := notifyMark(t, notify); slices.ContainsFunc(before, func(m string) bool { return strings.Contains(m, "FDSTOREREMOVE=1") }) {
		t.Errorf("an agent-upgrade stop removed stored sockets: %q", before)
	}

	// Removing the app drops them.
	third := New(cfg, runners.Options{Logger: slog.New(slog.DiscardHandler), AppDir: appDir, FDStore: fdstore.Open(notify.Path)})
	t.Cleanup(func() { third.Stop(context.Background(), runners.AppRemoved) })
	if err := third.Resume(t.Context(), v1); err != nil {
		t.Fatal(err)
	}
	if err := third.Stop(t.Context(), runners.AppRemoved); err != nil {
		t.Fatal(err)
	}
	if msg, _, _ := notify.Next(t, "FDSTOREREMOVE=1"); !strings.Contains(msg, "FDNAME=web/any0\n") {
		t.Errorf("removal %q does not name web/any0", msg)
	}
}

// notifyMark sends a marker to the fake notify socket and returns the
// messages that came before it and were not read yet.
func notifyMark(t *testing.T, n *testkit.NotifySocket) []string {
	t.Helper()
	c, err := net.Dial("unixgram", n.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("TEST_MARKER=1")); err != nil {
		t.Fatal(err)
	}
	_, _, before := n.Next(t, "TEST_MARKER=1")
	return before
}

// firstChattyLine is the lowest line number of -chatty output in logs, or
// -1 when there is none.
func firstChattyLine(logs string) int {
	first := -1
	for rest := logs; ; {
		i := strings.Index(rest, "chatty ")
		if i < 0 || len(rest) < i+16 {
			return first
		}
		if n, err := strconv.Atoi(rest[i+7 : i+16]); err == nil && (first < 0 || n < first) {
			first = n
		}
		rest = rest[i+16:]
	}
}

// savedChattyLine is the number of the first whole -chatty line at or after
// the read offset saved for the app's stdout file in appDir.
func savedChattyLine(t *testing.T, appDir string) int {
	t.Helper()
	offs, _ := filepath.Glob(filepath.Join(appDir, "output", "*.stdout.offset"))
	if len(offs) != 1 {
		t.Fatalf("stdout offset files: %v, want one", offs)
	}
	b, err := os.ReadFile(offs[0])
	if err != nil {
		t.Fatal(err)
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if len(b) == 0 {
		off, err = 0, nil // none saved yet
	}
	if err != nil {
		t.Fatalf("offset file %q: %v", b, err)
	}
	f, err := os.Open(strings.TrimSuffix(offs[0], ".offset"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, off)
	text := string(buf[:n])
	if !strings.HasPrefix(text, "chatty ") {
		i := strings.Index(text, "\nchatty ")
		if i < 0 {
			t.Fatalf("no whole line after offset %d: %q", off, text)
		}
		text = text[i+1:]
	}
	return firstChattyLine(text)
}
