package agent

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose time passes only when the test says so.
// Advance hands each due timer's tick to its receiver before returning, so
// once it returns the loop that waited is past its wait.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration // as asked, to tell the loops' timers apart
	at      time.Time
	ch      chan time.Time
	stopped chan struct{}
	once    sync.Once
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now()}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{d: d, at: c.now.Add(d), ch: make(chan time.Time), stopped: make(chan struct{})}
	c.timers = append(c.timers, t)
	return t.ch, func() {
		t.once.Do(func() { close(t.stopped) })
		c.remove(t)
	}
}

func (c *fakeClock) remove(t *fakeTimer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return
		}
	}
}

// Advance moves the time on by d and fires every timer that is then due,
// each received (or stopped) before Advance returns.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due, keep []*fakeTimer
	for _, t := range c.timers {
		if !t.at.After(now) {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, t := range due {
		select {
		case t.ch <- now:
		case <-t.stopped:
		}
	}
}

// pending counts the timers waiting that were asked for d.
func (c *fakeClock) pending(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.d == d {
			n++
		}
	}
	return n
}

// pendingOver counts the timers waiting that were asked for more than d.
func (c *fakeClock) pendingOver(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.d > d {
			n++
		}
	}
	return n
}

// longest returns the longest wait among the timers waiting (0: none).
func (c *fakeClock) longest() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Duration
	for _, t := range c.timers {
		d = max(d, t.d)
	}
	return d
}

// pollNow lets w's wait end (interval or backoff, whichever it waits for) and
// returns once the poll this starts has ended and its outcome is recorded.
// It is how a test proves that a poll changed nothing, without sleeping.
func pollNow(t *testing.T, clk *fakeClock, w *worker) {
	t.Helper()
	waitFor(t, w.app.Name+" waiting for its next poll", func() bool { return clk.pendingOver(0) > 0 })
	before := w.polled.Load()
	clk.Advance(2 * w.app.Interval) // beyond any jitter or backoff
	waitFor(t, w.app.Name+"'s poll to end", func() bool { return w.polled.Load() > before })
}

var _ Clock = (*fakeClock)(nil)
