package releasestore

import (
	"fmt"
	"syscall"
)

// Space is what a file system has: bytes and inodes, free to an unprivileged
// user and in total.
type Space struct {
	AvailBytes, TotalBytes   uint64
	AvailInodes, TotalInodes uint64
	// BlockSize is the allocation unit: a small file takes at least one.
	BlockSize uint64
}

// StatFS is the real probe: statfs(2) of the file system holding path.
func StatFS(path string) (Space, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return Space{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return Space{
		AvailBytes:  st.Bavail * bs,
		TotalBytes:  st.Blocks * bs,
		AvailInodes: st.Ffree,
		TotalInodes: st.Files,
		BlockSize:   bs,
	}, nil
}

// Reserve is the part of the state directory's file system the Store leaves
// free for the rest of the host: Bytes, or Percent of its size when Percent
// is set, and Percent of its inodes (1% when Percent is 0).
type Reserve struct {
	Bytes   int64
	Percent float64
}

// DefaultReserve leaves 1 GiB free, or 5% of a file system smaller than 20 GiB.
var DefaultReserve = Reserve{Bytes: 1 << 30}

// bytes is the reserve in bytes for a file system of total bytes. A fixed
// reserve larger than 5% of a small file system is capped there, so that a
// small disk can still take releases.
func (r Reserve) bytes(total uint64) uint64 {
	if r.Percent > 0 {
		return uint64(float64(total) * r.Percent / 100)
	}
	b := uint64(max(r.Bytes, 0))
	if cap := total / 20; r == DefaultReserve && b > cap {
		return cap
	}
	return b
}

// inodes is the inode reserve for a file system of total inodes.
func (r Reserve) inodes(total uint64) uint64 {
	p := r.Percent
	if p <= 0 {
		p = 1
	}
	return uint64(float64(total) * p / 100)
}

// budget is what an extraction may still take from the disk before it would
// cross the reserve, measured once before it starts. A nil budget allows all.
type budget struct {
	bytes, inodes uint64 // left
	block         uint64
	space         Space
	reserve       uint64
}

// newBudget returns the budget left by sp above the reserve r, or a
// disk-full error when sp is under it already (need bytes at least).
func newBudget(sp Space, r Reserve, need int64, path string) (*budget, error) {
	rb, ri := r.bytes(sp.TotalBytes), r.inodes(sp.TotalInodes)
	b := &budget{block: max(sp.BlockSize, 1), space: sp, reserve: rb}
	if sp.AvailBytes > rb {
		b.bytes = sp.AvailBytes - rb
	}
	if sp.AvailInodes > ri {
		b.inodes = sp.AvailInodes - ri
	}
	// File systems without inode counts (some report 0 total) are not limited.
	if sp.TotalInodes == 0 {
		b.inodes = ^uint64(0)
	}
	switch {
	case need >= 0 && uint64(need) > b.bytes:
		return nil, diskFull("%s: %d bytes free, the artifact needs %d and %d are kept in reserve (agent min_free_space)", path, sp.AvailBytes, need, rb)
	case b.inodes == 0:
		return nil, diskFull("%s: %d inodes free, %d are kept in reserve (agent min_free_space)", path, sp.AvailInodes, ri)
	}
	return b, nil
}

// take charges size bytes (rounded up to whole blocks) and inodes to the
// budget, or returns a disk-full error, taking nothing, if it would cross the
// reserve.
func (b *budget) take(size int64, inodes uint64) error {
	if b == nil {
		return nil
	}
	n := uint64(max(size, 0))
	n = (n + b.block - 1) / b.block * b.block
	if n > b.bytes {
		return diskFull("extracting would leave less than the reserve of %d bytes free (agent min_free_space)", b.reserve)
	}
	if inodes > b.inodes {
		return diskFull("extracting would leave fewer free inodes than the reserve (agent min_free_space)")
	}
	b.bytes -= n
	b.inodes -= inodes
	return nil
}

// takeBytes charges n bytes exactly (a download written in chunks).
func (b *budget) takeBytes(n int64) error {
	if b == nil {
		return nil
	}
	if uint64(n) > b.bytes {
		return diskFull("downloading would leave less than the reserve of %d bytes free (agent min_free_space)", b.reserve)
	}
	b.bytes -= uint64(n)
	return nil
}
