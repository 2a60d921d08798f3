package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dewy-agent/dewy-agent/internal/procgroup"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunEnv(t *testing.T) {
	// The agent's own DEWY_* variables are not passed on: only the deploy's.
	t.Setenv("DEWY_TEST_INHERITED", "from-agent")
	agentDir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		env        Env
		wantDir    string
		wantValues []string
	}{
		{
			name: "release dir is the working directory",
			env: Env{
				App: "api", Version: "v1.2.0", PreviousVersion: "v1.1.0",
				ReleaseDir: t.TempDir(),
				Registry:   "s3://AKIAEXAMPLE:s3cr3t@ap-northeast-1/bucket/api?pre-release=true",
			},
			wantValues: []string{"api", "v1.2.0", "v1.1.0", "", "s3://ap-northeast-1/bucket/api?pre-release=true", ""},
		},
		{
			name:       "no release dir runs in the agent's directory",
			env:        Env{App: "web", Version: "v2.0.0", Registry: "img://ghcr.io/org/web"},
			wantDir:    agentDir,
			wantValues: []string{"web", "v2.0.0", "", "", "img://ghcr.io/org/web", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "env.txt")
			cmd := `printf '%s\n' "$DEWY_APP" "$DEWY_VERSION" "$DEWY_PREVIOUS_VERSION" "$DEWY_RELEASE_DIR" "$DEWY_REGISTRY" "$DEWY_TEST_INHERITED" "$(pwd -P)" > ` + out
			res, err := Run(t.Context(), "before_deploy", Hook{Command: cmd, Timeout: 10 * time.Second}, tt.env, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != 0 || res.TimedOut || res.Name != "before_deploy" {
				t.Errorf("result = %+v", res)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			want := append([]string(nil), tt.wantValues...)
			want[3] = tt.env.ReleaseDir
			dir := tt.wantDir
			if dir == "" {
				dir = tt.env.ReleaseDir
			}
			dir, err = filepath.EvalSymlinks(dir)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, dir)
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("hook saw\n%q\nwant\n%q", got, want)
			}
			if strings.Contains(string(b), "s3cr3t") || strings.Contains(string(b), "AKIAEXAMPLE") {
				t.Errorf("registry credentials reached the hook: %q", b)
			}
		})
	}
}

func TestRunFailure(t *testing.T) {
	tests := []struct {
		name     string
		hook     Hook
		env      Env
		wantErr  string
		wantCode int
		wantOut  string
	}{
		{name: "non-zero exit", hook: Hook{Command: "echo backup failed >&2; exit 3"}, wantErr: "before_deploy hook exited with status 3", wantCode: 3, wantOut: "backup failed"},
		{name: "command not found", hook: Hook{Command: "no-such-command-dewy"}, wantErr: "before_deploy hook exited with status 127", wantCode: 127, wantOut: "not found"},
		{name: "killed by a signal", hook: Hook{Command: "kill -KILL $$"}, wantErr: "before_deploy hook killed by signal killed", wantCode: -1},
		{name: "empty command", hook: Hook{Command: "  "}, wantErr: "before_deploy hook: no command", wantCode: -1},
		{name: "missing release dir", hook: Hook{Command: "true"}, env: Env{ReleaseDir: "/nonexistent/dewy/release"}, wantErr: "before_deploy hook: start:", wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(t.Context(), "before_deploy", tt.hook, tt.env, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if res.ExitCode != tt.wantCode {
				t.Errorf("exit code = %d, want %d", res.ExitCode, tt.wantCode)
			}
			if !strings.Contains(res.Output, tt.wantOut) {
				t.Errorf("output %q does not contain %q", res.Output, tt.wantOut)
			}
		})
	}
}

func TestRunContextAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	_, err := Run(ctx, "after_deploy", Hook{Command: "touch " + marker}, Env{}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the hook ran although the context was cancelled")
	}
}

