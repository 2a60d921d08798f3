// Package testkit holds the helpers the project's tests, benchmarks and demo
// share: polling for a condition with a deadline (Eventually), building small
// archives (TarGz, Pack), an HTTP load generator that counts what failed
// (Load), running a loop until the test ends (Go) and logging to the test's
// log (Logger).
package testkit

import (
	"bytes"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/archive"
)

// pollEvery is how often Eventually checks its condition.
const pollEvery = 10 * time.Millisecond

// Eventually polls cond until it holds, failing the test with "timed out
// after <timeout> waiting for <what>" when it has not held within timeout.
// It is how a test waits for something that must happen; it never proves
// that something did not.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
}

// Slow skips the test under -short, saying why it is slow (e.g. "end-to-end
// test", "starts real containers"). Tests that start the binary, processes or
// containers use it, so the quick loop (make test-short) stays quick.
func Slow(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip(why + "; skipped with -short")
	}
}

// TarGz returns a tar.gz holding files (name to content), each with mode 0644,
// in name order. It panics if the archive cannot be made, which for names and
// contents in memory is a mistake in the test.
func TarGz(files map[string]string) []byte {
	var fs []archive.File
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fs = append(fs, archive.File{Name: name, Body: []byte(files[name])})
	}
	var buf bytes.Buffer
	if err := archive.Write(&buf, archive.TarGz, fs...); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Pack returns an archive of the format (tar, tar.gz or zip) holding files.
func Pack(t testing.TB, format archive.Format, files ...archive.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := archive.Write(&buf, format, files...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ErrorContains fails t unless err is an error whose text holds every one of
// parts.
func ErrorContains(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("err = %v, want it to contain %q", err, p)
		}
	}
}

// ExpectError checks err against want, parts of the error's text that must
// all be there, or none ("" alone) for no error. It reports whether the call
// succeeded as wanted, so that the caller goes on to check what it returned.
func ExpectError(t testing.TB, err error, want ...string) bool {
	t.Helper()
	if want = slices.DeleteFunc(slices.Clone(want), func(w string) bool { return w == "" }); len(want) > 0 {
		ErrorContains(t, err, want...)
		return false
	}
	if err != nil {
		t.Fatalf("err = %v, want none", err)
	}
	return true
}

// ClosedAddr is a 127.0.0.1 address on which nothing listens: a port the
// kernel handed out and that was closed again, so a connection is refused.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
