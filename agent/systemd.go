package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/dewy-agent/dewy-agent/internal/tick"
)

// ServiceNotifier tells a service manager about the agent's life. The agent
// sends systemd's sd_notify states (see sd_notify(3)):
//
//   - "READY=1" with STATUS= once the config is loaded, the admin API listens and
//     every app's loop has started; not after each deploy.
//   - "RELOADING=1" with MONOTONIC_USEC= before a reload, and "READY=1" with
//     STATUS= after it, whatever its outcome.
//   - "STOPPING=1" when the agent begins to stop.
//   - "WATCHDOG=1" every Options.Watchdog/2 while the agent's loops are alive.
//
// Notify must be safe to call from several goroutines. Errors are ignored by
// the agent: a service manager that does not listen changes nothing.
type ServiceNotifier interface {
	Notify(state string) error
}

// notify sends state to the service notifier, if there is one.
func (a *Agent) notify(state string) {
	if a.opts.Notifier == nil {
		return
	}
	if err := a.opts.Notifier.Notify(state); err != nil {
		a.opts.Logger.Debug("service notification not sent", "err", err)
	}
}

// notifyReady says the agent is up, with a one-line summary.
func (a *Agent) notifyReady() {
	a.notify(daemon.SdNotifyReady + "\nSTATUS=" + a.summary())
}

// notifyReloading says a reload begins. MONOTONIC_USEC is CLOCK_MONOTONIC in
// microseconds, which systemd uses to order the reload against its own clock.
func (a *Agent) notifyReloading() {
	a.notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// summary is a one-line account of the apps' states, such as
// "3 apps: 2 idle, 1 failed; last reload success".
func (a *Agent) summary() string {
	counts := map[string]int{}
	sts := a.Statuses()
	for _, s := range sts {
		counts[s.State]++
	}
	states := make([]string, 0, len(counts))
	for st := range counts {
		states = append(states, st)
	}
	sort.Strings(states)
	parts := make([]string, 0, len(states))
	for _, st := range states {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
	}
	a.mu.Lock()
	reload := a.lastReload.Result
	a.mu.Unlock()
	noun := "apps"
	if len(sts) == 1 {
		noun = "app"
	}
	line := fmt.Sprintf("%d %s", len(sts), noun)
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if reload != "" {
		line += "; last reload " + reload
	}
	return line
}

// watchdog sends WATCHDOG=1 (and a fresh STATUS=) every interval/2 for as long
// as ctx lives and the agent's loops are alive. When they are not, it stops
// sending, so systemd's WatchdogSec= restarts the agent.
func (a *Agent) watchdog(ctx context.Context, interval time.Duration) {
	every := interval / 2
	if every <= 0 {
		return
	}
	tick.Every(ctx, every, nil, func() {
		if !a.alive(every) {
			a.opts.Logger.Error("an app loop has ended or the agent is stuck; the watchdog is no longer fed")
			return
		}
		a.notify(daemon.SdNotifyWatchdog + "\nSTATUS=" + a.summary())
	})
}

// alive reports whether the agent can take its own lock within wait and every
// app's loop is still running.
func (a *Agent) alive(wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for !a.mu.TryLock() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	ws := make([]*worker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	for _, w := range ws {
		select {
		case <-w.done:
			return false // a loop of a registered app ended on its own
		default:
		}
	}
	return true
}
