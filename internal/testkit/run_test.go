package testkit

import (
	"context"
	"errors"
	"testing"
)

// TestGoStopsAtTheEnd: run's context is cancelled when the test ends, and a
// clean return fails nothing.
func TestGoStopsAtTheEnd(t *testing.T) {
	stopped := make(chan struct{})
	t.Run("inner", func(t *testing.T) {
		Go(t, "loop", func(ctx context.Context) error {
			<-ctx.Done()
			close(stopped)
			return nil
		})
	})
	select {
	case <-stopped:
	default:
		t.Fatal("run still going after its test ended")
	}
}

// TestGoStop: stop cancels run at once and returns its error; the end of the
// test does not report it again.
func TestGoStop(t *testing.T) {
	boom := errors.New("boom")
	stop := Go(t, "loop", func(ctx context.Context) error {
		<-ctx.Done()
		return boom
	})
	if err := stop(); !errors.Is(err, boom) {
		t.Fatalf("stop = %v, want %v", err, boom)
	}
	if err := stop(); !errors.Is(err, boom) {
		t.Fatalf("second stop = %v, want %v", err, boom)
	}
}
