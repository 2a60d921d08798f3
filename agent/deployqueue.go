package agent

import (
	"context"
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dewy-agent/dewy-agent/config"
)

// deployQueue bounds the deploys in flight for the whole agent (download,
// extract, hooks and the runner's deploy) and lets apps in first come, first
// served, so a host with thousands of apps neither downloads them all at once
// nor keeps one app waiting behind a slow one for long. It is held only
// around a deploy, never across the wait between polls.
type deployQueue struct {
	mu      sync.Mutex
	slots   int // deploys allowed in flight; at least 1
	busy    int
	waiters []*queueWaiter // FIFO
}

type queueWaiter struct {
	app   string
	ready chan struct{} // closed when the waiter got a slot
}

// newDeployQueue returns a queue with slots deploys in flight (at least 1).
func newDeployQueue(slots int) *deployQueue {
	return &deployQueue{slots: max(1, slots)}
}

// setSlots changes the bound (a reload of max_parallel_deploys) and lets
// waiters in when it grew.
func (q *deployQueue) setSlots(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.slots = max(1, n)
	q.admit()
}

// admit hands free slots to the waiters in order. Called with mu held.
func (q *deployQueue) admit() {
	for q.busy < q.slots && len(q.waiters) > 0 {
		w := q.waiters[0]
		q.waiters = q.waiters[1:]
		q.busy++
		close(w.ready)
	}
}

// acquire waits for a slot for app, in arrival order, and returns the
// function that gives it back. It fails only when ctx ends first.
func (q *deployQueue) acquire(ctx context.Context, app string) (release func(), err error) {
	q.mu.Lock()
	w := &queueWaiter{app: app, ready: make(chan struct{})}
	q.waiters = append(q.waiters, w)
	q.admit()
	q.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			q.mu.Lock()
			q.busy--
			q.admit()
			q.mu.Unlock()
		})
	}
	select {
	case <-w.ready:
		return release, nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i:i], q.waiters[i+1:]...)
			return nil, ctx.Err()
		}
	}
	// The slot came at the same moment ctx ended: give it back.
	q.busy--
	q.admit()
	return nil, ctx.Err()
}

// position is app's place in the queue (1 = next), or 0 when it is not
// waiting.
func (q *deployQueue) position(app string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.waiters {
		if w.app == app {
			return i + 1
		}
	}
	return 0
}

// counts are the deploys in flight and waiting, for /metrics.
func (q *deployQueue) counts() (inFlight, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.busy, len(q.waiters)
}

// defaultParallelDeploys is max_parallel_deploys when the file does not set
// it: four deploys per CPU (a deploy of a small release waits on the disk and
// the registry more than it computes), between 4 and 32. bench/manyapps on 2
// CPUs: 8 slots deploy 2,000 apps faster than no bound at all, with a third
// of its peak memory.
func defaultParallelDeploys() int { return min(32, max(4, 4*runtime.NumCPU())) }

// parallelDeploys is cfg's bound on deploys in flight.
func parallelDeploys(cfg *config.File) int {
	if cfg != nil && cfg.Agent.MaxParallelDeploys > 0 {
		return cfg.Agent.MaxParallelDeploys
	}
	return defaultParallelDeploys()
}

// waitTurn waits for the app's deploy to get a slot of the agent's queue;
// the app's status shows "queued" with its position meanwhile.
func (w *worker) waitTurn(ctx context.Context) (release func(), err error) {
	if w.queue == nil {
		return func() {}, nil
	}
	release, err = w.queue.acquire(ctx, w.app.Name)
	if err != nil {
		return nil, err
	}
	return release, nil
}

// queueMetrics exports the queue's counts.
func queueMetrics(q *deployQueue) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dewy_deploys_in_flight",
			Help: "Deploys holding one of the agent's max_parallel_deploys slots.",
		}, func() float64 { n, _ := q.counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dewy_deploys_queued",
			Help: "Deploys waiting for a slot, first come, first served.",
		}, func() float64 { _, n := q.counts(); return float64(n) }),
	}
}
