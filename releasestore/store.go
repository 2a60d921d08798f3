// Package releasestore keeps one app's releases on disk for the file-based runners
// (server, assets). Its words:
//
//   - App directory: <state_dir>/apps/<app>, the Store's root.
//   - Release directory: releases/<version>-<UTC timestamp>[-N], one per deploy,
//     holding one extracted artifact. It appears only once complete.
//   - Current: the symlink `current`, relative, pointing at the release directory
//     being served. It is swapped atomically: a new link is made under a temporary
//     name beside it and renamed over it, so a reader never finds it missing.
//   - Staging: tmp/, where downloads and extractions in progress live. It is on the
//     same file system as releases/, so moving a finished release in is one rename.
//   - Prune: removal of old release directories beyond the number kept, and of what
//     a crash left in tmp/.
//
// Prepare streams an artifact to disk (memory does not grow with its size), checks
// its length and SHA-256, and extracts it without ever writing outside the staging
// directory. Supported artifacts, chosen by the file name's suffix
// (case-insensitive): .tar.gz/.tgz, .tar.bz2/.tbz2/.tbz, .tar.xz/.txz, .tar, .zip.
// Any other name is a bare executable, placed in the release under its own name
// with mode 0755. The contents are not sniffed: a file named "myapp" is an
// executable even if it starts with gzip or zip magic bytes, so a release's layout
// depends only on its name.
package releasestore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/archive"
	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// Defaults for the Store's fields.
const (
	// DefaultKeep is the number of release directories kept when NewStore gets 0.
	DefaultKeep = 7
	// DefaultMaxBytes caps an artifact's download and the total size of its
	// extracted files (10 GiB), so a tar or zip bomb fills no disk.
	DefaultMaxBytes int64 = 10 << 30
	// DefaultMaxEntries caps the number of entries in one archive.
	DefaultMaxEntries = 100_000
	// DefaultMaxDepth caps the directory levels of an archive's paths.
	DefaultMaxDepth = 256
	// DefaultModeMask is removed from every extracted mode: group and world
	// write.
	DefaultModeMask fs.FileMode = 0o022
)

// TimestampFormat is the UTC timestamp in release directory names.
const TimestampFormat = "20060102T150405Z"

// Names inside the app directory.
const (
	releasesName = "releases"
	tmpName      = "tmp"
	currentName  = "current"
)

// ErrBadArtifact is wrapped by Prepare's errors that are a property of the
// artifact itself, so retrying the same release cannot help: checksum mismatch, a
// corrupt or empty archive, an unsafe entry, a size or entry-count limit exceeded.
// Network failures, short downloads, cancellation and local disk errors do not
// wrap it.
var ErrBadArtifact = errors.New("bad artifact")

// badArtifact marks err as ErrBadArtifact without changing its message.
type badArtifact struct{ err error }

func (e *badArtifact) Error() string { return e.err.Error() }
func (e *badArtifact) Unwrap() error { return e.err }

func (e *badArtifact) Is(target error) bool { return target == ErrBadArtifact }

// bad returns a formatted error that wraps ErrBadArtifact.
func bad(format string, args ...any) error {
	return &badArtifact{err: fmt.Errorf(format, args...)}
}

// Store keeps one app's release directories and its `current` link.
//
// The exported fields may be changed after NewStore and before the first call.
// A Store is safe for concurrent use; a second Store (or process) working on the
// same AppDir at the same time is not supported.
type Store struct {
	// AppDir is the app's directory. It should be absolute; paths returned by
	// the Store are joined to it.
	AppDir string
	// Keep is how many release directories Prune keeps, `current`'s included.
	// Values below 1 count as 1.
	Keep int
	// MaxBytes caps an artifact's download and the total size of the files
	// extracted from it.
	MaxBytes int64
	// MaxEntries caps the number of entries of an archive.
	MaxEntries int
	// MaxDepth caps the directory levels of an archive's paths.
	MaxDepth int
	// ModeMask holds the permission bits removed from every extracted file
	// and directory (NewStore sets DefaultModeMask; 0 keeps them all).
	ModeMask fs.FileMode
	// Reserve is the space and inodes of the app directory's file system
	// that Prepare leaves free: it refuses to start a download that would
	// cross it, and stops an extraction as soon as it would, with an error
	// wrapping ErrDiskFull.
	Reserve Reserve
	// Probe measures the file system holding a path (StatFS when nil); tests
	// replace it.
	Probe func(path string) (Space, error)
	// Now returns the time used in release directory names.
	Now func() time.Time
	// Logger receives the Store's own events (pruned releases, failed cleanups).
	Logger *slog.Logger

	mu sync.Mutex
	// inflight holds the paths in tmp/ that a running Prepare owns.
	inflight map[string]bool
	// pending holds release directories prepared but neither switched to nor
	// removed yet; Prune leaves them alone.
	pending map[string]bool
}

