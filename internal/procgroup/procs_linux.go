package procgroup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
)

// Procs lists the processes in /proc. A process that ends while it is read
// is left out.
func Procs() ([]Proc, error) {
	var ps []Proc
	err := eachProc(func(p Proc) bool {
		ps = append(ps, p)
		return true
	})
	return ps, err
}

// eachProc calls yield for each process in /proc until it returns false,
// so a caller looking for one process reads no more stat files than it needs.
func eachProc(yield func(Proc) bool) error {
	d, err := os.Open("/proc")
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		if len(names) == 0 {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		for _, name := range names {
			p, ok := readProc(name)
			if ok && !yield(p) {
				return nil
			}
		}
	}
}

// readProc reads /proc/<name>/stat; ok is false for a name that is not a
// pid or a process that ended meanwhile.
func readProc(name string) (p Proc, ok bool) {
	pid, err := strconv.Atoi(name)
	if err != nil {
		return Proc{}, false
	}
	stat, err := os.ReadFile("/proc/" + name + "/stat")
	if err != nil {
		return Proc{}, false // gone meanwhile
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Proc{}, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 3 {
		return Proc{}, false
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return Proc{}, false
	}
	return Proc{Pid: pid, Pgrp: pgrp, State: string(f[0])}, true
}
