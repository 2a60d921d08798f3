package procgroup

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func TestOutputLines(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name string
		out  Output
		// want is the logged (msg, line) pairs of stdout, in order.
		want []string
		tail string
	}{
		{
			name: "line as message, long line in pieces",
			out:  Output{MaxLineBytes: 40, SplitLongLines: true, TailLines: 10},
			want: []string{"first", long[:40], long[:40], long[:20], "last"},
			tail: "first\n" + long[:40] + "\n" + long[:40] + "\n" + long[:20] + "\nlast",
		},
		{
			name: "fixed message, long line cut",
			out:  Output{Message: "hook output", MaxLineBytes: 40, TailLines: 2},
			want: []string{"first", long[:40] + truncated, "last"},
			tail: long[:40] + truncated + "\nlast",
		},
		{
			name: "at most MaxLines logged, the tail kept",
			out:  Output{Message: "out", MaxLines: 2, TailLines: 1},
			want: []string{"first", long},
			tail: "last",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := testkit.NewLogger()
			tt.out.Logger = logger
			p, err := Start(exec.Command("/bin/sh", "-c", "echo first; echo "+long+"; printf last"), tt.out)
			if err != nil {
				t.Fatal(err)
			}
			p.Drain(syscall.SIGKILL, time.Second)
			var got []string
			warned := false
			for _, r := range logs.Records(t) {
				if r["level"] == "WARN" {
					warned = true
					continue
				}
				if r["stream"] != "stdout" {
					t.Errorf("record %v: want stream stdout", r)
				}
				if tt.out.Message == "" {
					got = append(got, r["msg"].(string))
				} else {
					got = append(got, r["line"].(string))
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
			if warned != (tt.out.MaxLines > 0) {
				t.Errorf("warned about the log limit: %v, want %v", warned, tt.out.MaxLines > 0)
			}
			if got := p.Tail(); got != tt.tail {
				t.Errorf("tail = %q, want %q", got, tt.tail)
			}
			if ps := p.State(); ps == nil || !ps.Success() {
				t.Errorf("state = %v, want a clean exit", ps)
			}
		})
	}
}

func TestTailCutsAtLineBoundary(t *testing.T) {
	tl := &Tail{MaxLines: 20, MaxBytes: 2 << 10}
	for i := range 15 {
		tl.Add(strings.Repeat(strconv.Itoa(i%10), 300))
	}
	got := tl.String()
	if len(got) > tl.MaxBytes {
		t.Fatalf("tail is %d bytes", len(got))
	}
	for l := range strings.SplitSeq(got, "\n") {
		if len(l) != 300 {
			t.Errorf("tail holds a partial line of %d bytes", len(l))
		}
	}
	if !strings.HasSuffix(got, strings.Repeat("4", 300)) {
		t.Error("tail does not end with the last line")
	}
}

// TestStopKillsTheGroup: a shell that ignores the stop signal, and a child it
// started in the background, are both gone after Stop.
func TestStopKillsTheGroup(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		wantErr error
	}{
		{name: "stops on the signal", script: "sleep 60 & echo $!; wait", wantErr: nil},
		{name: "killed after the wait", script: "trap '' TERM; sleep 60 & echo $!; while :; do wait; done", wantErr: ErrStopTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(exec.Command("/bin/sh", "-c", tt.script), Output{TailLines: 1})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for p.Tail() == "" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			child, err := strconv.Atoi(p.Tail())
			if err != nil {
				t.Fatalf("child pid %q: %v", p.Tail(), err)
			}
			start := time.Now()
			err = p.Stop(t.Context(), syscall.SIGTERM, 300*time.Millisecond)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Stop = %v, want %v", err, tt.wantErr)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Stop took %v", d)
			}
			p.Drain(syscall.SIGKILL, time.Second)
			if p.GroupAlive() {
				t.Error("the group is alive after Stop")
			}
			if err := syscall.Kill(child, 0); err == nil && alive(child) {
				t.Errorf("background child %d outlived Stop", child)
			}
		})
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && !bytes.HasPrefix(bytes.TrimSpace(b[i+1:]), []byte("Z"))
}

func TestStartRefusesTakenOutput(t *testing.T) {
	cmd := exec.Command("/bin/true")
	cmd.Stdout = &bytes.Buffer{}
	if _, err := Start(cmd, Output{}); err == nil {
		t.Fatal("Start with Stdout set succeeded")
	}
}