// NewStore returns a Store for the app directory appDir keeping keep releases (0
// means DefaultKeep). A nil logger discards. It does no I/O: directories are made
// by the first Prepare.
func NewStore(appDir string, keep int, logger *slog.Logger) *Store {
	if keep == 0 {
		keep = DefaultKeep
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		AppDir:     filepath.Clean(appDir),
		Keep:       keep,
		MaxBytes:   DefaultMaxBytes,
		MaxEntries: DefaultMaxEntries,
		MaxDepth:   DefaultMaxDepth,
		ModeMask:   DefaultModeMask,
		Reserve:    DefaultReserve,
		Now:        time.Now,
		Logger:     logger,
		inflight:   map[string]bool{},
		pending:    map[string]bool{},
	}
}

// Prepared is a release directory made by Prepare.
type Prepared struct {
	// Dir is the absolute path of the new release directory.
	Dir string
	// SHA256 is the artifact's digest, lower-case hex.
	SHA256 string
	// Size is the artifact's length in bytes.
	Size int64
}

// Prepare downloads, verifies and extracts one artifact into a new release
// directory and returns it. It never touches `current`.
//
// open streams the artifact; Prepare closes the reader, and closes it from another
// goroutine as soon as ctx is done so that a blocked Read returns. size is the
// expected length in bytes, or -1 when unknown. wantSHA256 is the published
// SHA-256 in hex, or "" when the release publishes none.
//
// On any failure (ctx done, a read error, a short or long download, a checksum
// mismatch, a corrupt archive, an unsafe entry, a limit exceeded) Prepare removes
// everything it created and returns an error; errors about the artifact itself
// wrap ErrBadArtifact.
func (s *Store) Prepare(ctx context.Context, version, artifactName string, size int64, wantSHA256 string, open func(context.Context) (io.ReadCloser, error)) (Prepared, error) {
	return s.PrepareChecked(ctx, version, artifactName, size, wantSHA256, open, nil)
}

// Check is a look at a downloaded artifact before it is extracted: r reads
// its size bytes. A non-nil error stops Prepare, which removes what it made
// and returns the error wrapped (errors.Is and errors.As see it).
type Check func(r io.ReaderAt, size int64) error

// PrepareChecked is Prepare with check (when not nil) called once the
// artifact is downloaded and its length and SHA-256 verified, before it is
// extracted or moved into the release: the agent verifies its signature
// there, on exactly the bytes it will run.
func (s *Store) PrepareChecked(ctx context.Context, version, artifactName string, size int64, wantSHA256 string, open func(context.Context) (io.ReadCloser, error), check Check) (Prepared, error) {
	start := time.Now()
	base, err := releaseBase(version)
	if err != nil {
		return Prepared{}, err
	}
	if err := checkArtifactName(artifactName); err != nil {
		return Prepared{}, err
	}
	want, err := normalizeSHA256(wantSHA256)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", artifactName, err)
	}
	if size > s.maxBytes() {
		return Prepared{}, bad("prepare %s: artifact of %d bytes is larger than the limit of %d bytes", artifactName, size, s.maxBytes())
	}
	if err := s.ensureDirs(); err != nil {
		return Prepared{}, err
	}
	space, err := s.budget(size)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", artifactName, err)
	}

	staging, err := s.makeTemp("stage-", true)
	if err != nil {
		return Prepared{}, err
	}
	defer s.forget(staging)
	dlPath, err := s.makeTemp("download-", false)
	if err != nil {
		s.removeAll(staging)
		return Prepared{}, err
	}
	defer s.forget(dlPath)

	dir, sum, n, err := s.prepare(ctx, base, artifactName, size, want, open, check, staging, dlPath, space)
	if rerr := os.Remove(dlPath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		s.Logger.Warn("remove download", "path", dlPath, "err", rerr)
	}
	if err != nil {
		s.removeAll(staging)
		return Prepared{}, err
	}
	s.Logger.Debug("release prepared", "version", version, "artifact", artifactName, "dir", dir,
		"bytes", n, "sha256", sum, "took", time.Since(start).Round(time.Millisecond))
	return Prepared{Dir: dir, SHA256: sum, Size: n}, nil
}

