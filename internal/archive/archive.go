// Package archive names the archive formats an artifact can come in, by the
// suffix of its file name, and builds small archives of those formats.
//
// The suffix table here is the only one: the version engine uses it to tell
// artifacts from other release files, and the release store to pick how to
// unpack a download.
package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// Format is how an archive is packed.
type Format string

// The archive formats. None is anything else: a bare file, a checksum list, a
// signature, an OS package.
const (
	None   Format = ""
	TarGz  Format = "tar.gz"
	TarBz2 Format = "tar.bz2"
	TarXz  Format = "tar.xz"
	Tar    Format = "tar"
	Zip    Format = "zip"
)

// suffixes maps each known file name suffix to its format.
var suffixes = [...]struct {
	suffix string
	format Format
}{
	{".tar.gz", TarGz}, {".tgz", TarGz},
	{".tar.bz2", TarBz2}, {".tbz2", TarBz2}, {".tbz", TarBz2},
	{".tar.xz", TarXz}, {".txz", TarXz},
	{".tar", Tar},
	{".zip", Zip},
}

// Of returns the format of a file by its name, case-insensitively, or None.
func Of(name string) Format {
	lower := strings.ToLower(name)
	for _, s := range suffixes {
		if strings.HasSuffix(lower, s.suffix) {
			return s.format
		}
	}
	return None
}

// File is one regular file to put in an archive.
type File struct {
	// Name is the slash-separated path inside the archive.
	Name string
	// Body is the file's content.
	Body []byte
	// Mode holds the permission bits; zero means 0644.
	Mode fs.FileMode
}

// Write packs files, in the order given, into w as a Tar, TarGz or Zip archive.
func Write(w io.Writer, format Format, files ...File) error {
	mod := time.Now()
	switch format {
	case Tar, TarGz:
		var gz *gzip.Writer
		if format == TarGz {
			gz = gzip.NewWriter(w)
			w = gz
		}
		tw := tar.NewWriter(w)
		for _, f := range files {
			hdr := &tar.Header{Name: f.Name, Typeflag: tar.TypeReg, Mode: int64(perm(f.Mode)), Size: int64(len(f.Body)), ModTime: mod}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("archive %s: %w", f.Name, err)
			}
			if _, err := tw.Write(f.Body); err != nil {
				return fmt.Errorf("archive %s: %w", f.Name, err)
			}
		}
		if err := tw.Close(); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if gz != nil {
			if err := gz.Close(); err != nil {
				return fmt.Errorf("archive: %w", err)
			}
		}
		return nil
	case Zip:
		zw := zip.NewWriter(w)
		for _, f := range files {
			fh := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: mod}
			fh.SetMode(perm(f.Mode))
			fw, err := zw.CreateHeader(fh)
			if err == nil {
				_, err = fw.Write(f.Body)
			}
			if err != nil {
				return fmt.Errorf("archive %s: %w", f.Name, err)
			}
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("archive: cannot write format %q", format)
	}
}

// WriteFile packs files into a new archive at path, replacing it atomically,
// so a reader polling the folder never sees half an archive.
func WriteFile(path string, format Format, files ...File) error {
	var buf bytes.Buffer
	if err := Write(&buf, format, files...); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}

func perm(m fs.FileMode) fs.FileMode {
	if m == 0 {
		return 0o644
	}
	return m.Perm()
}
