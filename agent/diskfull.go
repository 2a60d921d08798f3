package agent

import (
	"errors"
	"sync"
	"time"

	"github.com/dewy-agent/dewy-agent/releasestore"
)

// After a deploy stopped for lack of disk space or inodes (disk_full), trying
// again changes nothing until the state directory's file system has more
// room: the app's next poll waits until it has, looking every
// diskFullRecheck, and at most diskFullMaxWait (or the backoff, when longer),
// so a new release still gets its chance.
const (
	diskFullRecheck = 10 * time.Second
	diskFullMaxWait = time.Hour
	// Room counts as freed when the free bytes grew by freedBytes or the
	// free inodes by freedInodes since the failure: a busy disk's small
	// ups and downs (logs written and rotated) are not a reason to try
	// again.
	freedBytes  = 1 << 20
	freedInodes = 64
)

// after returns the timer that ends the wait before the next poll, which
// failed with err (nil: it did not): the clock's timer of wait, or after a
// disk_full failure one that fires once room was freed (see diskFullRecheck),
// and the longest the wait may last.
func (w *worker) after(err error, wait time.Duration) (<-chan time.Time, func(), time.Duration) {
	if err == nil || !errors.Is(err, releasestore.ErrDiskFull) || w.statfs == nil {
		tick, stop := w.clock.After(wait)
		return tick, stop, wait
	}
	then, serr := w.statfs(w.dir)
	if serr != nil {
		w.logger.Warn("cannot measure the free space to wait for; retrying with backoff", "err", serr)
		tick, stop := w.clock.After(wait)
		return tick, stop, wait
	}
	limit := max(wait, diskFullMaxWait)
	deadline := w.now().Add(limit)
	fire := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		for {
			tick, stop := w.clock.After(diskFullRecheck)
			var now time.Time
			select {
			case <-done:
				stop()
				return
			case now = <-tick:
			}
			sp, err := w.statfs(w.dir)
			freed := err == nil && (sp.AvailBytes >= then.AvailBytes+freedBytes || sp.AvailInodes >= then.AvailInodes+freedInodes)
			if freed || !now.Before(deadline) {
				if freed {
					w.logger.Info("disk space freed; trying again", "free_bytes", sp.AvailBytes, "free_inodes", sp.AvailInodes)
				}
				select {
				case fire <- now:
				case <-done:
				}
				return
			}
		}
	}()
	var once sync.Once
	return fire, func() { once.Do(func() { close(done) }) }, limit
}
