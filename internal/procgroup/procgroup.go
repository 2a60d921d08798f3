// Package procgroup starts a child process in a process group of its own,
// logs each line it writes to stdout and stderr, keeps a bounded tail of
// that output for error messages, and stops the whole group: a signal, a
// bounded wait, then SIGKILL. Its words:
//
//   - Group: the child and every process it starts that does not detach
//     itself (setsid); the child leads it and the group id is its pid.
//   - Leader exit: the child itself has exited and been reaped (Done).
//   - Drain: ending what the leader left behind in its group and reading its
//     output to the end.
//
// Both the deployment hooks and the server runner's generations are such
// processes; they differ only in how lines are logged (Output) and in their
// stop signals and waits.
package procgroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxLineBytes bounds one line when Output.MaxLineBytes is zero.
const DefaultMaxLineBytes = 4 << 10

// ErrStopTimeout is returned by Stop when the group outlived the wait and was
// killed.
var ErrStopTimeout = errors.New("did not stop in time")

// Output says how a process's output lines are logged and kept.
type Output struct {
	// Logger receives every line at info with the attribute stream=stdout|stderr.
	// Nil discards the lines.
	Logger *slog.Logger
	// Message, when set, is each line's log message and the line goes in the
	// attribute "line"; when empty, the line itself is the message.
	Message string
	// LogPid adds the attribute pid=<the child's pid> to the line records.
	LogPid bool
	// MaxLineBytes bounds a line; zero means DefaultMaxLineBytes. A longer
	// line is cut and marked " [line truncated]" (the rest is dropped), or,
	// with SplitLongLines, logged in pieces marked partial=true.
	MaxLineBytes   int
	SplitLongLines bool
	// MaxLines is the most lines logged; zero means no limit. Past it one
	// warning "<Message or output> goes on; the rest is not logged" is logged
	// and the tail is still kept.
	MaxLines int
	// TailLines and TailBytes bound what Tail returns: the last lines of both
	// streams in the order they were read. Zero TailLines keeps nothing.
	TailLines, TailBytes int
}

// Process is a started process group.
type Process struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once the leader is reaped

	state *os.ProcessState // set before done is closed

	pipes   []*os.File // read ends of stdout and stderr
	pipeFds [2]int     // the child's copies of them (StartSurviving); -1 if none
	// files are the output files (StartSurviving with a directory), tailed
	// until tailStop is closed; removed once drained.
	files    []string
	tailStop chan struct{}
	tailOnce sync.Once
	readers  sync.WaitGroup
	tail     *Tail
	drained  sync.Once
}

// Start starts cmd in a process group of its own and logs its output as out
// says. cmd's Stdout and Stderr must be nil; its SysProcAttr, if any, is kept
// with Setpgid added (so a Pdeathsig set by the caller stays).
func Start(cmd *exec.Cmd, out Output) (*Process, error) {
	return start(cmd, out, false)
}

// start is Start; with hold, the child also gets copies of its pipes' read
// ends (see StartSurviving).
func start(cmd *exec.Cmd, out Output, hold bool) (*Process, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("procgroup: the command's output is already taken")
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = outW, errW
	pipeFds := [2]int{-1, -1}
	var held []*os.File
	if hold {
		for i, r := range []*os.File{outR, errR} {
			c, err := reopenPipe(r)
			if err != nil {
				for _, f := range append(held, outR, outW, errR, errW) {
					f.Close()
				}
				return nil, fmt.Errorf("procgroup: reopen pipe: %w", err)
			}
			held = append(held, c)
			pipeFds[i] = 3 + len(cmd.ExtraFiles)
			cmd.ExtraFiles = append(cmd.ExtraFiles, c)
		}
	}
	err = cmd.Start()
	// The child has its own copies of the write ends (or none, on failure).
	outW.Close()
	errW.Close()
	for _, f := range held {
		f.Close()
	}
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	p := &Process{
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		done:    make(chan struct{}),
		pipes:   []*os.File{outR, errR},
		pipeFds: pipeFds,
		tail:    &Tail{MaxLines: out.TailLines, MaxBytes: out.TailBytes},
	}
	lw := newLineWriter(out, p.tail, p.pid)
	p.readers.Go(func() { lw.pump(outR, "stdout") })
	p.readers.Go(func() { lw.pump(errR, "stderr") })
	go func() {
		_ = cmd.Wait() // the outcome is in ProcessState
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// Pid is the leader's pid, which is also the group id.
func (p *Process) Pid() int { return p.pid }

// PipeFds are the numbers in the child of its copies of the read ends of its
// stdout and stderr pipes (StartSurviving), for Adopt; -1 when it has none.
func (p *Process) PipeFds() (stdout, stderr int) { return p.pipeFds[0], p.pipeFds[1] }

// Done is closed once the leader has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the leader has been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// State is how the leader ended; nil before Done is closed or when waiting
// for it failed.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.state
}

// Tail returns the kept end of the output (see Output.TailLines).
func (p *Process) Tail() string { return p.tail.String() }

// Signal sends sig to every process of the group. A group that is gone is not
// an error worth reporting.
func (p *Process) Signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.pid, sig)
}

