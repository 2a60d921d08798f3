//go:build !linux

package procgroup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// errUnsupported: surviving and adopting processes needs Linux (pidfd).
var errUnsupported = errors.New("procgroup: adopting processes needs Linux")

// ErrNotSame is returned by Adopt when the pid is not the recorded process.
var ErrNotSame = errors.New("not the recorded process")

// StartSurviving is Start on systems without pidfds.
func StartSurviving(cmd *exec.Cmd, out Output, dir string) (*Process, error) { return Start(cmd, out) }

// OutputFiles are none on this system: output goes to pipes.
func (p *Process) OutputFiles() (stdout, stderr string) { return "", "" }

func reopenPipe(f *os.File) (*os.File, error) { return nil, errUnsupported }

// StartTime is not known on this system.
func StartTime(pid int) (uint64, error) { return 0, errUnsupported }

// Adopted is a process of an earlier agent life.
type Adopted struct{ *Process }

// Adopt is not supported on this system.
func Adopt(pid int, startTime uint64, src OutputSource, out Output) (*Adopted, error) {
	return nil, errUnsupported
}

// TakeFd is not supported on this system.
func (a *Adopted) TakeFd(fd int, pollable bool) (*os.File, error) { return nil, errUnsupported }

// Release does nothing on this system.
func (a *Adopted) Release() {}

// StopGroup stops a process group: sig, a wait, SIGKILL.
func StopGroup(ctx context.Context, pgid int, sig syscall.Signal, timeout time.Duration) error {
	_ = syscall.Kill(-pgid, sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// GroupAlive reports whether a live process is left in the group pgid.
func GroupAlive(pgid int) bool { return groupAlive(pgid) }

// PlainFile wraps fd as a file.
func PlainFile(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }
