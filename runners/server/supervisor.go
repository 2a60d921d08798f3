package server

import (
	"context"
	"time"
)

const (
	// crashLoopWindow and crashLoopRestarts: this many restarts within the window
	// make Stats report a crash loop.
	crashLoopWindow   = time.Minute
	crashLoopRestarts = 3
)

// supervisor keeps one release running: when its generation exits on its own, it
// starts a new one per Config.Restart, with exponential backoff. It is the live
// release of the runner; stopping it (retire) is `cancel(); <-done`, then the
// generation it left running is stopped.
type supervisor struct {
	version string
	dir     string
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	// Guarded by Server.mu.
	gen      *generation // the latest generation; nil if none could be started
	restarts int
	recent   []time.Time // restarts within crashLoopWindow
	looping  bool        // a crash loop was logged
}

func newSupervisor(version, dir string, g *generation) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	return &supervisor{version: version, dir: dir, gen: g, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// supervise runs sv until it is cancelled or its generation exits and the restart
// policy says not to start another. On cancel it leaves the generation running.
func (s *Server) supervise(sv *supervisor) {
	defer close(sv.done)
	backoff := s.minBackoff
	for {
		s.mu.Lock()
		g := sv.gen
		s.mu.Unlock()
		if g != nil {
			select {
			case <-sv.ctx.Done():
				return
			case <-g.done:
			}
			ran := time.Since(g.started)
			g.finish()
			if ran >= s.resetAfter {
				backoff = s.minBackoff
			}
			attrs := append(g.exitAttrs(), "ran", ran.Round(time.Millisecond), "restart_policy", s.cfg.Restart)
			if s.cfg.Restart != "always" && (s.cfg.Restart != "on-failure" || !g.failed()) {
				g.logger.Warn("generation exited; not restarting", attrs...)
				return
			}
			g.logger.Warn("generation exited; restarting", append(attrs, "restart_in", backoff)...)
		}
		t := time.NewTimer(backoff)
		select {
		case <-sv.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.maxBackoff)

		ng, err := s.start(sv.dir, sv.version)
		now := time.Now()
		s.mu.Lock()
		sv.gen = ng // nil on failure: the next round retries
		sv.restarts++
		sv.recent = append(pruneBefore(sv.recent, now.Add(-crashLoopWindow)), now)
		looping := len(sv.recent) >= crashLoopRestarts
		logLoop := looping && !sv.looping
		sv.looping = looping
		s.mu.Unlock()
		if logLoop {
			s.logger.Warn("release is crash-looping", "version", sv.version, "restarts", len(sv.recent), "within", crashLoopWindow)
		}
		if err != nil {
			s.logger.Error("restart failed", "version", sv.version, "err", err, "retry_in", backoff)
			continue
		}
		s.routeWhenHealthy(sv, ng)
		if err := s.waitHealthy(sv.ctx, ng); err != nil && sv.ctx.Err() == nil {
			ng.logger.Warn("restarted generation is not healthy", "err", err)
		}
	}
}

// retire stops sv: no more restarts, then its generation is stopped (gracefully,
// until ctx is done).
func (s *Server) retire(ctx context.Context, sv *supervisor) {
	if g := s.endSupervision(sv); g != nil {
		s.stopGeneration(ctx, g)
	}
}

// endSupervision stops sv's loop (no more restarts) and waits for it to end,
// then returns the generation it last ran, nil when none: what retire stops
// and detach leaves running.
func (s *Server) endSupervision(sv *supervisor) *generation {
	sv.cancel()
	<-sv.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return sv.gen
}

// pruneBefore drops the times before t from the sorted ts.
func pruneBefore(ts []time.Time, t time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(t) {
		i++
	}
	return ts[i:]
}
