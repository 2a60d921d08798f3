package procgroup

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// truncated marks a line cut at Output.MaxLineBytes.
const truncated = " [line truncated]"

// lineWriter logs and keeps the lines of both output streams of one process.
type lineWriter struct {
	out    Output
	log    *slog.Logger
	tail   *Tail
	max    int
	logged atomic.Int64
}

func newLineWriter(out Output, tail *Tail, pid int) *lineWriter {
	w := &lineWriter{out: out, tail: tail, max: out.MaxLineBytes, log: out.Logger}
	if w.max <= 0 {
		w.max = DefaultMaxLineBytes
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if out.LogPid {
		w.log = w.log.With("pid", pid)
	}
	return w
}

// pump reads r line by line until EOF (or until r is closed).
func (w *lineWriter) pump(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, w.max)
	skipping := false // the rest of a cut line is being discarded
	for {
		chunk, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		switch {
		case full && w.out.SplitLongLines:
			w.emit(string(chunk), stream, true)
			continue
		case full:
			if !skipping {
				w.emit(string(chunk)+truncated, stream, false)
				skipping = true
			}
			continue
		case len(chunk) > 0 && !skipping:
			if line := string(bytes.TrimRight(chunk, "\r\n")); line != "" || !w.out.SplitLongLines {
				w.emit(line, stream, false)
			}
		}
		skipping = false
		if err != nil {
			return
		}
	}
}

func (w *lineWriter) emit(line, stream string, partial bool) {
	line = strings.ToValidUTF8(line, "\uFFFD")
	w.tail.Add(line)
	n := w.logged.Add(1)
	if w.out.MaxLines > 0 && n > int64(w.out.MaxLines) {
		if n == int64(w.out.MaxLines)+1 {
			what := w.out.Message
			if what == "" {
				what = "output"
			}
			w.log.Warn(what+" goes on; the rest is not logged", "logged_lines", w.out.MaxLines)
		}
		return
	}
	attrs := []any{"stream", stream}
	if partial {
		attrs = append(attrs, "partial", true)
	}
	if w.out.Message == "" {
		w.log.Info(line, attrs...)
		return
	}
	w.log.Info(w.out.Message, append(attrs, "line", line)...)
}

// Tail keeps the last lines of a process's output, from both streams in the
// order they were read. The zero value keeps nothing.
type Tail struct {
	// MaxLines is the most lines kept.
	MaxLines int
	// MaxBytes bounds String's result; zero means no bound.
	MaxBytes int

	mu    sync.Mutex
	lines []string
}

// Add keeps line, dropping the oldest line past MaxLines.
func (t *Tail) Add(line string) {
	if t.MaxLines <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.MaxLines {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.MaxLines:]...)
	}
}

// String returns the kept lines joined by newlines, cut from the front to at
// most MaxBytes, starting at a line (or at least a character) boundary.
func (t *Tail) String() string {
	t.mu.Lock()
	s := strings.Join(t.lines, "\n")
	t.mu.Unlock()
	if t.MaxBytes <= 0 || len(s) <= t.MaxBytes {
		return s
	}
	s = s[len(s)-t.MaxBytes:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		return s[i+1:]
	}
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}
