package testkit

import (
	"fmt"
	"os"
	"testing"
)

// ProgramTB lets a program outside the tests (a benchmark under bench/) use
// the fakes that take a testing.TB, such as fakegithub.New: it keeps the
// cleanups and the first failure instead of ending a test. Only Helper,
// Cleanup, Fatalf and Errorf are implemented; the other testing.TB methods
// are not used by the fakes and panic.
type ProgramTB struct {
	testing.TB
	cleanups []func()
	err      error
}

func (p *ProgramTB) Helper()          {}
func (p *ProgramTB) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }

// Fatalf records the failure; unlike in a test it returns, so check Err.
func (p *ProgramTB) Fatalf(format string, args ...any) { p.Errorf(format, args...) }

// Errorf records the failure if it is the first one.
func (p *ProgramTB) Errorf(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(format, args...)
	}
}

// Err is the first failure recorded, or nil.
func (p *ProgramTB) Err() error { return p.err }

// Close runs the cleanups, the last registered first.
func (p *ProgramTB) Close() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
	p.cleanups = nil
}

// WorkDir makes a temporary folder for a program outside the tests (a demo):
// done removes it, unless keep, and then say is told where it stays.
func WorkDir(pattern string, keep bool, say func(format string, args ...any)) (dir string, done func(), err error) {
	dir, err = os.MkdirTemp("", pattern)
	if err != nil {
		return "", nil, err
	}
	if keep {
		say("demo folder: %s (kept)", dir)
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
