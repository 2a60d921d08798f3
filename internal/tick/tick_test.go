package tick

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEveryTicksWakesAndStops: fn runs on every tick, at once when woken,
// and Every returns when its context ends.
func TestEveryTicksWakesAndStops(t *testing.T) {
	t.Run("ticks", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var n atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			Every(ctx, 5*time.Millisecond, nil, func() { n.Add(1) })
		}()
		deadline := time.Now().Add(10 * time.Second)
		for n.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		if n.Load() < 3 {
			t.Fatalf("fn ran %d times in 10s at a 5ms interval", n.Load())
		}
	})
	t.Run("wake", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		wake := make(chan struct{})
		ran := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			Every(ctx, time.Hour, wake, func() { ran <- struct{}{} })
		}()
		for range 2 {
			wake <- struct{}{}
			select {
			case <-ran:
			case <-time.After(10 * time.Second):
				t.Fatal("fn did not run when woken")
			}
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Every did not return when its context ended")
		}
	})
}
