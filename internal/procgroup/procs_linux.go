package procgroup

import (
	"bytes"
	"os"
	"strconv"
)

// Procs lists the processes in /proc. A process that ends while it is read
// is left out.
func Procs() ([]Proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var ps []Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 3 {
			continue
		}
		pgrp, err := strconv.Atoi(string(f[2]))
		if err != nil {
			continue
		}
		ps = append(ps, Proc{Pid: pid, Pgrp: pgrp, State: string(f[0])})
	}
	return ps, nil
}
