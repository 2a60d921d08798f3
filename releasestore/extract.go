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

// maxNameLen and maxPathLen are the longest file name and path an entry may
// have (NAME_MAX and PATH_MAX on Linux): longer ones can never be extracted.
const (
	maxNameLen = 255
	maxPathLen = 4095
)

// maxLinkHops caps the symlinks followed when checking where one resolves, as
// the kernel does (ELOOP).
const maxLinkHops = 40

// extract unpacks the downloaded artifact f (n bytes) into the staging directory.
func (s *Store) extract(ctx context.Context, f *os.File, n int64, kind archive.Format, artifact, staging string, budget *budget) error {
	root, err := os.OpenRoot(staging)
	if err != nil {
		return fmt.Errorf("extract %s: %w", artifact, err)
	}
	defer root.Close()
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	x := &extractor{
		ctx:        ctx,
		root:       root,
		maxBytes:   s.maxBytes(),
		maxEntries: s.maxEntries(),
		maxDepth:   s.maxDepth(),
		mask:       s.modeMask(),
		budget:     budget,
		buf:        buf[:],
		dirs:       map[string]bool{".": true},
	}
	defer x.closeDirs()
	if kind == archive.Zip {
		err = x.zip(f, n)
	} else {
		err = x.tarStream(io.NewSectionReader(f, 0, n), kind)
	}
	if err == nil {
		err = x.finish()
	}
	if err == nil {
		if x.created <= smallTree {
			err = x.syncEach()
		} else {
			err = syncTree(staging)
		}
	}
	err = classifyLocal(err)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("extract %s: %w", artifact, cerr)
		}
		return fmt.Errorf("extract %s: %w", artifact, err)
	}
	return nil
}

// smallTree is the most files, directories and links a release may have for
// extract to fsync them one by one; a larger tree is flushed with one
// syncfs(2). A few fsyncs cost less than a syncfs, which writes back the
// whole file system, other apps' deploys included, so that on a host with
// many small apps concurrent deploys queued behind each other's syncfs.
const smallTree = 32

// syncEach fsyncs every file and directory extracted: the small-tree
// counterpart of syncTree. Symlinks live in their directories' entries.
func (x *extractor) syncEach() error {
	names := append([]string(nil), x.files...)
	for d := range x.dirs {
		names = append(names, d)
	}
	for _, name := range names {
		f, err := x.root.Open(name)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", name, err)
		}
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
	maxDepth   int
	mask       fs.FileMode // permission bits removed from every entry
	budget     *budget     // what the disk may still take; nil for no check
	buf        []byte

	// dirs holds the directories made or checked so far (names under root):
	// each is a real directory, not a symlink, and stays one (an entry at a
	// directory's name is refused), so it is never checked again.
	dirs map[string]bool
	// stack is the chain of directories opened last, outermost first: the
	// parent of the previous entry. Archives list a tree depth first, so the
	// next entry's parent is nearly always on it, and each entry costs a few
	// system calls however deep it is.
	stack []openDir

	bytes   int64    // bytes of file contents written so far
	entries int      // archive entries seen so far
	created int      // files, directories and links made
	links   []string // symlinks made, checked again by finish
	files   []string // the first smallTree+1 regular files made, for syncEach
	name    string   // the entry being extracted, for messages
}

