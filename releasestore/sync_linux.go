package releasestore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncTree flushes the file system holding dir to disk with one syncfs(2),
// rather than one fsync per extracted file, before the release is published.
func syncTree(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
