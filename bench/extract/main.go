// Command extract measures releasestore's extraction against GNU tar: a
// tar.gz of many small files (Prepare vs `tar -xzf` followed by `sync`), and a
// deep tree at two depths (the time must grow linearly with depth).
//
//	go run ./bench/extract -files 20000 -depth 1000,2000 -runs 3
//
// Each figure is the median of -runs runs, each into a fresh folder on the
// file system of -dir (the system's temp folder by default).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/releasestore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "extract:", err)
		os.Exit(1)
	}
}

func run() error {
	files := flag.Int("files", 20000, "small files in the wide archive")
	depths := flag.String("depth", "1000,2000", "depths of the deep archives, comma-separated")
	runs := flag.Int("runs", 3, "runs of each measurement (the median is shown)")
	dir := flag.String("dir", os.TempDir(), "folder to extract under")
	flag.Parse()

	wide := wideArchive(*files)
	fmt.Printf("wide: %d files of 100 bytes in 100 folders, %d bytes compressed\n", *files, len(wide))
	dewy, err := median(*runs, func() (time.Duration, error) { return prepare(*dir, wide, 0) })
	if err != nil {
		return err
	}
	gnu, err := median(*runs, func() (time.Duration, error) { return gnuTar(*dir, wide) })
	if err != nil {
		return err
	}
	fmt.Printf("  releasestore.Prepare (one syncfs): %v\n  tar -xzf + sync:                   %v\n  ratio: %.2f\n", dewy, gnu, float64(dewy)/float64(gnu))

	var prev time.Duration
	for _, ds := range strings.Split(*depths, ",") {
		d, err := strconv.Atoi(strings.TrimSpace(ds))
		if err != nil {
			return err
		}
		deep := deepArchive(d)
		took, err := median(*runs, func() (time.Duration, error) { return prepare(*dir, deep, d+1) })
		if err != nil {
			return err
		}
		fmt.Printf("deep: %d levels, one file per level, %d bytes compressed: %v", d, len(deep), took)
		if prev > 0 {
			fmt.Printf(" (%.2fx the previous)", float64(took)/float64(prev))
		}
		fmt.Println()
		prev = took
	}
	return nil
}

func median(n int, f func() (time.Duration, error)) (time.Duration, error) {
	var ds []time.Duration
	for range n {
		d, err := f()
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

func prepare(dir string, data []byte, depth int) (time.Duration, error) {
	root, err := os.MkdirTemp(dir, "bench-extract-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	s := releasestore.NewStore(filepath.Join(root, "app"), 1, nil)
	s.Reserve = releasestore.Reserve{Bytes: 1}
	if depth > 0 {
		s.MaxDepth = depth
	}
	start := time.Now()
	_, err = s.Prepare(context.Background(), "v1.0.0", "a.tar.gz", int64(len(data)), "", func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	return time.Since(start), err
}

func gnuTar(dir string, data []byte) (time.Duration, error) {
	root, err := os.MkdirTemp(dir, "bench-tar-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	art := filepath.Join(root, "a.tar.gz")
	if err := os.WriteFile(art, data, 0o644); err != nil {
		return 0, err
	}
	out := filepath.Join(root, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return 0, err
	}
	start := time.Now()
	if b, err := exec.Command("tar", "-xzf", art, "-C", out).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("tar: %v: %s", err, b)
	}
	if err := exec.Command("sync").Run(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func wideArchive(n int) []byte {
	body := bytes.Repeat([]byte("x"), 100)
	return build(func(tw *tar.Writer) {
		for i := range n {
			name := fmt.Sprintf("d%03d/f%05d.txt", i%100, i)
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			tw.Write(body)
		}
	})
}

func deepArchive(depth int) []byte {
	return build(func(tw *tar.Writer) {
		p := ""
		for range depth {
			p += "d/"
			tw.WriteHeader(&tar.Header{Name: p, Mode: 0o755, Typeflag: tar.TypeDir})
			tw.WriteHeader(&tar.Header{Name: p + "f", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
		}
	})
}

func build(fill func(*tar.Writer)) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	fill(tw)
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
