package agent

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dewy-agent/dewy-agent/releasestore"
)

// TestDiskFullWaitsForRoom: after disk_full the app does not try again while
// the disk has no more room than when it failed (it looks every
// diskFullRecheck), tries at once when space is freed, and deploys; with no
// room freed it tries again after diskFullMaxWait.
func TestDiskFullWaitsForRoom(t *testing.T) {
	const gib = 1 << 30
	disk := newFakeDisk(100*gib, 1<<21)
	disk.avail.Store(gib) // under the 2 GiB reserve
	disk.inodes.Store(1 << 20)
	a, w, clk := startOnDisk(t, disk, "2GiB")
	avail, inodes, statfs := &disk.avail, &disk.inodes, disk.statfs
	if s := w.snapshot(); s.State != StateDiskFull || s.Deployed != "" {
		t.Fatalf("status = %+v, want disk_full", s)
	}

	// recheck lets one look at the disk pass.
	recheck := func() {
		t.Helper()
		waitFor(t, "the wait for room", func() bool { return clk.pending(diskFullRecheck) == 1 })
		clk.Advance(diskFullRecheck)
	}
	polls := w.polls.Load()
	// A little more room (under freedBytes) and a minute's worth of looks:
	// no new try.
	avail.Add(freedBytes / 2)
	for range 6 {
		recheck()
	}
	waitFor(t, "the wait for room", func() bool { return clk.pending(diskFullRecheck) == 1 })
	if n := w.polls.Load(); n != polls {
		t.Fatalf("%d polls while the disk had no more room; want none", n-polls)
	}
	if s := w.snapshot(); s.NextCheck.Sub(clk.Now()) < diskFullMaxWait-2*diskFullRecheck*6 {
		t.Errorf("next check %s away, want about %s", s.NextCheck.Sub(clk.Now()), diskFullMaxWait)
	}

	// No room for an hour: one try (still full), and the wait again.
	clk.Advance(diskFullMaxWait)
	waitFor(t, "the hourly try", func() bool { return w.polls.Load() == polls+1 })
	waitFor(t, "the poll to end", func() bool { return w.snapshot().State == StateDiskFull && clk.pending(diskFullRecheck) == 1 })

	// Room freed: the next look tries again, and deploys.
	avail.Store(50 * gib)
	recheck()
	waitFor(t, "v1.0.0 deployed once room was freed", deployed(a, "site"))
	if n := w.polls.Load(); n != polls+2 {
		t.Errorf("%d polls, want 2 (the hourly one and the one after room was freed)", n-polls)
	}

	// Freed inodes count as much as bytes.
	w2 := &worker{statfs: statfs, clock: clk, now: clk.Now, dir: t.TempDir(), logger: w.logger}
	avail.Store(gib)
	tick, stop, limit := w2.after(&diskFullErr{}, diskFullRecheck)
	defer stop()
	if limit != diskFullMaxWait {
		t.Errorf("limit = %s, want %s", limit, diskFullMaxWait)
	}
	inodes.Add(freedInodes)
	recheck()
	select {
	case <-tick:
	default:
		waitFor(t, "the try after inodes were freed", func() bool {
			select {
			case <-tick:
				return true
			default:
				return false
			}
		})
	}
}

// fakeDisk is a file system for Options.Statfs whose free bytes and
// inodes the test sets.
type fakeDisk struct {
	total, totalInodes uint64
	avail, inodes      atomic.Uint64
}

func newFakeDisk(total, totalInodes uint64) *fakeDisk {
	return &fakeDisk{total: total, totalInodes: totalInodes}
}

func (d *fakeDisk) statfs(string) (releasestore.Space, error) {
	return releasestore.Space{AvailBytes: d.avail.Load(), TotalBytes: d.total, AvailInodes: d.inodes.Load(), TotalInodes: d.totalInodes, BlockSize: 4096}, nil
}

// startOnDisk runs the agent with one app ("site", polled every minute) on
// disk, keeping reserve free (min_free_space), and returns it after its
// first poll.
func startOnDisk(t *testing.T, disk *fakeDisk, reserve string) (*Agent, *worker, *fakeClock) {
	e := newEnv(t)
	e.write(strings.Replace(e.config("1m", "site"), "admin = \"\"", "admin = \"\"\n  min_free_space = \""+reserve+"\"", 1))
	return e.startPolledWith(Options{Statfs: disk.statfs})
}

// diskFullErr is a disk_full failure.
type diskFullErr struct{}

func (*diskFullErr) Error() string        { return "disk full" }
func (*diskFullErr) Is(target error) bool { return target == releasestore.ErrDiskFull }
