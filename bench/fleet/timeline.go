package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dewy-agent/dewy-agent/fleet"
)

// timeline watches a fleet's keys during one rollout and says what its time
// is made of: the poller's delay to publish, the canary, each host's deploy,
// and the handoffs of slots between hosts (times as the watch received the
// events).
type timeline struct {
	prefix, app, version string
	cancel               context.CancelFunc
	done                 chan struct{}

	mu        sync.Mutex
	start     time.Time
	published time.Time
	deploying map[string]time.Time // host -> it recorded "deploying" version
	outcome   map[string]time.Time // host -> its outcome was written
	freed     map[string]time.Time // host -> its slot key was deleted
}

func watchRollout(endpoint, prefix, app, version string) (*timeline, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &timeline{prefix: prefix, app: app, version: version, cancel: cancel, done: make(chan struct{}), start: time.Now(),
		deploying: map[string]time.Time{}, outcome: map[string]time.Time{}, freed: map[string]time.Time{}}
	wch := cli.Watch(ctx, prefix+"/", clientv3.WithPrefix())
	go func() {
		defer close(tl.done)
		defer cli.Close()
		for wr := range wch {
			now := time.Now()
			tl.mu.Lock()
			for _, ev := range wr.Events {
				tl.event(now, ev)
			}
			tl.mu.Unlock()
		}
	}()
	return tl, nil
}

func (tl *timeline) event(now time.Time, ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	app := tl.prefix + "/apps/" + tl.app + "/"
	switch {
	case key == app+"release" && ev.Type == clientv3.EventTypePut:
		var r fleet.Release
		if json.Unmarshal(ev.Kv.Value, &r) == nil && r.Version == tl.version && tl.published.IsZero() {
			tl.published = now
		}
	case strings.HasPrefix(key, tl.prefix+"/hosts/") && ev.Type == clientv3.EventTypePut:
		var rec fleet.HostRecord
		if json.Unmarshal(ev.Kv.Value, &rec) == nil {
			if a := rec.Apps[tl.app]; a.Phase == fleet.PhaseDeploying && a.Target == tl.version {
				if _, seen := tl.deploying[rec.Host]; !seen {
					tl.deploying[rec.Host] = now
				}
			}
		}
	case strings.HasPrefix(key, app+"rollouts/"+tl.version+"/outcomes/") && ev.Type == clientv3.EventTypePut:
		tl.outcome[strings.TrimPrefix(key, app+"rollouts/"+tl.version+"/outcomes/")] = now
	case strings.HasPrefix(key, app+"slots/") && ev.Type == clientv3.EventTypeDelete:
		host := strings.TrimPrefix(key, app+"slots/")
		if _, ok := tl.deploying[host]; ok {
			tl.freed[host] = now
		}
	}
}

// report prints the breakdown of the rollout (canary: the canary's host id).
func (tl *timeline) report(canary string, maxPar int) {
	tl.cancel()
	<-tl.done
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
	fmt.Printf("  rollout timeline (%d hosts deployed):\n", len(tl.deploying))
	fmt.Printf("    publish -> the poller published it:            %s\n", s(tl.published.Sub(tl.start)))
	fmt.Printf("    published -> the canary deploys:               %s\n", s(tl.deploying[canary].Sub(tl.published)))
	fmt.Printf("    the canary's deploy (deploying -> outcome):    %s\n", s(tl.outcome[canary].Sub(tl.deploying[canary])))
	var starts, frees []time.Time
	var deploy, release time.Duration
	n := 0
	var last time.Time
	for h, d := range tl.deploying {
		if h == canary {
			continue
		}
		starts = append(starts, d)
		if o, ok := tl.outcome[h]; ok {
			deploy += o.Sub(d)
			n++
			if f, ok := tl.freed[h]; ok {
				release += f.Sub(o)
				frees = append(frees, f)
			}
			last = maxTime(last, o)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	sort.Slice(frees, func(i, j int) bool { return frees[i].Before(frees[j]) })
	if len(starts) == 0 || n == 0 {
		return
	}
	fmt.Printf("    the canary's outcome -> the first wave deploys: %s\n", s(starts[0].Sub(tl.outcome[canary])))
	fmt.Printf("    a host's deploy (deploying -> outcome), mean:  %s\n", s(deploy/time.Duration(n)))
	fmt.Printf("    outcome -> slot freed, mean:                   %s\n", s(release/time.Duration(max(len(frees), 1))))
	// The k-th slot freed lets the (maxPar+k)-th host in.
	var handoff time.Duration
	k := 0
	for ; k < len(frees) && maxPar+k < len(starts); k++ {
		handoff += starts[maxPar+k].Sub(frees[k])
	}
	if k > 0 {
		fmt.Printf("    slot freed -> the next host deploys, mean:     %s (%d handoffs)\n", s(handoff/time.Duration(k)), k)
	}
	span := last.Sub(starts[0])
	fmt.Printf("    first wave -> last outcome:                    %s; slots busy deploying %.0f%% of it\n",
		s(span), 100*deploy.Seconds()/(span.Seconds()*float64(maxPar)))
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
