package releasestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// Release is a release directory found on disk.
type Release struct {
	// Dir is its absolute path; Name its name in releases/.
	Dir, Name string
	// Version is the version its name starts with (the name without its
	// timestamp), as Prepare made it from the tag.
	Version string
}

// Releases lists the release directories, newest first (by the timestamp in
// their names, as Prune orders them). A missing releases/ is no release.
func (s *Store) Releases() ([]Release, error) {
	releases := s.path(releasesName)
	ents, err := os.ReadDir(releases)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	var rs []release
	for _, e := range ents {
		if e.IsDir() {
			rs = append(rs, parseRelease(e))
		}
	}
	slices.SortFunc(rs, func(a, b release) int { return b.compare(a) })
	out := make([]Release, 0, len(rs))
	for _, r := range rs {
		out = append(out, Release{Dir: filepath.Join(releases, r.name), Name: r.name, Version: VersionOf(r.name)})
	}
	return out, nil
}

// VersionOf returns the version a release directory's name starts with: the
// name without its -<timestamp>[-N] suffix.
func VersionOf(name string) string {
	if loc := stampRE.FindStringIndex(name); loc != nil {
		return name[:loc[0]]
	}
	return name
}

// ClearStaging removes everything in tmp/ that no running call owns: what a
// crash left behind (downloads, half extractions, releases being removed).
// The agent calls it at start, before any deploy.
func (s *Store) ClearStaging() error {
	tmp := s.path(tmpName)
	ents, err := os.ReadDir(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clear staging: %w", err)
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(tmp, e.Name())
		s.mu.Lock()
		owned := s.inflight[p]
		s.mu.Unlock()
		if owned {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("clear staging: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RepairCurrent makes `current` a symlink to an existing release directory
// when it is missing, dangling or not a symlink. want, a release directory
// (absolute or relative to the app directory, "" for none), is preferred;
// otherwise the newest release for which usable returns true (nil: any). A
// `current` that is not a symlink is moved into tmp/ and removed. It returns
// the release `current` points at afterwards ("" when there is none to point
// at) and whether it changed anything.
func (s *Store) RepairCurrent(want string, usable func(Release) bool) (string, bool, error) {
	link := s.path(currentName)
	fi, err := os.Lstat(link)
	existed := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", false, fmt.Errorf("repair current: %w", err)
	case fi.Mode()&fs.ModeSymlink == 0:
		s.mu.Lock()
		trash, terr := s.trash(link)
		s.mu.Unlock()
		if terr != nil {
			return "", false, fmt.Errorf("repair current: move the %s aside: %w", atomicfile.KindOf(fi), terr)
		}
		s.Logger.Warn("current was not a symlink; moved aside", "kind", atomicfile.KindOf(fi))
		if err := os.RemoveAll(trash); err != nil {
			s.Logger.Warn("remove the old current", "path", trash, "err", err)
		}
	default:
		if cur, err := s.Current(); err == nil && cur != "" {
			if _, nerr := s.releaseName(cur); nerr == nil {
				return cur, false, nil // a good link: nothing to do
			}
		}
	}
	target := ""
	if want != "" {
		if name, err := s.releaseName(want); err == nil {
			full := filepath.Join(s.path(releasesName), name)
			if fi, err := os.Stat(full); err == nil && fi.IsDir() {
				target = full
			}
		}
	}
	if target == "" {
		rels, err := s.Releases()
		if err != nil {
			return "", false, fmt.Errorf("repair current: %w", err)
		}
		for _, r := range rels {
			if usable == nil || usable(r) {
				target = r.Dir
				break
			}
		}
	}
	if target == "" {
		if err := s.unlinkCurrent(); err != nil {
			return "", false, fmt.Errorf("repair current: %w", err)
		}
		return "", existed, nil
	}
	if err := s.Switch(target); err != nil {
		return "", false, fmt.Errorf("repair current: %w", err)
	}
	return target, true, nil
}
