package releasestore

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/dewy-agent/dewy-agent/internal/archive"
	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// maxLinkTarget caps the length of a symlink target read from a zip entry.
const maxLinkTarget = 4096

// maxLinkHops caps the symlinks followed when checking where one resolves, as
// the kernel does (ELOOP).
const maxLinkHops = 40

// extract unpacks the downloaded artifact f (n bytes) into the staging directory.
func (s *Store) extract(ctx context.Context, f *os.File, n int64, kind archive.Format, artifact, staging string) error {
	root, err := os.OpenRoot(staging)
	if err != nil {
		return fmt.Errorf("extract %s: %w", artifact, err)
	}
	defer root.Close()
	x := &extractor{
		ctx:        ctx,
		root:       root,
		maxBytes:   s.maxBytes(),
		maxEntries: s.maxEntries(),
		buf:        make([]byte, copyBufferSize),
	}
	if kind == archive.Zip {
		err = x.zip(f, n)
	} else {
		err = x.tarStream(io.NewSectionReader(f, 0, n), kind)
	}
	if err == nil {
		err = x.finish()
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("extract %s: %w", artifact, cerr)
		}
		return fmt.Errorf("extract %s: %w", artifact, err)
	}
	return nil
}

// extractor writes archive entries under root, refusing anything that would
// reach outside it. Every operation goes through os.Root, which also refuses to
// leave the directory, as a second line of defence behind the explicit checks.
type extractor struct {
	ctx        context.Context
	root       *os.Root
	maxBytes   int64
	maxEntries int
	buf        []byte

	bytes   int64    // bytes of file contents written so far
	entries int      // archive entries seen so far
	created int      // files, directories and links made
	links   []string // symlinks made, checked again by finish
}

// tarStream unpacks a tar archive, compressed or not, read from r.
func (x *extractor) tarStream(r io.Reader, kind archive.Format) error {
	var dr io.Reader = bufio.NewReaderSize(r, copyBufferSize)
	switch kind {
	case archive.TarGz:
		zr, err := gzip.NewReader(dr)
		if err != nil {
			return bad("read gzip: %w", err)
		}
		defer zr.Close()
		dr = zr
	case archive.TarBz2:
		dr = bzip2.NewReader(dr)
	case archive.TarXz:
		zr, err := xz.NewReader(dr)
		if err != nil {
			return bad("read xz: %w", err)
		}
		dr = zr
	}
	if err := x.tar(tar.NewReader(dr)); err != nil {
		return err
	}
	if kind == archive.Tar {
		return nil
	}
	// Read the compressed stream to its end so that its trailing checksum is
	// verified; what follows the tar end marker counts against the size limit.
	rest := x.maxBytes - x.bytes
	m, err := io.CopyBuffer(io.Discard, io.LimitReader(&ctxReader{ctx: x.ctx, r: dr}, rest+1), x.buf)
	if err != nil {
		return bad("read compressed stream after the tar end: %w", err)
	}
	if m > rest {
		return x.tooBig()
	}
	return nil
}