// GroupAlive reports whether a live process is left in the group.
func (p *Process) GroupAlive() bool { return groupAlive(p.pid) }

// Stop sends sig to the group and waits until the leader has exited and no
// live process is left in the group, for at most timeout and while ctx is not
// done; then it sends SIGKILL to the whole group. It returns once the leader
// is reaped and no live process is left in the group (or killWait after the
// kill): nil when the group stopped on its own within the wait,
// ErrStopTimeout or ctx's cause when it was killed.
func (p *Process) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) error {
	p.Signal(sig)
	err := waitWhile(ctx, timeout, p.done, func() bool { return !p.Exited() || p.GroupAlive() })
	p.Signal(syscall.SIGKILL)
	<-p.done
	waitDead(p.GroupAlive)
	return err
}

// waitWhile waits while alive() holds, looking every pollEvery and whenever
// woken is ready (nil: never), for at most timeout and while ctx is not done.
// It returns nil when alive() became false, else ErrStopTimeout or ctx's
// cause.
func waitWhile(ctx context.Context, timeout time.Duration, woken <-chan struct{}, alive func() bool) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for alive() {
		select {
		case <-woken:
		case <-tick.C:
		case <-t.C:
			return ErrStopTimeout
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// waitDead waits, for at most killWait, until alive() is false: SIGKILL cannot
// be ignored, but a process takes a moment to die.
func waitDead(alive func() bool) {
	for deadline := time.Now().Add(killWait); alive() && time.Now().Before(deadline); {
		time.Sleep(pollEvery / 5)
	}
}

// killWait bounds how long Stop waits for the group to die after SIGKILL.
const killWait = 2 * time.Second

// pollEvery is how often Stop looks whether the group is gone.
const pollEvery = 50 * time.Millisecond

// Drain ends the group after its leader exited (it waits for that) and reads
// the output to its end: it sends first to what is left of the group and
// waits up to grace for the output pipes to close; unless first was SIGKILL,
// it then sends SIGKILL and waits up to grace again. Pipes still held open
// after that (by a process that left the group) are closed. Output files
// (StartSurviving with a directory) are read to their end once the group is
// gone (or after the waits), then removed. Safe to call more than once and
// from several goroutines; later calls wait for the first.
func (p *Process) Drain(first syscall.Signal, grace time.Duration) {
	<-p.done
	p.drained.Do(func() {
		readersDone := make(chan struct{})
		go func() {
			p.readers.Wait()
			close(readersDone)
		}()
		p.Signal(first)
		if p.tailStop != nil {
			// Output files never end by themselves: once the group is gone
			// nothing writes to them, and they are read to their end.
			if !p.waitGroupGone(grace) && first != syscall.SIGKILL {
				p.Signal(syscall.SIGKILL)
				p.waitGroupGone(grace)
			}
			p.tailOnce.Do(func() { close(p.tailStop) })
			<-readersDone
			removeOutputFiles(p.files)
			return
		}
		ok := waitFor(readersDone, grace)
		if !ok && first != syscall.SIGKILL {
			p.Signal(syscall.SIGKILL)
			ok = waitFor(readersDone, grace)
		}
		for _, f := range p.pipes {
			f.Close()
		}
		<-readersDone
	})
}

// Detach stops reading the output files (StartSurviving with a directory)
// once what is in them now is read, and leaves them, with the offset read,
// for the next agent life to adopt. The process goes on. Output that goes to
// pipes is still read.
func (p *Process) Detach() {
	if p.tailStop == nil {
		return
	}
	p.tailOnce.Do(func() { close(p.tailStop) })
	p.readers.Wait()
}

// waitGroupGone waits up to d for no live process to be left in the group;
// it reports whether none is.
func (p *Process) waitGroupGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for p.GroupAlive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}

// waitFor reports whether c is closed within d.
func waitFor(c <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-t.C:
		return false
	}
}
