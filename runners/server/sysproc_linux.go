package server

import "syscall"

// sysProcAttr asks the kernel to send the child sig if the agent dies without
// stopping it, so that a crashed agent leaves no app holding the ports. (Linux
// sends it when the thread that started the child ends; Go ends a thread only when
// a goroutine locked to it by runtime.LockOSThread exits without unlocking, which
// the agent does not do.) procgroup adds the child's own process group.
func sysProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: sig}
}
