package fleetagents

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
)

// fleetChecker watches every key of one app in the fleet (the layout of
// docs/fleet.md) and records each broken rule: more than max_parallel hosts
// deploying, a non-canary deploying before the canaries were healthy and the
// bake was over, a deploy of a fleet-bad version, two pollers in one term.
type fleetChecker struct {
	prefix, app string

	mu         sync.Mutex
	violations []string
	kvs        map[string]*mvccpb.KeyValue // Follow's, read in process only
	state      map[string]fleet.HostApp    // host -> last seen
	healthyAt  map[string]time.Time        // version -> when its canaries were all healthy
	termLeader map[int64]string
	deployers  map[string][]string // version -> hosts that started deploying it
	maxBusy    int
}

// bakeSlack absorbs the gap between when the checker and a host saw the
// canaries healthy.
const bakeSlack = 200 * time.Millisecond

func startFleetChecker(t *testing.T, endpoints []string, prefix, app string) *fleetChecker {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := &fleetChecker{prefix: prefix, app: app, state: map[string]fleet.HostApp{},
		healthyAt: map[string]time.Time{}, termLeader: map[int64]string{}, deployers: map[string][]string{}}
	// Registered before Follow, so it runs once the watch has stopped.
	t.Cleanup(func() {
		cli.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, v := range c.violations {
			t.Errorf("fleet checker: %s", v)
		}
		t.Logf("fleet checker: deployers %v; at most %d hosts deploying at once", c.deployers, c.maxBusy)
	})
	etcdtest.Follow(t, cli, prefix+"/", c.process)
	return c
}

func (c *fleetChecker) violate(format string, a ...any) {
	c.violations = append(c.violations, fmt.Sprintf(format, a...))
}

func (c *fleetChecker) appKey(rest string) string { return c.prefix + "/apps/" + c.app + "/" + rest }

// process checks the app as it stands after revision rev.
func (c *fleetChecker) process(rev int64, kvs map[string]*mvccpb.KeyValue, evs []*clientv3.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kvs = kvs
	for _, ev := range evs {
		if ev.Type != clientv3.EventTypePut || string(ev.Kv.Key) != c.appKey("release") {
			continue
		}
		var r fleet.Release
		if err := json.Unmarshal(ev.Kv.Value, &r); err != nil {
			c.violate("unreadable release: %v", err)
		} else if prev, ok := c.termLeader[r.Term]; ok && prev != r.Leader {
			c.violate("two pollers in term %d: %s and %s", r.Term, prev, r.Leader)
		} else {
			c.termLeader[r.Term] = r.Leader
		}
	}
	c.check(rev)
}

// value returns the value of key, and whether the key is there.
func (c *fleetChecker) value(key string) ([]byte, bool) {
	kv, ok := c.kvs[key]
	if !ok {
		return nil, false
	}
	return kv.Value, true
}

func (c *fleetChecker) plan(version string) *fleet.Plan {
	b, ok := c.value(c.appKey("rollouts/" + version + "/plan"))
	if !ok {
		return nil
	}
	var p fleet.Plan
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	return &p
}

func (c *fleetChecker) canariesHealthy(p *fleet.Plan) bool {
	for _, h := range p.Canaries {
		var o fleet.Outcome
		b, ok := c.value(c.appKey("rollouts/" + p.Version + "/outcomes/" + h))
		if !ok || json.Unmarshal(b, &o) != nil || !o.OK {
			return false
		}
	}
	return true
}

func (c *fleetChecker) check(rev int64) {
	now := time.Now()
	for key := range c.kvs {
		rest, ok := strings.CutPrefix(key, c.appKey("rollouts/"))
		if !ok || !strings.HasSuffix(rest, "/plan") {
			continue
		}
		v := strings.TrimSuffix(rest, "/plan")
		if p := c.plan(v); p != nil && c.healthyAt[v].IsZero() && c.canariesHealthy(p) {
			c.healthyAt[v] = now
		}
	}
	busy := map[string]int{} // version -> hosts deploying or holding a slot
	for key, kv := range c.kvs {
		host, ok := strings.CutPrefix(key, c.prefix+"/hosts/")
		if !ok {
			continue
		}
		var rec fleet.HostRecord
		if json.Unmarshal(kv.Value, &rec) != nil {
			c.violate("rev %d: unreadable host record of %s", rev, host)
			continue
		}
		a, ok := rec.Apps[c.app]
		if !ok {
			continue
		}
		prev := c.state[host]
		c.state[host] = a
		if a.Phase != fleet.PhaseDeploying && a.Phase != fleet.PhaseHealthy {
			continue
		}
		busy[a.Target]++
		if a.Phase != fleet.PhaseDeploying || (prev.Phase == a.Phase && prev.Target == a.Target) {
			continue
		}
		// host starts deploying a.Target now.
		c.deployers[a.Target] = append(c.deployers[a.Target], host)
		if _, bad := c.kvs[c.appKey("bad/"+a.Target)]; bad {
			c.violate("rev %d: %s deploys %s, which is bad for the fleet", rev, host, a.Target)
		}
		p := c.plan(a.Target)
		if p == nil {
			c.violate("rev %d: %s deploys %s, which has no plan", rev, host, a.Target)
			continue
		}
		if slices.Contains(p.Canaries, host) {
			continue
		}
		if _, promoted := c.kvs[c.appKey("rollouts/"+a.Target+"/promoted")]; promoted {
			continue
		}
		if !c.canariesHealthy(p) {
			c.violate("rev %d: %s deploys %s before its canaries %v are healthy", rev, host, a.Target, p.Canaries)
		} else if since := now.Sub(c.healthyAt[a.Target]); since < p.Bake-bakeSlack {
			c.violate("rev %d: %s deploys %s %s after the canaries were healthy; bake is %s", rev, host, a.Target, since, p.Bake)
		}
	}
	for v, n := range busy {
		if p := c.plan(v); p != nil && n > p.MaxParallel {
			c.violate("rev %d: %d hosts deploy %s at once; max_parallel is %d", rev, n, v, p.MaxParallel)
		}
		c.maxBusy = max(c.maxBusy, n)
	}
}

// deployersOf returns the hosts that started deploying version.
func (c *fleetChecker) deployersOf(version string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.deployers[version])
}
