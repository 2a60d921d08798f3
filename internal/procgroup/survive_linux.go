package procgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Surviving processes: a child started with StartSurviving outlives the agent
// (no death signal). Its output goes to files in a directory the agent names
// (fileout_linux.go), so it never blocks on output nobody reads while no agent
// runs; without a directory it goes to pipes of which the child holds a second
// read end, so a write after the agent died does not kill it with SIGPIPE (but
// blocks once the pipe is full). A later agent takes it back with Adopt: it
// opens a pidfd, checks the process is the one recorded (its start time),
// tails its output files from where the last agent stopped (or takes its pipes
// back with pidfd_getfd) and watches the pidfd for its exit.

// StartSurviving is Start for a child that must outlive the agent. With dir,
// the child's stdout and stderr go to two new files in dir (Process.OutputFiles
// names them), tailed and logged as out says. Without, it adds a copy of the
// read ends of the child's stdout and stderr pipes to cmd.ExtraFiles (the
// child never reads them; they only keep the pipes open); Process.PipeFds
// tells their numbers in the child. cmd.SysProcAttr must not set Pdeathsig.
func StartSurviving(cmd *exec.Cmd, out Output, dir string) (*Process, error) {
	if dir != "" {
		return startToFiles(cmd, out, dir)
	}
	return start(cmd, out, true)
}

// reopenPipe opens a new file description of the pipe f reads from, so that
// the child's copy does not share f's non-blocking mode.
func reopenPipe(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd uintptr
	if err := rc.Control(func(s uintptr) { fd = s }); err != nil {
		return nil, err
	}
	return os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(fd)), os.O_RDONLY, 0)
}

// StartTime is the process's start time, in clock ticks since boot (field 22
// of /proc/<pid>/stat). Together with the pid it names one process for good.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	// After comm: state(3) ... starttime(22): index 22-3 = 19.
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}

// ErrNotSame is returned by Adopt when the pid now belongs to another process
// (or to none): the recorded one is gone.
var ErrNotSame = errors.New("not the recorded process")

// Adopted is a process of an earlier agent life, taken back by Adopt.
type Adopted struct {
	*Process
	pidfd int
}

// Adopt takes back the process pid that started at startTime (see StartTime):
// it opens a pidfd and checks the start time after that, so the pidfd is known
// to name that very process. Its output is read from src and logged as out
// says: output files from the offset the last reader saved, pipes by taking
// them back. Done is closed when the process exits; its exit status is
// unknown (State is nil): it is not the agent's child.
func Adopt(pid int, startTime uint64, src OutputSource, out Output) (*Adopted, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, ErrNotSame
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	if st, err := StartTime(pid); err != nil || st != startTime {
		unix.Close(pidfd)
		return nil, ErrNotSame
	}
	a := &Adopted{pidfd: pidfd}
	p := &Process{pid: pid, done: make(chan struct{}), pipeFds: [2]int{-1, -1}, tail: &Tail{MaxLines: out.TailLines, MaxBytes: out.TailBytes}}
	a.Process = p
	if src.Files != [2]string{} {
		if err := p.tailFiles(out, src.Files[:]); err != nil {
			newLineWriter(out, p.tail, pid).log.Warn("output not read", "err", err)
		}
	} else {
		lw := newLineWriter(out, p.tail, pid)
		for i, fd := range src.Fds {
			if fd < 3 {
				continue
			}
			f, err := a.TakeFd(fd, true)
			if err != nil {
				continue // the output is lost, the process is still ours
			}
			p.pipes = append(p.pipes, f)
			stream := [2]string{"stdout", "stderr"}[i]
			p.readers.Go(func() { lw.pump(f, stream) })
		}
	}
	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, unix.EINTR) {
				break
			}
		}
		close(p.done)
	}()
	return a, nil
}

// TakeFd duplicates the process's descriptor fd into the agent
// (pidfd_getfd). The copy shares the child's file description; with pollable,
// it is made non-blocking and handed to Go's poller (for pipes the agent
// reads); without, it is left blocking as the child has it (for listening
// sockets handed on to children).
func (a *Adopted) TakeFd(fd int, pollable bool) (*os.File, error) {
	nfd, err := unix.PidfdGetfd(a.pidfd, fd, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_getfd %d of %d: %w", fd, a.pid, err)
	}
	name := "fd" + strconv.Itoa(fd) + "-of-" + strconv.Itoa(a.pid)
	if pollable {
		if err := unix.SetNonblock(nfd, true); err != nil {
			unix.Close(nfd)
			return nil, err
		}
		return os.NewFile(uintptr(nfd), name), nil
	}
	return PlainFile(nfd, name), nil
}

// PlainFile wraps the descriptor fd of a socket shared with other processes
// as a file that is not pollable, without changing its mode for good.
// os.NewFile makes a file of a non-blocking descriptor pollable, and such a
// file is switched to blocking mode each time it is handed to a child (Fd),
// under the feet of the processes that share the description. PlainFile
// wraps it while blocking, then gives it its mode back.
func PlainFile(fd int, name string) *os.File {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	nonblock := err == nil && flags&unix.O_NONBLOCK != 0
	if nonblock {
		_ = unix.SetNonblock(fd, false)
	}
	f := os.NewFile(uintptr(fd), name)
	if nonblock {
		_ = unix.SetNonblock(fd, true)
	}
	return f
}

// Release closes the pidfd once the process is done with.
func (a *Adopted) Release() {
	<-a.done
	unix.Close(a.pidfd)
}

// StopGroup stops what is left of a process group no Process stands for (the
// leader of an earlier agent life is gone, or was not ours to adopt): sig to the
// group, up to timeout (or until ctx is done) for it to empty, then SIGKILL and
// a bounded wait. Callers must know pgid is theirs: a group id cannot be reused
// while any member of the group lives.
func StopGroup(ctx context.Context, pgid int, sig syscall.Signal, timeout time.Duration) error {
	if !groupAlive(pgid) {
		return nil
	}
	_ = syscall.Kill(-pgid, sig)
	alive := func() bool { return groupAlive(pgid) }
	err := waitWhile(ctx, timeout, nil, alive)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitDead(alive)
	return err
}

// GroupAlive reports whether a live process is left in the group pgid.
func GroupAlive(pgid int) bool { return groupAlive(pgid) }
