package testkit

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// KeepAlive says which of a load's workers reuse their connections.
type KeepAlive string

// The keep-alive modes of a load.
const (
	// KeepAliveNone opens a new connection for every request.
	KeepAliveNone KeepAlive = "none"
	// KeepAliveAll reuses one connection per worker.
	KeepAliveAll KeepAlive = "all"
	// KeepAliveHalf reuses connections in every other worker.
	KeepAliveHalf KeepAlive = "half"
)

// LoadOptions shape a load. The zero value is one worker without keep-alive.
type LoadOptions struct {
	// Workers is how many goroutines send requests, each waiting for its
	// answer before the next; at least one.
	Workers int
	// KeepAlive is which workers reuse connections; "" means KeepAliveNone.
	KeepAlive KeepAlive
	// Timeout bounds one request; zero means 5s.
	Timeout time.Duration
	// Pause is a worker's wait between requests; zero sends at once.
	Pause time.Duration
}

// maxLoadErrors bounds the failures a load describes.
const maxLoadErrors = 5

// Load sends GET requests to one URL until Stop. A request fails when it gets
// no answer or an answer other than 200 OK.
type Load struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu  sync.Mutex
	res LoadResult
}

// LoadResult is what a load saw.
type LoadResult struct {
	// Sent and Failed count the requests.
	Sent, Failed int
	// Answers counts the 200 OK answers by body.
	Answers map[string]int
	// Errors describes the first few failures, each with its time.
	Errors []string
	// Latencies of the answered requests, sorted.
	Latencies []time.Duration
}

// StartLoad starts sending GET url as o says.
func StartLoad(url string, o LoadOptions) *Load {
	l := &Load{stop: make(chan struct{}), res: LoadResult{Answers: map[string]int{}}}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	for i := range max(o.Workers, 1) {
		keepAlive := o.KeepAlive == KeepAliveAll || (o.KeepAlive == KeepAliveHalf && i%2 == 0)
		tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
		c := &http.Client{Transport: tr, Timeout: timeout}
		l.wg.Go(func() {
			defer tr.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				body, err := Get(c, url)
				l.record(start, body, err, keepAlive)
				if o.Pause > 0 {
					time.Sleep(o.Pause)
				}
			}
		})
	}
	return l
}

func (l *Load) record(start time.Time, body string, err error, keepAlive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res.Sent++
	if err != nil {
		l.res.Failed++
		if len(l.res.Errors) < maxLoadErrors {
			l.res.Errors = append(l.res.Errors, fmt.Sprintf("%s keep-alive=%v: %v", start.Format("15:04:05.000000"), keepAlive, err))
		}
		return
	}
	l.res.Answers[body]++
	l.res.Latencies = append(l.res.Latencies, time.Since(start))
}

// Counts returns how many requests were sent and failed so far.
func (l *Load) Counts() (sent, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res.Sent, l.res.Failed
}

// Stop ends the load, waits for the requests under way and returns what the
// load saw. Call it once.
func (l *Load) Stop() LoadResult {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.res.Latencies)
	return l.res
}

// Quantile returns the latency at q (0 to 1) of the answered requests, or 0.
func (r LoadResult) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(int(q*float64(len(r.Latencies))), len(r.Latencies)-1)]
}

// Get fetches url with c, or with a client that opens a new connection and
// waits at most 10s when c is nil. It returns the body, and an error when
// there was no answer or it was not 200 OK.
func Get(c *http.Client, url string) (string, error) {
	if c == nil {
		c = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}
