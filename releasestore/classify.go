package releasestore

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/dewy-agent/dewy-agent/internal/errmark"
)

// ErrTransient is wrapped by Prepare's errors that may not happen again with
// the same artifact: a stream that ended early (a file still being written, a
// connection cut). The caller retries with backoff before it gives up on the
// artifact.
var ErrTransient = errors.New("transient failure")

// ErrDiskFull is wrapped by Prepare's errors that say the state directory's
// file system has too little space or too few inodes left above the reserve
// (Store.Reserve), or ran out of them. It says nothing about the artifact:
// the caller backs off and tries again when space was freed.
var ErrDiskFull = errors.New("disk full")

// transient is an ErrTransient error with the formatted message.
func transient(format string, args ...any) error {
	return errmark.With(fmt.Errorf(format, args...), ErrTransient)
}

// diskFull is an ErrDiskFull error with the formatted message.
func diskFull(format string, args ...any) error {
	return errmark.With(fmt.Errorf("disk full: "+format, args...), ErrDiskFull)
}

// classifyRead classifies a failed read of the archive: an early end may be a
// file still being written or a cut connection (transient); anything else is
// a corrupt archive (bad).
func classifyRead(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return transient("%s: truncated: %w", what, err)
	}
	return bad("%s: %w", what, err)
}

// classified reports whether err already carries its class.
func classified(err error) bool {
	return errors.Is(err, ErrBadArtifact) || errors.Is(err, ErrTransient) || errors.Is(err, ErrDiskFull)
}

// classifyLocal gives a local error its class, once, where extraction fails:
// errors the same artifact will always meet again (a name the file system
// refuses) mark it bad; a full disk or quota is disk_full; the rest stay
// unclassified, which the caller treats as transient.
func classifyLocal(err error) error {
	if err == nil || classified(err) {
		return err
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case syscall.ENAMETOOLONG, syscall.EINVAL, syscall.EILSEQ, syscall.ELOOP, syscall.ENOTDIR, syscall.EEXIST, syscall.EISDIR:
		return &badArtifact{err: err}
	case syscall.ENOSPC, syscall.EDQUOT:
		return errmark.With(err, ErrDiskFull)
	}
	return err
}

// clip shortens a name for an error message.
func clip(name string) string {
	if len(name) <= 80 {
		return name
	}
	return name[:60] + "..." + name[len(name)-16:]
}
