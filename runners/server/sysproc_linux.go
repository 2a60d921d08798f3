package server

import "syscall"

// sysProcAttr adds nothing: a generation must outlive the agent's crash so that
// the agent's next life adopts it (adopt.go); it gets no death signal. procgroup
// adds the child's own process group. A planned stop stops it (Stop).
func sysProcAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
