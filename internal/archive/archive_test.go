package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		file string
		want Format
	}{
		{name: "tar.gz", file: "a_linux_amd64.tar.gz", want: TarGz},
		{name: "tgz upper case", file: "A.TGZ", want: TarGz},
		{name: "tar.bz2", file: "a.tar.bz2", want: TarBz2},
		{name: "tbz2", file: "a.tbz2", want: TarBz2},
		{name: "tbz", file: "a.tbz", want: TarBz2},
		{name: "tar.xz", file: "a.tar.xz", want: TarXz},
		{name: "txz", file: "a.txz", want: TarXz},
		{name: "tar", file: "a.tar", want: Tar},
		{name: "zip", file: "a.zip", want: Zip},
		{name: "bare", file: "myapp", want: None},
		{name: "gz alone", file: "a.gz", want: None},
		{name: "checksums", file: "SHA256SUMS", want: None},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.file); got != tt.want {
				t.Errorf("Of(%q) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

func TestWriteReadsBack(t *testing.T) {
	files := []File{{Name: "bin/app", Body: []byte("#!/bin/sh\n"), Mode: 0o755}, {Name: "index.html", Body: []byte("hi")}}
	wantMode := map[string]int64{"bin/app": 0o755, "index.html": 0o644}
	for _, format := range []Format{Tar, TarGz, Zip} {
		t.Run(string(format), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a."+string(format))
			if err := WriteFile(path, format, files...); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got := readAll(t, path, format)
			if len(got) != len(files) {
				t.Fatalf("read %d entries, want %d", len(got), len(files))
			}
			for _, f := range files {
				e, ok := got[f.Name]
				if !ok || e.body != string(f.Body) || e.mode != wantMode[f.Name] {
					t.Errorf("%s = %+v, want body %q mode %o", f.Name, e, f.Body, wantMode[f.Name])
				}
			}
		})
	}
	if err := Write(io.Discard, TarXz); err == nil {
		t.Error("Write(tar.xz) succeeded; want an error: only tar, tar.gz and zip are written")
	}
}

type entry struct {
	body string
	mode int64
}

func readAll(t *testing.T, path string, format Format) map[string]entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]entry{}
	if format == Zip {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(rc)
			rc.Close()
			out[f.Name] = entry{string(body), int64(f.Mode().Perm())}
		}
		return out
	}
	var r io.Reader = bytes.NewReader(b)
	if format == TarGz {
		gz, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[h.Name] = entry{string(body), h.Mode}
	}
}
