//go:build linux

package procgroup

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAdoptChecksIdentityAndWatchesExit: Adopt refuses a start time that does
// not match, and an adopted process's exit closes Done through the pidfd.
func TestAdoptChecksIdentityAndWatchesExit(t *testing.T) {
	p, err := StartSurviving(exec.Command("/bin/sh", "-c", "echo hello; sleep 30"), Output{}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Signal(syscall.SIGKILL) })
	outFd, errFd := p.PipeFds()
	if outFd < 3 || errFd < 3 {
		t.Fatalf("PipeFds() = %d, %d", outFd, errFd)
	}
	st, err := StartTime(p.Pid())
	if err != nil || st == 0 {
		t.Fatalf("StartTime() = %d, %v", st, err)
	}
	if _, err := Adopt(p.Pid(), st+1, OutputSource{}, Output{}); !errors.Is(err, ErrNotSame) {
		t.Fatalf("Adopt with a wrong start time: %v, want ErrNotSame", err)
	}
	a, err := Adopt(p.Pid(), st, OutputSource{Fds: [2]int{outFd, errFd}}, Output{TailLines: 10})
	if err != nil {
		t.Fatal(err)
	}
	if a.Exited() {
		t.Fatal("adopted process reported exited while it runs")
	}
	p.Signal(syscall.SIGKILL)
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the adopted process's exit was not noticed")
	}
	a.Drain(syscall.SIGKILL, time.Second)
	a.Release()
}

// TestStopGroupKillsWhatIgnoresTERM: StopGroup escalates to SIGKILL for a
// group whose members ignore the stop signal.
func TestStopGroupKillsWhatIgnoresTERM(t *testing.T) {
	p, err := Start(exec.Command("/bin/sh", "-c", "trap '' TERM; sleep 30 & echo ready; wait"), Output{TailLines: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Signal(syscall.SIGKILL) })
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Tail(), "ready"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the shell never set its trap")
		}
	}
	if err := StopGroup(t.Context(), p.Pid(), syscall.SIGTERM, 300*time.Millisecond); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("StopGroup() = %v, want ErrStopTimeout", err)
	}
	if GroupAlive(p.Pid()) {
		t.Fatal("group alive after StopGroup")
	}
}
