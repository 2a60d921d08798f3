package container

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/tick"
)

// watch runs the monitor until ctx is done: a check every watchEvery, and one
// at once when the engine reports that one of the app's containers exited or
// started.
func (c *Container) watch(ctx context.Context, done chan struct{}) {
	defer close(done)
	poke := make(chan struct{}, 1)
	followed := make(chan struct{})
	go c.follow(ctx, poke, followed)
	defer func() { <-followed }()
	tick.Every(ctx, c.watchEvery, poke, func() { c.check(ctx) })
}

// follow reads the engine's events of the app's containers until ctx is done.
// A live replica whose process exits leaves the rotation at once, so that the
// proxy sends it nothing while the engine restarts it (the periodic check
// alone would leave it there up to watchEvery); every event pokes a check,
// which brings a restarted replica back once it is healthy. When the stream
// fails it is opened again after watchEvery; the periodic check covers the
// gap.
func (c *Container) follow(ctx context.Context, poke chan<- struct{}, done chan struct{}) {
	defer close(done)
	c.mu.Lock()
	eng := c.eng
	c.mu.Unlock()
	labels := map[string]string{LabelManaged: "true", LabelApp: c.app}
	for {
		evs, errs := eng.Events(ctx, labels)
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-evs:
				if !ok {
					evs = nil // the error follows
					continue
				}
				if ev.Action == "die" {
					c.died(ev.ID)
				}
				select {
				case poke <- struct{}{}:
				default:
				}
			case err := <-errs:
				if ctx.Err() != nil {
					return
				}
				c.logger.Debug("monitor: engine events", "err", err)
				break stream
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.watchEvery):
		}
	}
}

// died takes the live replica with the container ID out of rotation at once:
// its process exited.
func (c *Container) died(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.live {
		if r.id == id && !r.retired && !r.out {
			r.running = false
			c.takeOut(r)
		}
	}
}

// check inspects every live replica once. A replica that is not running, or that
// the engine restarted since the last check, leaves the rotation; a running one
// out of rotation comes back, on the port it is now published on, once it answers
// its health check (or has run SettleTime without HealthPath).
func (c *Container) check(ctx context.Context) {
	c.mu.Lock()
	eng := c.eng
	live := slices.Clone(c.live)
	c.mu.Unlock()
	if eng == nil {
		return
	}
	for _, r := range live {
		ins, err := eng.InspectContainer(ctx, r.id)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrNotFound) {
				c.mu.Lock()
				if !r.retired && !r.out {
					c.logger.Warn("replica's container was removed by someone else; it is replaced at the next deploy or agent restart", "container", r.name)
					c.takeOut(r)
				}
				r.running = false
				c.mu.Unlock()
			} else {
				c.logger.Debug("monitor: inspect replica", "container", r.name, "err", err)
			}
			continue
		}
		running := ins.Running && !ins.Restarting
		var addrs []string
		if running {
			addrs, _ = publishedAddrs(ins, r.ports)
		}
		c.mu.Lock()
		if r.retired {
			c.mu.Unlock()
			continue
		}
		restarted := ins.RestartCount > r.restarts
		if restarted {
			now := time.Now()
			for range ins.RestartCount - r.restarts {
				c.recent = append(c.recent, now)
			}
			c.recent = slices.DeleteFunc(c.recent, func(t time.Time) bool { return now.Sub(t) > crashLoopWindow })
			c.logger.Warn("replica restarted by the engine", "container", r.name, "restarts", ins.RestartCount, "exit_code", ins.ExitCode)
		}
		r.restarts = ins.RestartCount
		r.running = running
		r.pid = ins.Pid
		if (restarted || !running) && !r.out {
			c.takeOut(r)
		}
		out := r.out
		c.mu.Unlock()

		if !running || addrs == nil {
			continue
		}
		for i, a := range addrs {
			if r.backends[i].Addr() != a {
				r.backends[i].SetAddr(a)
			}
		}
		if !out {
			continue
		}
		if !c.healthyNow(ctx, r, ins.StartedAt) {
			continue
		}
		c.mu.Lock()
		if !r.retired && r.out && len(r.backends) == len(c.proxies) {
			r.out = false
			for i, p := range c.proxies {
				p.Add(r.backends[i])
			}
			c.logger.Info("replica back in rotation", "container", r.name)
		}
		c.mu.Unlock()
	}
}

// takeOut removes r from every rotation until it is healthy again. Callers hold c.mu.
func (c *Container) takeOut(r *replica) {
	r.out = true
	for i, p := range c.proxies {
		if i < len(r.backends) {
			p.Remove(r.backends[i])
		}
	}
	c.logger.Warn("replica out of rotation until it is healthy", "container", r.name)
}

// healthyNow is one health check of a running replica: one request to HealthPath,
// or without it, running for SettleTime since the engine last started it.
func (c *Container) healthyNow(ctx context.Context, r *replica, startedAt time.Time) bool {
	if c.cfg.HealthPath == "" {
		return !startedAt.IsZero() && time.Since(startedAt) >= c.cfg.SettleTime
	}
	ok, _ := c.probe(ctx, r)
	return ok
}