// pidsOf waits for the hook to write its pids (one a line) to path.
func pidsOf(t *testing.T, path string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		fields := strings.Fields(string(b))
		if len(fields) >= n {
			var pids []int
			for _, f := range fields[:n] {
				p, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pid file %q: %v", b, err)
				}
				pids = append(pids, p)
			}
			return pids
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("hook did not write %d pids to %s", n, path)
	return nil
}

// alive reports whether a process that is not a zombie has the given pid or
// belongs to the process group pgid (pass 0 to skip either). A process that
// was just killed may take a moment to finish exiting, so alive waits up to a
// second for it to go.
func alive(t *testing.T, pid, pgid int) bool {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for livingNow(t, pid, pgid) {
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func livingNow(t *testing.T, pid, pgid int) bool {
	t.Helper()
	ps, err := procgroup.Procs()
	if err != nil {
		t.Skipf("no /proc to inspect processes: %v", err)
	}
	for _, p := range ps {
		if !p.Ended() && ((pid != 0 && p.Pid == pid) || (pgid != 0 && p.Pgrp == pgid)) {
			return true
		}
	}
	return false
}

func TestRunTimeoutKillsGroup(t *testing.T) {
	tests := []struct {
		name    string
		command string // %s is the pid file; the shell's pid comes first
		pids    int
	}{
		{name: "sleep", command: `echo $$ > %s; sleep 60`, pids: 1},
		{name: "background child waited for", command: `echo $$ > %[1]s; sleep 60 & echo $! >> %[1]s; wait`, pids: 2},
		{name: "ignores SIGTERM", command: `trap '' TERM; echo $$ > %[1]s; sleep 60 & echo $! >> %[1]s; wait; sleep 60`, pids: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidFile := filepath.Join(t.TempDir(), "pids")
			h := Hook{
				Command:   strings.ReplaceAll(tt.command, "%[1]s", pidFile),
				Timeout:   700 * time.Millisecond,
				KillGrace: 300 * time.Millisecond,
			}
			h.Command = strings.ReplaceAll(h.Command, "%s", pidFile)
			start := time.Now()
			res, err := Run(t.Context(), "before_deploy", h, Env{}, nil)
			took := time.Since(start)
			if !errors.Is(err, ErrTimedOut) {
				t.Fatalf("err = %v, want ErrTimedOut", err)
			}
			if want := "before_deploy hook timed out after 700ms"; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
			if !res.TimedOut || res.ExitCode != -1 {
				t.Errorf("result = %+v, want TimedOut and exit code -1", res)
			}
			if took > 5*time.Second {
				t.Errorf("Run took %s; the hook was not stopped at its timeout", took)
			}
			allGone(t, pidsOf(t, pidFile, tt.pids))
		})
	}
}

func TestRunCancelKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		h := Hook{Command: `echo $$ > ` + pidFile + `; sleep 60 & echo $! >> ` + pidFile + `; wait`, KillGrace: 300 * time.Millisecond}
		res, err := Run(ctx, "after_deploy", h, Env{}, nil)
		done <- outcome{res, err}
	}()
	pids := pidsOf(t, pidFile, 2)
	cancel()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
	if !errors.Is(o.err, context.Canceled) || !strings.Contains(o.err.Error(), "after_deploy hook stopped") {
		t.Errorf("err = %v, want an after_deploy hook stopped error wrapping context.Canceled", o.err)
	}
	if o.res.TimedOut {
		t.Error("a cancelled hook is reported as timed out")
	}
	allGone(t, pids)
}

// allGone fails the test when a process of pids, or of the group pids[0]
// leads, is still running.
func allGone(t *testing.T, pids []int) {
	t.Helper()
	for _, p := range pids {
		if alive(t, p, 0) {
			t.Errorf("process %d is still running", p)
		}
	}
	if alive(t, 0, pids[0]) {
		t.Errorf("process group %d still has live members", pids[0])
	}
}

