package agent

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/dewy-agent/dewy-agent/notify"
)

// events fans one app's deploy events out to its own notifiers (app notify) and
// the agent's (agent notify). Sending never blocks: the dispatchers queue.
type events struct {
	app   string
	own   *notify.Dispatcher        // nil when the app has no notify list
	agent func() *notify.Dispatcher // the agent's current one, or nil
}

func (e *events) send(ev notify.Event) {
	ev.App = e.app
	if e.own != nil {
		e.own.Send(ev)
	}
	if d := e.agent(); d != nil {
		d.Send(ev)
	}
}

// resolved ends a run of failures of kind k without a deploy (the registry
// answers again), so the next outage is reported afresh.
func (e *events) resolved(k notify.Kind) {
	if e.own != nil {
		e.own.Resolved(e.app, k)
	}
	if d := e.agent(); d != nil {
		d.Resolved(e.app, k)
	}
}

// newDispatcher builds and starts a dispatcher for urls (already validated by
// config), or returns nil when there are none. Close stops it.
func newDispatcher(urls []string, logger *slog.Logger, client *http.Client, host string) *notify.Dispatcher {
	if len(urls) == 0 {
		return nil
	}
	ns, err := notify.ParseAll(urls)
	if err != nil { // config checked them; only a bug gets here
		logger.Error("notifiers not started", "err", err)
		return nil
	}
	d := notify.NewDispatcher(ns, notify.Options{Logger: logger, HTTPClient: client, Host: host})
	go d.Run(context.Background())
	return d
}

// agentNotifier returns the agent's dispatcher (agent notify), or nil.
func (a *Agent) agentNotifier() *notify.Dispatcher {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.notifier
}

// setAgentNotifier starts a dispatcher for urls, makes it the agent's, and closes
// the one it replaces (which delivers what it has queued first).
func (a *Agent) setAgentNotifier(urls []string) {
	next := newDispatcher(urls, a.opts.Logger.With("notify", "agent"), a.opts.HTTPClient, a.host)
	replaceClosing(&a.mu, &a.notifier, next)
}

// replaceClosing makes next the value of *field, which mu guards, and closes
// the value it replaces. The close runs after mu is released: closing waits
// (for requests in flight, for queued notifications) and must not hold up
// the agent's other users of mu.
func replaceClosing[T interface {
	comparable
	Close()
}](mu *sync.Mutex, field *T, next T) {
	mu.Lock()
	prev := *field
	*field = next
	mu.Unlock()
	var none T
	if prev != none {
		prev.Close()
	}
}
