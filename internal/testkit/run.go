package testkit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// Go runs run in a goroutine of its own until the test ends: then it cancels
// run's context, waits for run to return and fails the test with what it
// returned ("<what>: <err>"), if anything. The stop it returns does the same
// at once and hands run's error to the caller instead; the end of the test
// then has nothing left to do.
func Go(t testing.TB, what string, run func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var (
		once     sync.Once
		err      error
		explicit atomic.Bool
	)
	wait := func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() {
		if err := wait(); err != nil && !explicit.Load() {
			t.Errorf("%s: %v", what, err)
		}
	})
	return func() error {
		explicit.Store(true)
		return wait()
	}
}