// tar unpacks the entries of tr.
func (x *extractor) tar(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if cerr := x.ctx.Err(); cerr != nil {
				return cerr
			}
			return bad("read tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // pax metadata (git archive writes one), not a file
		}
		name, err := x.entry(hdr.Name)
		if err != nil {
			return err
		}
		mode := fs.FileMode(hdr.Mode) & fs.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = x.mkdir(name, mode)
		case tar.TypeReg:
			err = x.file(name, mode, tr, hdr.Size)
		case tar.TypeSymlink:
			err = x.symlink(name, hdr.Linkname)
		case tar.TypeLink:
			err = x.hardlink(name, hdr.Linkname)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			err = bad("entry %q: device or fifo entries are refused", hdr.Name)
		default:
			err = bad("entry %q: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

// zip unpacks a zip archive from f (n bytes), read at random offsets.
func (x *extractor) zip(f *os.File, n int64) error {
	zr, err := zip.NewReader(f, n)
	if err != nil {
		return bad("read zip: %w", err)
	}
	if len(zr.File) > x.maxEntries {
		return bad("more than %d entries (Store.MaxEntries)", x.maxEntries)
	}
	for _, zf := range zr.File {
		if err := x.zipEntry(zf); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipEntry(zf *zip.File) error {
	name, err := x.entry(zf.Name)
	if err != nil {
		return err
	}
	mode := zf.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		rc, err := zf.Open()
		if err != nil {
			return bad("entry %q: %w", zf.Name, err)
		}
		target, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
		_ = rc.Close()
		if err != nil {
			return bad("entry %q: %w", zf.Name, err)
		}
		if len(target) > maxLinkTarget {
			return bad("entry %q: symlink target longer than %d bytes", zf.Name, maxLinkTarget)
		}
		return x.symlink(name, string(target))
	case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
		return x.mkdir(name, mode.Perm())
	case !mode.IsRegular():
		return bad("entry %q: special files (%v) are refused", zf.Name, mode.Type())
	}
	if zf.UncompressedSize64 > math.MaxInt64 {
		return x.tooBig()
	}
	rc, err := zf.Open()
	if err != nil {
		return bad("entry %q: %w", zf.Name, err)
	}
	defer rc.Close()
	return x.file(name, mode.Perm(), rc, int64(zf.UncompressedSize64))
}

// entry counts one archive entry and returns its name cleaned, refusing names
// that are absolute or climb out of the root. "." is the root itself.
func (x *extractor) entry(name string) (string, error) {
	if err := x.ctx.Err(); err != nil {
		return "", err
	}
	x.entries++
	if x.entries > x.maxEntries {
		return "", bad("more than %d entries (Store.MaxEntries)", x.maxEntries)
	}
	switch {
	case name == "":
		return "", bad("entry with an empty name")
	case strings.ContainsRune(name, 0):
		return "", bad("entry %q: name contains a NUL byte", name)
	case path.IsAbs(name):
		return "", bad("entry %q: absolute path", name)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", bad("entry %q: path escapes the release directory", name)
	}
	return clean, nil
}

// mkdir makes the directory name (mode perm, owner rwx always).
func (x *extractor) mkdir(name string, perm fs.FileMode) error {
	if name == "." {
		return nil
	}
	if err := x.parents(name); err != nil {
		return err
	}
	fi, err := x.root.Lstat(name)
	switch {
	case err == nil && !fi.IsDir():
		return bad("entry %q: a %s was already extracted there", name, atomicfile.KindOf(fi))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	case err != nil:
		if err := x.root.Mkdir(name, 0o700); err != nil {
			return err
		}
		x.created++
	}
	return x.root.Chmod(name, perm|0o700)
}

// file writes one regular file of the declared size (or less: tar and zip
// readers fail on a mismatch) with mode perm, owner-readable always.
func (x *extractor) file(name string, perm fs.FileMode, r io.Reader, size int64) error {
	if name == "." {
		return bad("entry %q: a file cannot replace the release directory", name)
	}
	rest := x.maxBytes - x.bytes
	if size > rest {
		return x.tooBig()
	}
	if err := x.clear(name); err != nil {
		return err
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	x.created++
	src := &errReader{r: &ctxReader{ctx: x.ctx, r: r}}
	n, err := io.CopyBuffer(f, io.LimitReader(src, rest+1), x.buf)
	x.bytes += n
	switch {
	case err != nil && src.err != nil && x.ctx.Err() == nil:
		// The archive, not the disk, failed: a corrupt or truncated stream.
		err = bad("entry %q: read: %w", name, src.err)
	case err == nil && n > rest:
		err = x.tooBig()
	}
	if err == nil {
		err = f.Chmod(perm | 0o400)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var be *badArtifact
		if errors.As(err, &be) || x.ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("entry %q: %w", name, err)
	}
	return nil
}

// symlink makes name a symlink to target, which must stay inside the root.
func (x *extractor) symlink(name, target string) error {
	switch {
	case name == ".":
		return bad("entry %q: a symlink cannot replace the release directory", name)
	case target == "":
		return bad("symlink %q has an empty target", name)
	case strings.ContainsRune(target, 0):
		return bad("symlink %q: target contains a NUL byte", name)
	case path.IsAbs(target):
		return bad("symlink %q -> %q: absolute targets are refused", name, target)
	}
	if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
		return bad("symlink %q -> %q: points outside the release directory", name, target)
	}
	if err := x.place(name, func() error { return x.root.Symlink(target, name) }); err != nil {
		return err
	}
	x.links = append(x.links, name)
	return nil
}

// hardlink makes name a hard link to target, a regular file extracted earlier
// (tar link names are relative to the archive's root).
func (x *extractor) hardlink(name, target string) error {
	if target == "" || path.IsAbs(target) || strings.ContainsRune(target, 0) {
		return bad("hard link %q -> %q: target must be a relative path in the archive", name, target)
	}
	to := path.Clean(target)
	if to == ".." || strings.HasPrefix(to, "../") {
		return bad("hard link %q -> %q: points outside the release directory", name, target)
	}
	if to == name {
		return bad("hard link %q points at itself", name)
	}
	if err := x.noSymlinkIn(to, name); err != nil {
		return err
	}
	fi, err := x.root.Lstat(to)
	if err != nil || !fi.Mode().IsRegular() {
		return bad("hard link %q -> %q: target is not a file extracted earlier", name, target)
	}
	return x.place(name, func() error { return x.root.Link(to, name) })
}

// place clears name, makes it with mk and counts it.
func (x *extractor) place(name string, mk func() error) error {
	if err := x.clear(name); err != nil {
		return err
	}
	if err := mk(); err != nil {
		return err
	}
	x.created++
	return nil
}

// clear prepares name for a new file or link: its parent directories exist and
// none is a symlink, and whatever an earlier entry left at name (not a
// directory) is removed, as tar does when an archive repeats a name.
func (x *extractor) clear(name string) error {
	if err := x.parents(name); err != nil {
		return err
	}
	fi, err := x.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return bad("entry %q: a directory was already extracted there", name)
	}
	return x.root.Remove(name)
}

// parents makes the missing parent directories of name (mode 0755), refusing to
// go through a symlink or a file an earlier entry made.
func (x *extractor) parents(name string) error {
	for p := range parentDirs(name) {
		fi, err := x.root.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(p, 0o755); err != nil {
				return err
			}
			if err := x.root.Chmod(p, 0o755); err != nil {
				return err
			}
			x.created++
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return bad("entry %q: writes through the symlink %q", name, p)
		case !fi.IsDir():
			return bad("entry %q: %q is a %s, not a directory", name, p, atomicfile.KindOf(fi))
		}
	}
	return nil
}

// parentDirs yields the parent directories of the slash-separated name,
// outermost first: "a", then "a/b", for "a/b/c".
func parentDirs(name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		dir := path.Dir(name)
		if dir == "." {
			return
		}
		p := ""
		for part := range strings.SplitSeq(dir, "/") {
			p = path.Join(p, part)
			if !yield(p) {
				return
			}
		}
	}
}

