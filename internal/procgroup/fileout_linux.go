package procgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Output files. A surviving child's stdout and stderr can go to two files
// instead of pipes (StartSurviving with a directory): a write to a file never
// blocks, so a chatty app keeps running while no agent reads its output, and
// what it wrote then is still there for the next agent life. The agent tails
// each file: it reads to the end, waits tailEvery, reads again. Its read
// offset is kept in <file>.offset, so an agent that adopts the process (Adopt)
// carries on where the last one stopped; at most the chunk being read when
// the agent died is logged twice or lost. Every freeEvery bytes read, the
// blocks already read are punched out of the file (fallocate
// FALLOC_FL_PUNCH_HOLE), so a file holds on disk only what no agent has read
// yet. The files are removed when the process's output is drained.

const (
	// tailEvery is how often a file at its end is read again.
	tailEvery = 100 * time.Millisecond
	// saveEvery is how many bytes may be read before the offset is saved
	// again; it is also saved each time the reader catches up.
	saveEvery = 256 << 10
	// freeEvery is how many read bytes are punched out of a file at once.
	freeEvery = 1 << 20
)

// fileTail reads an output file as it grows, until stop is closed and the
// end is reached; then Read returns io.EOF.
type fileTail struct {
	f      *os.File // opened read-write: punching a hole needs write access
	pos    *os.File // the offset file
	off    int64    // the next byte to read
	saved  int64    // the offset last saved
	freed  int64    // the bytes before this offset are punched out
	noFree bool     // punching holes is not supported here
	stop   <-chan struct{}
	ending bool  // stop was closed: read up to endAt, then EOF
	endAt  int64 // the file's size when stop was seen
}

// end marks the tail as ending at the file's present size.
func (t *fileTail) end() {
	t.ending = true
	t.endAt = t.off
	if fi, err := t.f.Stat(); err == nil && fi.Size() > t.off {
		t.endAt = fi.Size()
	}
}

// openTail opens the output file path for tailing from its saved offset (0
// when none was saved).
func openTail(path string, stop <-chan struct{}) (*fileTail, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	pos, err := os.OpenFile(path+offsetSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &fileTail{f: f, pos: pos, stop: stop}
	b := make([]byte, 32)
	n, _ := pos.ReadAt(b, 0)
	if off, err := strconv.ParseInt(strings.TrimSpace(string(b[:n])), 10, 64); err == nil && off > 0 {
		t.off, t.saved = off, off
	}
	return t, nil
}

// Read reads what was written since the last Read, waiting while there is
// nothing new.
func (t *fileTail) Read(p []byte) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Seen on every call, not only at the end of the file: an app that
		// writes faster than the agent reads would otherwise hold Detach
		// (an agent upgrade) for ever. What it writes after is for the
		// next agent, which reads on from the saved offset.
		if !t.ending {
			select {
			case <-t.stop:
				t.end()
			default:
			}
		}
		if t.ending && t.off >= t.endAt {
			t.save()
			return 0, io.EOF
		}
		n, err := t.f.ReadAt(p, t.off)
		if n > 0 {
			t.off += int64(n)
			if t.off-t.saved >= saveEvery {
				t.save()
				t.free()
			}
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		t.save()
		t.free()
		if t.ending {
			return 0, io.EOF
		}
		if timer == nil {
			timer = time.NewTimer(tailEvery)
		} else {
			timer.Reset(tailEvery)
		}
		select {
		case <-t.stop:
			t.end()
		case <-timer.C:
		}
	}
}

// save writes the read offset (fixed width, so no truncation is needed).
func (t *fileTail) save() {
	if t.off == t.saved {
		return
	}
	if _, err := t.pos.WriteAt([]byte(fmt.Sprintf("%020d\n", t.off)), 0); err == nil {
		t.saved = t.off
	}
}

// free punches the blocks read so far out of the file, once freeEvery bytes
// have been read since the last time.
func (t *fileTail) free() {
	end := t.off &^ 4095
	if t.noFree || end-t.freed < freeEvery {
		return
	}
	err := unix.Fallocate(int(t.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, t.freed, end-t.freed)
	if err != nil {
		t.noFree = true // the file system cannot: the file keeps its size
		return
	}
	t.freed = end
}

func (t *fileTail) close() {
	t.f.Close()
	t.pos.Close()
}

// startToFiles starts cmd with its stdout and stderr going to two new files in
// dir, and tails them.
func startToFiles(cmd *exec.Cmd, out Output, dir string) (*Process, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("procgroup: the command's output is already taken")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("procgroup: output dir: %w", err)
	}
	outW, err := os.CreateTemp(dir, "*.stdout")
	if err != nil {
		return nil, fmt.Errorf("procgroup: output file: %w", err)
	}
	paths := []string{outW.Name(), strings.TrimSuffix(outW.Name(), ".stdout") + ".stderr"}
	errW, err := os.OpenFile(paths[1], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		outW.Close()
		removeOutputFiles(paths)
		return nil, fmt.Errorf("procgroup: output file: %w", err)
	}
	// The child's copies append, so that punching holes and its own writes
	// never fight over an offset.
	for _, w := range []*os.File{outW, errW} {
		if err := setAppend(w); err != nil {
			outW.Close()
			errW.Close()
			removeOutputFiles(paths)
			return nil, fmt.Errorf("procgroup: output file: %w", err)
		}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		removeOutputFiles(paths)
		return nil, fmt.Errorf("start: %w", err)
	}
	p := &Process{
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		done:    make(chan struct{}),
		pipeFds: [2]int{-1, -1},
		tail:    &Tail{MaxLines: out.TailLines, MaxBytes: out.TailBytes},
	}
	if err := p.tailFiles(out, paths); err != nil {
		// The process runs; its output is lost rather than the process.
		newLineWriter(out, p.tail, p.pid).log.Warn("output not read", "err", err)
	}
	go func() {
		_ = cmd.Wait() // the outcome is in ProcessState
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// setAppend puts f's file description in append mode.
func setAppend(f *os.File) error {
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, flags|unix.O_APPEND)
	return err
}

// tailFiles logs the output files paths (stdout, stderr; "" for none) of p.
func (p *Process) tailFiles(out Output, paths []string) error {
	p.files = paths
	p.tailStop = make(chan struct{})
	lw := newLineWriter(out, p.tail, p.pid)
	var errs []error
	for i, path := range paths {
		if path == "" {
			continue
		}
		t, err := openTail(path, p.tailStop)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		stream := [2]string{"stdout", "stderr"}[i]
		p.readers.Go(func() {
			defer t.close()
			lw.pump(t, stream)
		})
	}
	return errors.Join(errs...)
}

// OutputFiles are the files the process's stdout and stderr go to
// (StartSurviving with a directory); "" when its output goes to pipes.
func (p *Process) OutputFiles() (stdout, stderr string) {
	if len(p.files) != 2 {
		return "", ""
	}
	return p.files[0], p.files[1]
}