func TestRunLeftoversStopped(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	h := Hook{Command: `echo $$ > ` + pidFile + `; sleep 60 & echo $! >> ` + pidFile + `; echo started`, KillGrace: 300 * time.Millisecond}
	res, err := Run(t.Context(), "after_deploy", h, Env{}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Output != "started" {
		t.Errorf("output = %q", res.Output)
	}
	pids := pidsOf(t, pidFile, 2)
	if alive(t, pids[1], 0) {
		t.Errorf("background process %d outlived its hook", pids[1])
	}
}

func TestRunLogsOutput(t *testing.T) {
	logger, logs := testkit.NewLogger()
	cmd := `echo first; echo oops >&2; printf 'no newline'`
	res, err := Run(t.Context(), "after_deploy", Hook{Command: cmd}, Env{App: "api"}, logger)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	type line struct{ stream, text string }
	var got []line
	for _, r := range logs.Records(t) {
		if r["msg"] != "hook output" {
			continue
		}
		if r["level"] != "INFO" || r["hook"] != "after_deploy" {
			t.Errorf("output record %v: want level INFO and hook after_deploy", r)
		}
		got = append(got, line{r["stream"].(string), r["line"].(string)})
	}
	want := map[line]bool{{"stdout", "first"}: true, {"stderr", "oops"}: true, {"stdout", "no newline"}: true}
	if len(got) != len(want) {
		t.Fatalf("logged lines = %v, want %v", got, want)
	}
	for _, l := range got {
		if !want[l] {
			t.Errorf("unexpected logged line %v", l)
		}
	}
	for _, s := range []string{"first", "oops", "no newline"} {
		if !strings.Contains(res.Output, s) {
			t.Errorf("output %q lacks %q", res.Output, s)
		}
	}
}

func TestRunOutputTailBounded(t *testing.T) {
	tests := []struct {
		name     string
		command  string
		wantLast string
	}{
		{name: "many short lines", command: "seq 1 5000", wantLast: "5000"},
		{name: "long lines", command: `i=0; while [ $i -lt 40 ]; do i=$((i+1)); printf "%03d-%0200d\n" $i 0; done`, wantLast: "040-"},
		{name: "one huge line", command: `head -c 100000 /dev/zero | tr '\0' x; echo; echo end`, wantLast: "end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(t.Context(), "after_deploy", Hook{Command: tt.command}, Env{}, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(res.Output) > TailBytes {
				t.Errorf("output is %d bytes, more than %d", len(res.Output), TailBytes)
			}
			lines := strings.Split(res.Output, "\n")
			if len(lines) > TailLines {
				t.Errorf("output has %d lines, more than %d", len(lines), TailLines)
			}
			if !strings.HasPrefix(lines[len(lines)-1], tt.wantLast) {
				t.Errorf("last line = %.40q, want it to start with %q", lines[len(lines)-1], tt.wantLast)
			}
			if len(res.Output) == 0 {
				t.Error("output is empty")
			}
		})
	}
}

func TestRunLogsBoundedLines(t *testing.T) {
	logger, logs := testkit.NewLogger()
	res, err := Run(t.Context(), "after_deploy", Hook{Command: "seq 1 3000"}, Env{}, logger)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines, notices := 0, 0
	for _, r := range logs.Records(t) {
		switch r["msg"] {
		case "hook output":
			lines++
		case "hook output goes on; the rest is not logged":
			notices++
		}
	}
	if lines != MaxLoggedLines || notices != 1 {
		t.Errorf("logged %d lines and %d notices, want %d and 1", lines, notices, MaxLoggedLines)
	}
	if !strings.HasSuffix(res.Output, "\n3000") {
		t.Errorf("the tail does not end with the last line: %q", res.Output)
	}
}

func TestStripUserInfo(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "no credentials", in: "ghr://linyows/myapp?pre-release=true", want: "ghr://linyows/myapp?pre-release=true"},
		{name: "user and password", in: "s3://key:secret@ap-northeast-1/bucket", want: "s3://ap-northeast-1/bucket"},
		{name: "user only", in: "grpc://token@registry:9000", want: "grpc://registry:9000"},
		{name: "unparseable with credentials", in: "s3://key:sec ret@%zz/bucket", want: ""},
		{name: "file", in: "file:///srv/releases/app", want: "file:///srv/releases/app"},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StripUserInfo(tt.in); got != tt.want {
				t.Errorf("StripUserInfo(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
