package releasestore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// copyBufferSize is the buffer of the download and extraction copies.
const copyBufferSize = 256 << 10

// copyBuffers and bufReaders recycle the buffers of downloads and
// extractions: a host deploying hundreds of small releases at once would
// otherwise allocate, clear and collect three quarter-MiB buffers for each.
var (
	copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}
	bufReaders  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, copyBufferSize) }}
)

// download streams the artifact from open into dst while hashing it, checks its
// length and digest, and flushes dst to disk. It returns the digest and length.
func (s *Store) download(ctx context.Context, dst *budgetWriter, artifact string, size int64, want string, open func(context.Context) (io.ReadCloser, error)) (string, int64, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, fmt.Errorf("download %s: %w", artifact, err)
	}
	body, err := open(ctx)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return "", 0, fmt.Errorf("download %s: %w", artifact, cerr)
		}
		return "", 0, fmt.Errorf("download %s: %w", artifact, err)
	}
	var once sync.Once
	closeBody := func() { once.Do(func() { _ = body.Close() }) }
	// A Read blocked on a stalled peer returns once the body is closed.
	stop := context.AfterFunc(ctx, closeBody)
	defer func() {
		stop()
		closeBody()
	}()

	limit := s.maxBytes()
	if size >= 0 {
		limit = size
	}
	h := sha256.New()
	// Read one byte more than allowed to tell "exactly" from "too long".
	src := io.LimitReader(&ctxReader{ctx: ctx, r: body}, limit+1)
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(io.MultiWriter(dst, h), src, buf[:])
	if cerr := ctx.Err(); cerr != nil {
		return "", n, fmt.Errorf("download %s: %w", artifact, cerr)
	}
	if err != nil {
		if dst.err != nil {
			return "", n, fmt.Errorf("download %s: %w", artifact, dst.err)
		}
		// The transfer broke (a cut connection, a stalled body): that says
		// nothing about the artifact, so it is not classified and is never
		// counted towards a bad mark; the caller backs off and tries again.
		return "", n, fmt.Errorf("download %s: after %d bytes: %w", artifact, n, err)
	}
	switch {
	case size >= 0 && n < size:
		return "", n, fmt.Errorf("download %s: short download: got %d of %d bytes", artifact, n, size)
	case size >= 0 && n > size:
		return "", n, fmt.Errorf("download %s: longer than the announced %d bytes", artifact, size)
	case n > limit:
		return "", n, bad("download %s: larger than the limit of %d bytes", artifact, limit)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return "", n, bad("checksum mismatch for %s: want %s, got %s", artifact, want, sum)
	}
	if err := dst.f.Sync(); err != nil {
		return "", n, fmt.Errorf("download %s: %w", artifact, err)
	}
	return sum, n, nil
}

// ctxReader fails every Read once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// isNotEmpty reports whether err says a directory is not empty (rename(2) over a
// non-empty directory).
func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY)
}

// budgetWriter writes to f, charging each write to the disk budget; its err
// is the budget's refusal or the file's own write error.
type budgetWriter struct {
	f   *os.File
	b   *budget
	err error
}

func (w *budgetWriter) Write(p []byte) (int, error) {
	if w.b != nil {
		if err := w.b.takeBytes(int64(len(p))); err != nil {
			w.err = err
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	if err != nil {
		w.err = classifyLocal(err)
	}
	return n, err
}
