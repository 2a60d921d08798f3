package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes body to path, making the folders it needs, or fails the
// test.
func WriteFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
