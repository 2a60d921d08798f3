// Command bigartifact measures the memory and time releasestore needs to
// prepare a large artifact. It generates a tar.gz artifact on the fly (one file of
// random bytes, written in chunks through a pipe, never held in memory), streams it
// into releasestore.Store.Prepare, and prints the process's peak resident memory
// (VmHWM) before and after, with the elapsed time and the throughput.
//
//	go run ./bench/bigartifact -size 500
//
// The artifact's size is not announced to Prepare (-1) and no checksum is given,
// as for a registry that publishes neither; Prepare still hashes every byte.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/releasestore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bigartifact:", err)
		os.Exit(1)
	}
}

func run() error {
	sizeMiB := flag.Int64("size", 500, "size of the file inside the artifact, in MiB")
	dir := flag.String("dir", "", "app directory to prepare into (default: a temporary directory, removed at the end)")
	level := flag.Int("level", gzip.BestSpeed, "gzip level of the generated artifact (0 stores, 1 fastest, 9 best)")
	flag.Parse()
	if *sizeMiB <= 0 {
		return errors.New("-size must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	appDir := *dir
	if appDir == "" {
		tmp, err := os.MkdirTemp("", "bigartifact-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		appDir = tmp
	}

	before, err := memStatus()
	if err != nil {
		return err
	}
	payload := *sizeMiB << 20
	var generated counter
	open := func(context.Context) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(generate(&generated, pw, payload, *level)) }()
		return pr, nil
	}

	s := releasestore.NewStore(appDir, 1, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	start := time.Now()
	p, err := s.Prepare(ctx, "v1.0.0", "bigartifact_linux_amd64.tar.gz", -1, "", open)
	took := time.Since(start)
	if err != nil {
		return err
	}
	after, err := memStatus()
	if err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Printf("cpus:            %d (GOMAXPROCS %d)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("payload:         %d MiB of random bytes in one file, gzip level %d\n", *sizeMiB, *level)
	fmt.Printf("artifact:        %d bytes (%.1f MiB), sha256 %s\n", p.Size, mib(p.Size), p.SHA256)
	fmt.Printf("release:         %s\n", p.Dir)
	fmt.Printf("time:            %v\n", took.Round(time.Millisecond))
	fmt.Printf("throughput:      %.1f MiB/s of artifact, %.1f MiB/s of extracted contents\n",
		mib(p.Size)/took.Seconds(), mib(payload)/took.Seconds())
	fmt.Printf("peak RSS before: %s\n", before)
	fmt.Printf("peak RSS after:  %s\n", after)
	fmt.Printf("go heap:         %.1f MiB in use, %.1f MiB from the OS, %.1f MiB allocated in total, %d GCs\n",
		mib(int64(ms.HeapInuse)), mib(int64(ms.HeapSys)), mib(int64(ms.TotalAlloc)), ms.NumGC)
	if generated.n != p.Size {
		return fmt.Errorf("generated %d bytes but Prepare read %d", generated.n, p.Size)
	}
	return nil
}

// generate writes a tar.gz holding one file of size random bytes to w, counting
// the artifact's bytes in c. A 4 MiB random block is reused: far larger than
// deflate's 32 KiB window, so the artifact stays incompressible.
func generate(c *counter, w io.Writer, size int64, level int) error {
	bw := bufio.NewWriterSize(io.MultiWriter(w, c), 256<<10)
	zw, err := gzip.NewWriterLevel(bw, level)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: "bigartifact", Mode: 0o755, Size: size, Typeflag: tar.TypeReg, ModTime: time.Now()}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	block := make([]byte, 4<<20)
	_, _ = rand.NewChaCha8([32]byte{42}).Read(block)
	for left := size; left > 0; {
		n := min(left, int64(len(block)))
		if _, err := tw.Write(block[:n]); err != nil {
			return err
		}
		left -= n
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// counter counts the bytes written to it. It is written by the generator
// goroutine and read after Prepare returned, which happens after the last write.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// memStatus returns the process's peak and current resident memory from
// /proc/self/status.
func memStatus() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", fmt.Errorf("read memory status (Linux only): %w", err)
	}
	var hwm, rss string
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmHWM":
			hwm = strings.TrimSpace(v)
		case "VmRSS":
			rss = strings.TrimSpace(v)
		}
	}
	if hwm == "" {
		return "", errors.New("no VmHWM in /proc/self/status")
	}
	return fmt.Sprintf("VmHWM %s (VmRSS %s)", hwm, rss), nil
}
