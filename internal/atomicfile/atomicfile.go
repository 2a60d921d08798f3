// Package atomicfile replaces files and symlinks so that a reader, or the
// machine after a crash, sees either the old content or the new one, never a
// part of either.
//
// Every replacement follows the same steps: write under a unique temporary
// name in the target's own directory (rename(2) is only atomic within one file
// system), fsync the new file, rename it over the target, then fsync the
// directory so the rename itself is durable.
package atomicfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically with the permission bits perm.
// Missing parent directories are not created. On failure the temporary file
// is removed and path is left as it was.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	SyncDir(dir)
	return nil
}

// Symlink makes link a symlink to target, replacing an existing symlink
// atomically: the new link is made under a temporary name in link's directory
// and renamed over link. It refuses to replace anything that is not a symlink
// (a directory or a file at link may be someone's data).
func Symlink(target, link string) error {
	fi, err := os.Lstat(link)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Errorf("replace %s: it is a %s, not a symlink; move it away so that the link can be made", link, KindOf(fi))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("replace %s: %w", link, err)
	}
	dir := filepath.Dir(link)
	var tmp string
	for range 10 {
		tmp = filepath.Join(dir, "."+filepath.Base(link)+".tmp-"+rand.Text()[:12])
		err = os.Symlink(target, tmp)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	// rename(2) replaces a symlink or a file at link atomically, and fails on a
	// directory, so data put there since the check above is never lost.
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("link %s: %w", link, err)
	}
	SyncDir(dir)
	return nil
}

// SyncDir flushes a directory's entries to disk. It is best effort: some file
// systems refuse fsync on a directory, and the rename it follows has happened.
func SyncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// KindOf names the kind of file fi describes, for messages.
func KindOf(fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	default:
		return "special file"
	}
}
