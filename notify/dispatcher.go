package notify

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Dispatcher defaults, used for the zero fields of Options.
const (
	DefaultQueueSize    = 100
	DefaultRetries      = 3
	DefaultBackoff      = time.Second
	DefaultTimeout      = 30 * time.Second
	DefaultDrainTimeout = 5 * time.Second
)

// maxBackoff caps the wait between retries.
const maxBackoff = time.Minute

// MaxRepeats is how many messages a run of the same failure (same app and
// kind, in a row) gets before the rest are suppressed.
const MaxRepeats = 3

// Options configure a Dispatcher. Zero fields take the defaults above.
type Options struct {
	// Logger receives delivery failures and drops. Nil discards.
	Logger *slog.Logger
	// HTTPClient carries Slack and webhook requests; nil means a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// QueueSize is how many messages may wait for each notifier; Send drops
	// (and logs) what does not fit.
	QueueSize int
	// Retries is how many times a failed delivery is tried again (with a
	// doubling wait from Backoff): 0 means DefaultRetries, negative none.
	Retries int
	// Backoff is the wait before the first retry.
	Backoff time.Duration
	// Timeout bounds each delivery attempt.
	Timeout time.Duration
	// DrainTimeout bounds how long stopping waits for queued messages.
	DrainTimeout time.Duration
	// Env reads SLACK_TOKEN and the rest; nil means os.Getenv.
	Env func(string) string
	// TLSConfig is the base of the mail notifier's STARTTLS config (tests
	// set RootCAs); nil means the system's roots.
	TLSConfig *tls.Config
	// Host fills Event.Host when it is empty; "" means os.Hostname().
	Host string
	// Now fills Event.Time when it is zero; nil means time.Now.
	Now func() time.Time
}

// Dispatcher delivers events to notifiers in the background: one goroutine
// and one bounded queue per notifier, so a slow or broken notifier delays
// nobody, not even the other notifiers.
//
// Lifecycle: NewDispatcher (no goroutines, no I/O); Run in a goroutine of its
// own; Send from any goroutine, at any time; Close (or cancelling Run's
// context) to stop: queued messages are still delivered for at most
// DrainTimeout, then dropped. Send after the stop drops silently. Close
// returns only when no goroutine of the dispatcher is left.
type Dispatcher struct {
	workers []*worker
	opts    Options
	log     *slog.Logger
	tr      Transport
	retries int

	mu       sync.Mutex
	running  bool                   // Run or Close is serving (or has served)
	stopped  bool                   // queues are closed: Send drops
	runs     map[string]*failureRun // by app; the storm limiter's state
	stop     chan struct{}          // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when Run returns
}

type worker struct {
	n Notifier
	q chan Message
}

// failureRun is an app's current run of one failure kind.
type failureRun struct {
	kind  Kind
	count int
}

