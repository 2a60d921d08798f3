package procgroup

// Proc is one process as /proc/<pid>/stat describes it.
type Proc struct {
	Pid  int
	Pgrp int // its process group
	// State is the kernel's one-letter state: R, S, D, T, Z (zombie), X
	// (dead), ...
	State string
}

// Ended reports whether the process has exited and waits only to be reaped
// (a zombie) or to vanish.
func (p Proc) Ended() bool { return p.State == "Z" || p.State == "X" }
