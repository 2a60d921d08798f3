package agent

import "time"

// Clock is the time source of the agent's loops: what time it is, and the
// timers that end their waits (an app's poll interval or retry backoff, the
// config watcher's debounce). Options.Clock nil means the wall clock. A test
// passes a fake to let time pass on demand, so it can say "poll now", wait for
// that poll to end and then check that nothing happened, without sleeping.
//
// A Clock is used from many goroutines at once.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed, and
	// a stop function that releases the timer; after stop the channel may
	// never receive.
	After(d time.Duration) (<-chan time.Time, func())
}

// wallClock is the real clock; now is Options.Now.
type wallClock struct{ now func() time.Time }

func (c wallClock) Now() time.Time { return c.now() }

func (wallClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

var _ Clock = wallClock{}