// tarStream unpacks a tar archive, compressed or not, read from r.
func (x *extractor) tarStream(r io.Reader, kind archive.Format) error {
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		bufReaders.Put(br)
	}()
	var dr io.Reader = br
	switch kind {
	case archive.TarGz:
		zr, err := gzip.NewReader(dr)
		if err != nil {
			return classifyRead("read gzip", err)
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
		return classifyRead("read compressed stream after the tar end", err)
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
			return classifyRead("read tar", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // pax metadata (git archive writes one), not a file
		}
		name, err := x.entry(hdr.Name)
		if err != nil {
			return err
		}
		mode := fs.FileMode(hdr.Mode) & fs.ModePerm &^ x.mask
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
		return x.mkdir(name, mode.Perm()&^x.mask)
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
	return x.file(name, mode.Perm()&^x.mask, rc, int64(zf.UncompressedSize64))
}

// entry counts one archive entry and returns its name cleaned, refusing names
// that are absolute or climb out of the root. "." is the root itself.
func (x *extractor) entry(name string) (string, error) {
	if err := x.ctx.Err(); err != nil {
		return "", err
	}
	x.entries++
	x.name = name
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
	if len(clean) > maxPathLen {
		return "", bad("entry %q...: path longer than %d bytes", clean[:64], maxPathLen)
	}
	depth, part := 1, 0
	for i := 0; i < len(clean); i++ {
		if clean[i] != '/' {
			part++
			continue
		}
		if part > maxNameLen {
			break
		}
		depth, part = depth+1, 0
	}
	switch {
	case part > maxNameLen:
		return "", bad("entry %q: a name is longer than %d bytes", clip(clean), maxNameLen)
	case depth > x.maxDepth:
		return "", bad("entry %q: deeper than %d levels (Store.MaxDepth)", clip(clean), x.maxDepth)
	}
	return clean, nil
}

// openDir is a directory of the tree held open, with its name under the root.
type openDir struct {
	name string
	root *os.Root
}

// dirOf returns dir (a name under the root, "." the root itself) opened, using
// and updating the stack of open directories. dir and its ancestors are in
// x.dirs: real directories, so opening them one component at a time from their
// parent cannot leave the root.
func (x *extractor) dirOf(dir string) (*os.Root, error) {
	if dir == "." {
		return x.root, nil
	}
	for len(x.stack) > 0 {
		top := x.stack[len(x.stack)-1].name
		if top == dir {
			return x.stack[len(x.stack)-1].root, nil
		}
		if len(dir) > len(top) && dir[len(top)] == '/' && dir[:len(top)] == top {
			break
		}
		_ = x.stack[len(x.stack)-1].root.Close()
		x.stack = x.stack[:len(x.stack)-1]
	}
	base, rest := x.root, dir
	if n := len(x.stack); n > 0 {
		base, rest = x.stack[n-1].root, dir[len(x.stack[n-1].name)+1:]
	}
	name := dir[:len(dir)-len(rest)]
	for part := range strings.SplitSeq(rest, "/") {
		r, err := base.OpenRoot(part)
		if err != nil {
			return nil, err
		}
		name += part
		x.stack = append(x.stack, openDir{name: name, root: r})
		name += "/"
		base = r
	}
	return base, nil
}

// closeDirs closes the open directories of the stack.
func (x *extractor) closeDirs() {
	for _, d := range x.stack {
		_ = d.root.Close()
	}
	x.stack = nil
}

// ensureDir makes dir and its missing ancestors (mode 0755), refusing to go
// through a symlink or a file an earlier entry made. Known directories are not
// looked at again, so an entry costs the same at any depth.
func (x *extractor) ensureDir(dir string) error {
	if x.dirs[dir] {
		return nil
	}
	var missing []string
	for d := dir; !x.dirs[d]; d = path.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		p := missing[i]
		parent, err := x.dirOf(path.Dir(p))
		if err != nil {
			return err
		}
		base := path.Base(p)
		fi, err := parent.Lstat(base)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := x.budget.take(0, 1); err != nil {
				return err
			}
			if err := parent.Mkdir(base, 0o755); err != nil {
				return err
			}
			if err := parent.Chmod(base, 0o755); err != nil {
				return err
			}
			x.created++
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return bad("entry %q: writes through the symlink %q", x.name, p)
		case !fi.IsDir():
			return bad("entry %q: %q is a %s, not a directory", x.name, p, atomicfile.KindOf(fi))
		}
		x.dirs[p] = true
	}
	return nil
}

// mkdir makes the directory name (mode perm, owner rwx always).
func (x *extractor) mkdir(name string, perm fs.FileMode) error {
	if name == "." {
		return nil
	}
	dir := path.Dir(name)
	if err := x.ensureDir(dir); err != nil {
		return err
	}
	parent, err := x.dirOf(dir)
	if err != nil {
		return err
	}
	base := path.Base(name)
	if !x.dirs[name] {
		fi, err := parent.Lstat(base)
		switch {
		case err == nil && !fi.IsDir():
			return bad("entry %q: a %s was already extracted there", name, atomicfile.KindOf(fi))
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return err
		case err != nil:
			if err := x.budget.take(0, 1); err != nil {
				return err
			}
			if err := parent.Mkdir(base, 0o700); err != nil {
				return err
			}
			x.created++
		}
		x.dirs[name] = true
	}
	return parent.Chmod(base, perm|0o700)
}

