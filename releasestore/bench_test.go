package releasestore

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPrepare prepares a 64 MiB tar.gz artifact read from a file, and
// reports the artifact's throughput.
func BenchmarkPrepare(b *testing.B) {
	const payload = 64 << 20
	artifact := filepath.Join(b.TempDir(), "app.tar.gz")
	f, err := os.Create(artifact)
	if err != nil {
		b.Fatal(err)
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		b.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: payload, Typeflag: tar.TypeReg}); err != nil {
		b.Fatal(err)
	}
	// Random bytes, so the artifact is about as large as its contents.
	chunk := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	for range payload / len(chunk) {
		_, _ = rng.Read(chunk)
		if _, err := tw.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []io.Closer{tw, zw, f} {
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(artifact)
	if err != nil {
		b.Fatal(err)
	}
	open := func(context.Context) (io.ReadCloser, error) { return os.Open(artifact) }

	s := NewStore(filepath.Join(b.TempDir(), "app"), 3, nil)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		p, err := s.Prepare(b.Context(), "v1.0.0", "app.tar.gz", fi.Size(), "", open)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Remove(p.Dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
