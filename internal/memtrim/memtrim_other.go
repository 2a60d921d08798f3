//go:build !linux

package memtrim

import (
	"errors"
	"runtime/debug"
)

// Trim returns the heap's free pages to the operating system; paging out
// the executable's mappings is Linux only.
func Trim() (Result, error) {
	debug.FreeOSMemory()
	return Result{}, nil
}

// RSS is not measured outside Linux.
func RSS() (int64, error) { return 0, errors.ErrUnsupported }