// prepare is Prepare after the checks of its arguments: staging and dlPath exist
// and the caller removes them.
func (s *Store) prepare(ctx context.Context, base, artifact string, size int64, want string, open func(context.Context) (io.ReadCloser, error), check Check, staging, dlPath string, space *budget) (dir, sum string, n int64, err error) {
	f, err := os.OpenFile(dlPath, os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return "", "", 0, fmt.Errorf("prepare %s: %w", artifact, err)
	}
	defer f.Close()
	sum, n, err = s.download(ctx, &budgetWriter{f: f, b: space}, artifact, size, want, open)
	if err != nil {
		return "", "", 0, classifyLocal(err)
	}
	if check != nil {
		if err := check(f, n); err != nil {
			return "", "", 0, fmt.Errorf("prepare %s: %w", artifact, err)
		}
	}
	kind := archive.Of(artifact)
	if kind == archive.None {
		// The download is the release: move it in rather than copying it.
		if err := f.Chmod(0o755); err != nil {
			return "", "", 0, fmt.Errorf("prepare %s: %w", artifact, err)
		}
		if err := os.Rename(dlPath, filepath.Join(staging, artifact)); err != nil {
			return "", "", 0, fmt.Errorf("prepare %s: %w", artifact, err)
		}
	} else if err := s.extract(ctx, f, n, kind, artifact, staging, space); err != nil {
		return "", "", 0, err
	}
	if err := os.Chmod(staging, 0o755); err != nil {
		return "", "", 0, fmt.Errorf("prepare %s: %w", artifact, err)
	}
	dir, err = s.publish(staging, base)
	if err != nil {
		return "", "", 0, fmt.Errorf("prepare %s: %w", artifact, err)
	}
	return dir, sum, n, nil
}

// publish renames the finished staging directory to a free name
// releases/<base>-<timestamp>[-N] and marks it pending.
func (s *Store) publish(staging, base string) (string, error) {
	name := base + "-" + s.Now().UTC().Format(TimestampFormat)
	releases := s.path(releasesName)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i <= 1000; i++ {
		candidate := name
		if i > 1 {
			candidate = name + "-" + strconv.Itoa(i)
		}
		dst := filepath.Join(releases, candidate)
		if _, err := os.Lstat(dst); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		// Staging is never empty (an empty archive is refused), so the rename
		// fails rather than replaces if the name was taken meanwhile.
		if err := os.Rename(staging, dst); err != nil {
			if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
				continue
			}
			return "", err
		}
		atomicfile.SyncDir(releases)
		s.pending[dst] = true
		return dst, nil
	}
	return "", fmt.Errorf("no free release directory name for %s in %s", name, releases)
}

// Current returns the absolute path of the release directory `current` points
// at, or "" when there is no `current` yet. A `current` that is not a symlink, or
// that points at nothing, is an error.
func (s *Store) Current() (string, error) {
	link := s.path(currentName)
	target, err := os.Readlink(link)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		if fi, lerr := os.Lstat(link); lerr == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return "", fmt.Errorf("read current: %s is a %s, not a symlink; move it away", link, atomicfile.KindOf(fi))
		}
		return "", fmt.Errorf("read current: %w", err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(s.AppDir, target)
	}
	target = filepath.Clean(target)
	if _, err := os.Stat(target); err != nil {
		return "", fmt.Errorf("read current: it points at %s: %w", target, err)
	}
	return target, nil
}

// Switch atomically points `current` at dir, a directory in releases/. Once it
// returns, `current` resolves to dir; at no moment is `current` missing.
func (s *Store) Switch(dir string) error {
	name, err := s.releaseName(dir)
	if err != nil {
		return fmt.Errorf("switch current: %w", err)
	}
	full := filepath.Join(s.path(releasesName), name)
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Lstat(full)
	if err != nil {
		return fmt.Errorf("switch current: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("switch current: %s is a %s, not a release directory", full, atomicfile.KindOf(fi))
	}
	if err := atomicfile.Symlink(filepath.Join(releasesName, name), s.path(currentName)); err != nil {
		return fmt.Errorf("switch current: %w", err)
	}
	delete(s.pending, full)
	s.Logger.Debug("current switched", "dir", full)
	return nil
}

// Activation returns the two functions a runners.Deployment carries for dir:
// activate switches `current` to dir; rollback puts `current` back as it was when
// Activation was called: the same target (even one since removed by hand), or no
// link at all if there was none.
func (s *Store) Activation(dir string) (activate, rollback func() error, err error) {
	link := s.path(currentName)
	prev, err := os.Readlink(link)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		prev = ""
	case err != nil:
		if fi, lerr := os.Lstat(link); lerr == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return nil, nil, fmt.Errorf("read current: %s is a %s, not a symlink; move it away", link, atomicfile.KindOf(fi))
		}
		return nil, nil, fmt.Errorf("read current: %w", err)
	}
	activate = func() error { return s.Switch(dir) }
	rollback = func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if prev == "" {
			return s.unlinkCurrent()
		}
		if err := atomicfile.Symlink(prev, link); err != nil {
			return fmt.Errorf("switch current back: %w", err)
		}
		return nil
	}
	return activate, rollback, nil
}

