//go:build !linux

package procgroup

import "syscall"

// groupAlive reports whether any process is left in the process group.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) != syscall.ESRCH
}