// NewDispatcher returns a dispatcher for notifiers. It starts nothing: call Run.
func NewDispatcher(notifiers []Notifier, opts Options) *Dispatcher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Env == nil {
		opts.Env = os.Getenv
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Dispatcher{
		opts:    opts,
		log:     opts.Logger,
		tr:      Transport{HTTPClient: opts.HTTPClient, Getenv: opts.Env, TLSConfig: opts.TLSConfig},
		retries: opts.Retries,
		runs:    map[string]*failureRun{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	switch {
	case d.retries == 0:
		d.retries = DefaultRetries
	case d.retries < 0:
		d.retries = 0
	}
	for _, n := range notifiers {
		d.workers = append(d.workers, &worker{n: n, q: make(chan Message, opts.QueueSize)})
	}
	return d
}

// Send queues e for every notifier that wants its kind and returns at once.
// It fills in Host and Time when they are empty, scrubs known secrets from
// Err and Output, and applies the storm limiter. A notifier whose queue is
// full misses the message (logged as a warning).
func (d *Dispatcher) Send(e Event) {
	if e.Time.IsZero() {
		e.Time = d.opts.Now()
	}
	if e.Host == "" {
		e.Host = d.opts.Host
	}
	secrets := d.secrets()
	e.Err = redact(e.Err, secrets...)
	e.Output = redact(e.Output, secrets...)

	var full []string
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	m, ok := d.limit(e)
	if ok {
		for _, w := range d.workers {
			if !w.n.Wants(m.Kind) {
				continue
			}
			select {
			case w.q <- m:
			default:
				full = append(full, w.n.String())
			}
		}
	}
	d.mu.Unlock()

	if !ok {
		d.log.Debug("notification suppressed: repeated failure", "app", e.App, "kind", string(e.Kind), "repeats", m.Repeats)
	}
	for _, n := range full {
		d.log.Warn("notification dropped: queue full", "notifier", n, "app", e.App, "kind", string(e.Kind))
	}
}

// Resolved ends app's run of failures of kind k, if that is the run it is in,
// without sending anything: the next such failure is sent again. The agent
// calls it when the condition is over without a deploy to show for it (a
// successful poll after registry_unreachable).
func (d *Dispatcher) Resolved(app string, k Kind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.runs[app]; r != nil && r.kind == k {
		delete(d.runs, app)
	}
}

// limit is the storm limiter. It returns the message for e and whether to
// send it. Called with d.mu held.
func (d *Dispatcher) limit(e Event) (Message, bool) {
	m := Message{Event: e}
	r := d.runs[e.App]
	switch {
	case e.Kind == DeploySucceeded:
		delete(d.runs, e.App)
		return m, true
	case e.Kind.Failure():
		if r == nil || r.kind != e.Kind {
			r = &failureRun{kind: e.Kind}
			d.runs[e.App] = r
		}
		r.count++
		m.Repeats = r.count
		m.Suppressing = r.count == MaxRepeats
		return m, r.count <= MaxRepeats
	default:
		// While an app's failures are suppressed, so are the attempts that
		// lead to them: a "deploying" with no outcome would mislead.
		return m, r == nil || r.count < MaxRepeats
	}
}

// secrets are the values scrubbed from every message: the notifiers' own and
// the environment's.
func (d *Dispatcher) secrets() []string {
	out := []string{d.opts.Env(SlackTokenEnv), d.opts.Env(MailPasswordEnv)}
	for _, w := range d.workers {
		if s, ok := w.n.(secretHolder); ok {
			out = append(out, s.secrets(d.opts.Env)...)
		}
	}
	return out
}

// Run delivers messages until ctx is cancelled or Close is called, then
// drains the queues for at most DrainTimeout and returns. It returns at once
// when the dispatcher is already running or has stopped.
func (d *Dispatcher) Run(ctx context.Context) {
	if !d.begin() {
		return
	}
	defer close(d.done)
	d.serve(ctx)
}

// Close stops the dispatcher and returns once the queued messages are
// delivered or DrainTimeout has passed. Messages sent before Close are
// delivered even when Run was never called (Close then delivers them
// itself). Safe to call more than once.
func (d *Dispatcher) Close() {
	d.stopOnce.Do(func() { close(d.stop) })
	if d.begin() {
		defer close(d.done)
		d.serve(context.Background())
		return
	}
	<-d.done
}

// begin claims the right to serve; only the first caller gets it.
func (d *Dispatcher) begin() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		return false
	}
	d.running = true
	return true
}

// serve runs the workers until ctx is done or Close is called, then closes
// the queues and waits for them to drain, for at most DrainTimeout.
func (d *Dispatcher) serve(ctx context.Context) {
	// Deliveries outlive ctx by the drain bound.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	var (
		wg      sync.WaitGroup
		dropped atomic.Int64
	)
	for _, w := range d.workers {
		wg.Go(func() {
			for m := range w.q {
				if sendCtx.Err() != nil {
					dropped.Add(1)
					continue
				}
				d.deliver(sendCtx, w.n, m)
			}
		})
	}

	select {
	case <-ctx.Done():
	case <-d.stop:
	}
	d.mu.Lock()
	d.stopped = true
	for _, w := range d.workers {
		close(w.q)
	}
	d.mu.Unlock()

	drained := make(chan struct{})
	go func() {
		wg.Wait()
		close(drained)
	}()
	t := time.NewTimer(d.opts.DrainTimeout)
	defer t.Stop()
	select {
	case <-drained:
		return
	case <-t.C:
	}
	cancelSends()
	<-drained
	d.log.Warn("notifications not delivered before shutdown were dropped",
		"dropped", dropped.Load(), "waited", d.opts.DrainTimeout)
}

// deliver sends m with n, retrying failures that may pass, and logs the
// outcome.
func (d *Dispatcher) deliver(ctx context.Context, n Notifier, m Message) {
	var (
		err      error
		attempts int
	)
	for attempts = 1; ; attempts++ {
		actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
		err = n.Notify(actx, m, d.tr)
		cancel()
		if err == nil {
			d.log.Debug("notification sent", "notifier", n.String(), "app", m.App, "kind", string(m.Kind), "attempts", attempts)
			return
		}
		if IsPermanent(err) || attempts > d.retries || ctx.Err() != nil {
			break
		}
		wait := min(d.opts.Backoff<<min(attempts-1, 16), maxBackoff)
		d.log.Debug("notification failed; retrying", "notifier", n.String(), "app", m.App, "kind", string(m.Kind),
			"attempt", attempts, "retry_in", wait, "err", redact(err.Error(), d.secrets()...))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	d.log.Error("notification failed", "notifier", n.String(), "app", m.App, "kind", string(m.Kind),
		"attempts", attempts, "err", redact(err.Error(), d.secrets()...))
}
