//go:build !linux

package releasestore

import "syscall"

// syncTree flushes the file systems to disk with one sync(2) where syncfs(2)
// does not exist, before the release is published.
func syncTree(dir string) error {
	syscall.Sync()
	return nil
}
