// Package tick runs the agent's periodic work: a function called every
// interval, and at once when woken, until the context ends. It owns the
// ticker, so no loop forgets to stop it or to watch the context.
package tick

import (
	"context"
	"time"
)

// Every calls fn every d, and also at once each time wake (nil: never)
// delivers, until ctx is done; then it returns. The first call is after d
// (or a wake). Calls never overlap: a tick that comes while fn runs waits
// for it, and ticks missed meanwhile are dropped.
func Every(ctx context.Context, d time.Duration, wake <-chan struct{}, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		fn()
	}
}
