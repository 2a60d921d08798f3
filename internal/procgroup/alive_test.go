package procgroup

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestGroupAlive: a group is alive while a member runs, even after its
// leader has exited, and not once every member is gone.
func TestGroupAlive(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 >/dev/null 2>&1 & echo started")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if _, err := cmd.Output(); err != nil { // the leader exits at once
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	if !groupAlive(pgid) {
		t.Fatal("a group whose sleep still runs is reported dead")
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Fatal("a killed group is still reported alive after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
