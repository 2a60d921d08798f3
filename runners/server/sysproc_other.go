//go:build !linux

package server

import "syscall"

// sysProcAttr has nothing to add off Linux; procgroup adds the child's own
// process group.
func sysProcAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