// noSymlinkIn refuses a path whose directories include a symlink.
func (x *extractor) noSymlinkIn(p, entry string) error {
	for q := range parentDirs(p) {
		fi, err := x.root.Lstat(q)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return bad("entry %q: goes through the symlink %q", entry, q)
		}
	}
	return nil
}

// finish checks the whole tree once every entry is written: the archive was not
// empty, and every symlink, followed the way the kernel would (through other
// symlinks, `..` after a symlink going to its target's parent), stays inside.
// Each link's own target was checked lexically when it was made; only chains
// can fool that check (s -> "." then t -> "s/..").
func (x *extractor) finish() error {
	if x.created == 0 {
		return bad("the archive is empty")
	}
	for _, l := range x.links {
		target, err := x.root.Readlink(l)
		if err != nil {
			return err
		}
		hops := maxLinkHops
		if _, err := x.resolve(dirParts(l), target, &hops); err != nil {
			return bad("symlink %q -> %q: %w", l, target, err)
		}
	}
	return nil
}

// errOutside is what resolve finds when a path leaves the root.
var errOutside = errors.New("points outside the release directory")

// resolve follows target from the directory dir (components under the root)
// and returns where it ends, as components, or errOutside.
func (x *extractor) resolve(dir []string, target string, hops *int) ([]string, error) {
	if path.IsAbs(target) {
		return nil, errOutside
	}
	cur := slices.Clone(dir)
	for part := range strings.SplitSeq(target, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, errOutside
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, part)
		fi, err := x.root.Lstat(path.Join(cur...))
		if errors.Is(err, fs.ErrNotExist) {
			continue // nothing there: the rest resolves by name only
		}
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		*hops--
		if *hops < 0 {
			return nil, errors.New("too many levels of symlinks")
		}
		next, err := x.root.Readlink(path.Join(cur...))
		if err != nil {
			return nil, err
		}
		if cur, err = x.resolve(cur[:len(cur)-1], next, hops); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// dirParts returns the components of name's directory.
func dirParts(name string) []string {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	return strings.Split(dir, "/")
}

// errReader remembers the error its reader returned, other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

func (x *extractor) tooBig() error {
	return bad("extracted contents larger than %d bytes (Store.MaxBytes)", x.maxBytes)
}