// file writes one regular file of the declared size (or less: tar and zip
// readers fail on a mismatch) with mode perm, owner-readable always. It is not
// synced here: the whole tree is, once, by syncTree.
func (x *extractor) file(name string, perm fs.FileMode, r io.Reader, size int64) error {
	if name == "." {
		return bad("entry %q: a file cannot replace the release directory", name)
	}
	rest := x.maxBytes - x.bytes
	if size > rest {
		return x.tooBig()
	}
	if err := x.budget.take(size, 1); err != nil {
		return err
	}
	parent, base, err := x.clear(name)
	if err != nil {
		return err
	}
	f, err := parent.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	x.created++
	if len(x.files) <= smallTree {
		x.files = append(x.files, name)
	}
	src := &errReader{r: &ctxReader{ctx: x.ctx, r: r}}
	n, err := io.CopyBuffer(f, io.LimitReader(src, rest+1), x.buf)
	x.bytes += n
	switch {
	case err != nil && src.err != nil && x.ctx.Err() == nil:
		// The archive, not the disk, failed: a corrupt or truncated stream.
		err = classifyRead(fmt.Sprintf("entry %q: read", name), src.err)
	case err == nil && n > rest:
		err = x.tooBig()
	case err == nil && n > size:
		// A zip entry longer than it said: charge the disk for the rest.
		err = x.budget.take(n-size, 0)
	}
	if err == nil {
		err = f.Chmod(perm | 0o400)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if classified(err) || x.ctx.Err() != nil {
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
	case len(target) > maxLinkTarget:
		return bad("symlink %q: target longer than %d bytes", name, maxLinkTarget)
	}
	if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
		return bad("symlink %q -> %q: points outside the release directory", name, target)
	}
	if err := x.budget.take(0, 1); err != nil {
		return err
	}
	parent, base, err := x.clear(name)
	if err != nil {
		return err
	}
	if err := parent.Symlink(target, base); err != nil {
		return err
	}
	x.created++
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
	// The target's directory must be one extracted as a real directory, so
	// that no symlink lies on the way to it.
	if !x.dirs[path.Dir(to)] {
		return bad("hard link %q -> %q: target is not a file extracted earlier", name, target)
	}
	tdir, err := x.dirOf(path.Dir(to))
	if err != nil {
		return err
	}
	fi, err := tdir.Lstat(path.Base(to))
	if err != nil || !fi.Mode().IsRegular() {
		return bad("hard link %q -> %q: target is not a file extracted earlier", name, target)
	}
	if _, _, err := x.clear(name); err != nil {
		return err
	}
	if err := x.root.Link(to, name); err != nil {
		return err
	}
	x.created++
	return nil
}

// clear prepares name for a new file or link: its parent directories exist and
// none is a symlink, and whatever an earlier entry left at name (not a
// directory) is removed, as tar does when an archive repeats a name. It
// returns name's parent, opened, and name's last component.
func (x *extractor) clear(name string) (*os.Root, string, error) {
	dir := path.Dir(name)
	if err := x.ensureDir(dir); err != nil {
		return nil, "", err
	}
	if x.dirs[name] {
		return nil, "", bad("entry %q: a directory was already extracted there", name)
	}
	parent, err := x.dirOf(dir)
	if err != nil {
		return nil, "", err
	}
	base := path.Base(name)
	fi, err := parent.Lstat(base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return parent, base, nil
	case err != nil:
		return nil, "", err
	case fi.IsDir():
		return nil, "", bad("entry %q: a directory was already extracted there", name)
	case fi.Mode()&fs.ModeSymlink != 0:
		// Replacing a symlink would let the archive decide, by its order,
		// what a name means; such an archive is refused.
		return nil, "", bad("entry %q: conflicts with the symlink extracted earlier at that name", name)
	}
	return parent, base, parent.Remove(base)
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