// unlinkCurrent removes the `current` symlink if there is one.
func (s *Store) unlinkCurrent() error {
	link := s.path(currentName)
	fi, err := os.Lstat(link)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove current: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("remove current: %s is a %s, not a symlink", link, atomicfile.KindOf(fi))
	}
	if err := os.Remove(link); err != nil {
		return fmt.Errorf("remove current: %w", err)
	}
	atomicfile.SyncDir(s.AppDir)
	return nil
}

// Remove deletes a release directory that is not `current`'s target, typically
// one prepared for a deploy that failed.
func (s *Store) Remove(dir string) error {
	name, err := s.releaseName(dir)
	if err != nil {
		return fmt.Errorf("remove release: %w", err)
	}
	full := filepath.Join(s.path(releasesName), name)
	s.mu.Lock()
	if name == s.currentName() {
		s.mu.Unlock()
		return fmt.Errorf("remove release: %s is current", dir)
	}
	trash, err := s.trash(full)
	if err == nil {
		delete(s.pending, full)
		s.inflight[trash] = true
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove release: %w", err)
	}
	defer s.forget(trash)
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove release: %w", err)
	}
	return nil
}

// Prune removes the oldest release directories so that at most Keep remain,
// `current`'s target always among them, and clears what a crash left in tmp/.
// Releases are ordered by the timestamp in their names (the modification time
// for a name without one). Directories prepared but neither switched to nor
// removed yet are left alone and not counted. It returns every removal error.
func (s *Store) Prune() error {
	releases := s.path(releasesName)
	tmp := s.path(tmpName)
	var errs []error

	// Decide and move the old releases out of releases/ under the lock, so that
	// no Switch or Prepare runs in between; delete them after.
	s.mu.Lock()
	cur := s.currentName()
	dirs, err := os.ReadDir(releases)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("prune: %w", err))
	}
	var olds []release
	for _, e := range dirs {
		if e.IsDir() && !s.pending[filepath.Join(releases, e.Name())] {
			olds = append(olds, parseRelease(e))
		}
	}
	slices.SortFunc(olds, func(a, b release) int { return b.compare(a) })
	slots := max(s.Keep, 1)
	if cur != "" && slices.ContainsFunc(olds, func(r release) bool { return r.name == cur }) {
		slots--
	}
	var removed []string
	for _, r := range olds {
		if r.name == cur {
			continue
		}
		if slots > 0 {
			slots--
			continue
		}
		full := filepath.Join(releases, r.name)
		if _, err := s.trash(full); err != nil {
			errs = append(errs, fmt.Errorf("prune %s: %w", full, err))
			continue
		}
		removed = append(removed, full)
	}
	// Everything in tmp/ that no running call owns: the releases just moved
	// there, and what a crash left behind.
	stale, err := os.ReadDir(tmp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("prune: %w", err))
	}
	var leftovers []string
	for _, e := range stale {
		if p := filepath.Join(tmp, e.Name()); !s.inflight[p] {
			leftovers = append(leftovers, p)
		}
	}
	s.mu.Unlock()

	for _, p := range leftovers {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("prune %s: %w", p, err))
		}
	}
	for _, full := range removed {
		s.Logger.Info("old release removed", "dir", full)
	}
	return errors.Join(errs...)
}

// trash moves a release directory into tmp/ (atomic) and returns its new path,
// so that a crash while deleting it leaves no half release in releases/. The
// caller holds s.mu.
func (s *Store) trash(full string) (string, error) {
	if err := os.MkdirAll(s.path(tmpName), 0o755); err != nil {
		return "", err
	}
	trash := filepath.Join(s.path(tmpName), "removing-"+rand.Text()[:12])
	if err := os.Rename(full, trash); err != nil {
		return "", err
	}
	atomicfile.SyncDir(s.path(releasesName))
	return trash, nil
}

// release is one directory of releases/ with its sort key.
type release struct {
	name   string
	stamp  time.Time
	suffix int
}

// stampRE matches the end of a release directory name: -<timestamp>[-N].
var stampRE = regexp.MustCompile(`-(\d{8}T\d{6}Z)(?:-(\d+))?$`)

