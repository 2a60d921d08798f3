package procgroup

import "syscall"

// groupAlive reports whether a live process is left in the process group. Zombies do
// not count: the app's own children are reparented to init when it exits, and init
// in some containers never reaps them.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) == syscall.ESRCH {
		return false
	}
	alive := false
	err := eachProc(func(p Proc) bool {
		alive = p.Pgrp == pgid && !p.Ended()
		return !alive
	})
	return alive || err != nil
}
