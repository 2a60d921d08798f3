//go:build !linux

package server

import "syscall"

// sysProcAttr puts the child in its own process group, so that a stop reaches every
// process of the app.
func sysProcAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether any process is left in the process group.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) != syscall.ESRCH
}
