//go:build !linux

package procgroup

import "errors"

// Procs lists the processes in /proc, which only Linux has.
func Procs() ([]Proc, error) {
	return nil, errors.ErrUnsupported
}
