package procgroup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTailEndsWhileTheAppKeepsWriting checks that a tail stops at the size the
// file had when told to stop, though the app writes faster than it reads
// (else an agent upgrade would wait on Detach for ever), and that it saves
// the offset it reached for the next agent.
func TestTailEndsWhileTheAppKeepsWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.stdout")
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	if _, err := w.Write(bytes.Repeat(line, 1024)); err != nil { // 1 MiB ahead of the reader
		t.Fatal(err)
	}
	chunk := bytes.Repeat(line, 64) // 64 KiB a write
	writing := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-writing:
				return
			default:
			}
			w.Write(chunk)
			time.Sleep(time.Millisecond) // about 64 MB/s
		}
	}()
	defer func() { close(writing); <-done }()

	stop := make(chan struct{})
	tail, err := openTail(path, stop)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16) // a slow reader: a few MB/s

	if _, err := tail.Read(buf); err != nil {
		t.Fatal(err)
	}
	close(stop)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := tail.Read(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tail still reads 3 s after stop, at offset %d", tail.off)
		}
	}
	b, err := os.ReadFile(path + offsetSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if saved, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || saved != tail.off {
		t.Errorf("saved offset %q, want %d", b, tail.off)
	}
}
