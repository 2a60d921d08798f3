package hooks

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"
)

// truncated marks a line cut at MaxLineBytes.
const truncated = " [line truncated]"

// pump reads r line by line until EOF (or until r is closed), logs each line
// and keeps it in t. Lines longer than MaxLineBytes are cut.
func pump(r io.Reader, stream string, log *slog.Logger, t *tail) {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	skipping := false // the rest of a cut line is being discarded
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !skipping {
				emit(string(chunk)+truncated, stream, log, t)
				skipping = true
			}
			continue
		case len(chunk) > 0 && !skipping:
			emit(string(bytes.TrimRight(chunk, "\r\n")), stream, log, t)
		}
		skipping = false
		if err != nil {
			return
		}
	}
}

func emit(line, stream string, log *slog.Logger, t *tail) {
	line = strings.ToValidUTF8(line, "\uFFFD")
	switch n := t.add(line); {
	case n <= MaxLoggedLines:
		log.Info("hook output", "stream", stream, "line", line)
	case n == MaxLoggedLines+1:
		log.Warn("hook output goes on; the rest is not logged", "logged_lines", MaxLoggedLines)
	}
}

// tail keeps the last TailLines lines written by a hook, from both streams in
// the order they were read.
type tail struct {
	mu    sync.Mutex
	lines []string
	total int // lines seen
}

// add keeps line and returns how many lines have been seen, this one included.
func (t *tail) add(line string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total++
	t.lines = append(t.lines, line)
	if len(t.lines) > TailLines {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-TailLines:]...)
	}
	return t.total
}

// String returns the kept lines joined by newlines, cut from the front to at
// most TailBytes, starting at a line (or at least a character) boundary.
func (t *tail) String() string {
	t.mu.Lock()
	s := strings.Join(t.lines, "\n")
	t.mu.Unlock()
	if len(s) <= TailBytes {
		return s
	}
	s = s[len(s)-TailBytes:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		return s[i+1:]
	}
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}
