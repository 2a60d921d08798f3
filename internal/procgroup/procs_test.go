//go:build linux

package procgroup

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestProcs finds this test process, in its process group, and a child
// started in a group of its own, which counts as ended once it is a zombie.
func TestProcs(t *testing.T) {
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := cmd.Process.Pid
	// Not reaped yet: once "true" exits it stays a zombie until Wait.
	var self, zombie *Proc
	for range 500 {
		ps, err := Procs()
		if err != nil {
			t.Fatal(err)
		}
		self, zombie = nil, nil
		for _, p := range ps {
			switch {
			case p.Pid == os.Getpid():
				self = &p
			case p.Pid == child && p.Ended():
				zombie = &p
			}
		}
		if zombie != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Wait()
	if self == nil || self.Pgrp != syscall.Getpgrp() || self.Ended() {
		t.Errorf("this process: %+v, want it alive in group %d", self, syscall.Getpgrp())
	}
	if zombie == nil || zombie.Pgrp != child {
		t.Errorf("child %d: %+v, want a zombie leading its own group", child, zombie)
	}
}