func parseRelease(e fs.DirEntry) release {
	r := release{name: e.Name()}
	if m := stampRE.FindStringSubmatch(r.name); m != nil {
		if t, err := time.Parse(TimestampFormat, m[1]); err == nil {
			r.stamp = t
			r.suffix, _ = strconv.Atoi(m[2])
			return r
		}
	}
	if fi, err := e.Info(); err == nil {
		r.stamp = fi.ModTime()
	}
	return r
}

// compare orders releases oldest first.
func (r release) compare(o release) int {
	if c := r.stamp.Compare(o.stamp); c != 0 {
		return c
	}
	if r.suffix != o.suffix {
		return r.suffix - o.suffix
	}
	return strings.Compare(r.name, o.name)
}

// path returns a path inside the app directory.
func (s *Store) path(name string) string { return filepath.Join(s.AppDir, name) }

func (s *Store) maxBytes() int64 {
	if s.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return s.MaxBytes
}

func (s *Store) maxDepth() int {
	if s.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return s.MaxDepth
}

func (s *Store) modeMask() fs.FileMode { return s.ModeMask & fs.ModePerm }

// budget measures the app directory's file system and returns what a Prepare
// of an artifact of size bytes (-1: unknown) may take from it.
func (s *Store) budget(size int64) (*budget, error) {
	probe := s.Probe
	if probe == nil {
		probe = StatFS
	}
	sp, err := probe(s.path(tmpName))
	if err != nil {
		return nil, err
	}
	return newBudget(sp, s.Reserve, size, s.AppDir)
}

func (s *Store) maxEntries() int {
	if s.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return s.MaxEntries
}

// ensureDirs makes releases/ and tmp/.
func (s *Store) ensureDirs() error {
	for _, name := range []string{releasesName, tmpName} {
		if err := os.MkdirAll(s.path(name), 0o755); err != nil {
			return fmt.Errorf("prepare app directory: %w", err)
		}
	}
	return nil
}

// makeTemp creates a directory or an empty file in tmp/ and records it as owned
// by a running Prepare, so that Prune leaves it alone.
func (s *Store) makeTemp(prefix string, dir bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dir {
		p, err := os.MkdirTemp(s.path(tmpName), prefix)
		if err != nil {
			return "", fmt.Errorf("prepare: %w", err)
		}
		s.inflight[p] = true
		return p, nil
	}
	f, err := os.CreateTemp(s.path(tmpName), prefix)
	if err != nil {
		return "", fmt.Errorf("prepare: %w", err)
	}
	_ = f.Close()
	s.inflight[f.Name()] = true
	return f.Name(), nil
}

func (s *Store) forget(p string) {
	s.mu.Lock()
	delete(s.inflight, p)
	s.mu.Unlock()
}

// removeAll removes p, logging (not returning) a failure: it runs while another
// error is being returned.
func (s *Store) removeAll(p string) {
	if err := os.RemoveAll(p); err != nil {
		s.Logger.Warn("clean up after a failed prepare", "path", p, "err", err)
	}
}

// releaseName checks that dir is a direct child of releases/ and returns its name.
func (s *Store) releaseName(dir string) (string, error) {
	releases := s.path(releasesName)
	abs := dir
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(s.AppDir, dir)
	}
	rel, err := filepath.Rel(releases, filepath.Clean(abs))
	if err != nil || rel == "." || rel == ".." || strings.ContainsRune(rel, filepath.Separator) {
		return "", fmt.Errorf("%s is not a release directory in %s", dir, releases)
	}
	return rel, nil
}

// currentName returns the name of the release directory `current` points at, or
// "" when there is none or it points elsewhere. It does not require the target
// to exist.
func (s *Store) currentName() string {
	target, err := os.Readlink(s.path(currentName))
	if err != nil {
		return ""
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(s.AppDir, target)
	}
	name, err := s.releaseName(target)
	if err != nil {
		return ""
	}
	return name
}

// releaseBase turns a version into the first part of a directory name.
func releaseBase(version string) (string, error) {
	if version == "" {
		return "", errors.New("prepare: empty version")
	}
	b := []byte(version)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '+'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b), nil
}

// checkArtifactName refuses names that are not one plain file name.
func checkArtifactName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("prepare: artifact name %q is not a plain file name", name)
	}
	return nil
}

// normalizeSHA256 returns want in lower case, checked to be 64 hex digits.
func normalizeSHA256(want string) (string, error) {
	want = strings.ToLower(strings.TrimSpace(want))
	if want == "" {
		return "", nil
	}
	if len(want) != 64 || strings.Trim(want, "0123456789abcdef") != "" {
		return "", fmt.Errorf("published checksum %q is not a SHA-256 in hex", want)
	}
	return want, nil
}
