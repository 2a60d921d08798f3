package fleet

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	rangeCalls = "unary:/etcdserverpb.KV/Range"
	txnCalls   = "unary:/etcdserverpb.KV/Txn"
)

// TestOutcomeRoundTrips drives three hosts through one slot (max_parallel 1)
// by hand, in the order a, b, c, and counts what each success costs in etcd
// requests, from ReportOutcome to the end of Slot.Healthy. With
// min_healthy_time 0 the slot key goes in the outcome's own transaction (the
// same revision); with min_healthy_time > 0 the slot stays held that long.
// Only the last host to report reads the host records (and records the
// version done): a and b each know c reports after them.
func TestOutcomeRoundTrips(t *testing.T) {
	tests := []struct {
		name       string
		minHealthy time.Duration
		// etcd requests of each host's ReportOutcome + Healthy, in host order
		wantTxn   []int64
		wantRange []int64
	}{
		{name: "min_healthy_time 0", minHealthy: 0, wantTxn: []int64{1, 1, 1}, wantRange: []int64{0, 0, 1}},
		// Healthy writes the host record; the slot goes min_healthy_time later.
		{name: "min_healthy_time 400ms", minHealthy: 400 * time.Millisecond, wantTxn: []int64{2, 2, 2}, wantRange: []int64{0, 0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := Rollout{MaxParallel: "1", MinHealthyTime: tc.minHealthy}
			hosts := []string{"a", "b", "c"}
			handles := map[string]*AppHandle{}
			for _, id := range hosts {
				handles[id] = e.join(e.config(id, nil)).App(e.app, r)
			}
			eventually(t, 5*time.Second, "watches in sync", func() bool {
				for _, h := range handles {
					if !h.State().Synced {
						return false
					}
				}
				return true
			})
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()

			// Queue a, b, c in that order; a holds the slot.
			type gated struct {
				d   Decision
				err error
			}
			got := map[string]chan gated{}
			for _, id := range hosts {
				ch := make(chan gated, 1)
				got[id] = ch
				go func() { d, err := handles[id].Gate(ctx, "v1"); ch <- gated{d, err} }()
				eventually(t, 5*time.Second, id+" queued", func() bool {
					st := handles[id].State()
					return st.Phase == PhaseSlot || st.Phase == PhaseDeploying
				})
			}
			for i, id := range hosts {
				h := handles[id]
				var g gated
				select {
				case g = <-got[id]:
				case <-ctx.Done():
					t.Fatalf("%s never got the slot", id)
				}
				if g.err != nil || !g.d.Allowed {
					t.Fatalf("%s: Gate = %+v, %v", id, g.d, g.err)
				}
				// The hosts behind this one are in its view before it reports.
				eventually(t, 5*time.Second, id+" sees the queue", func() bool {
					h.mu.Lock()
					defer h.mu.Unlock()
					return h.view != nil && len(h.view.slots) == len(hosts)-i
				})
				before := h.m.opts.Counter.Snapshot()
				if err := h.ReportOutcome(ctx, "v1", true, ""); err != nil {
					t.Fatalf("%s: ReportOutcome: %v", id, err)
				}
				if err := g.d.Slot.Healthy(ctx); err != nil {
					t.Fatalf("%s: Healthy: %v", id, err)
				}
				after := h.m.opts.Counter.Snapshot()
				txns, ranges := after[txnCalls]-before[txnCalls], after[rangeCalls]-before[rangeCalls]
				t.Logf("%s: %d transactions, %d reads from its outcome to Healthy", id, txns, ranges)
				if txns != tc.wantTxn[i] || ranges != tc.wantRange[i] {
					t.Errorf("%s: %d transactions and %d reads; want %d and %d", id, txns, ranges, tc.wantTxn[i], tc.wantRange[i])
				}

				slotKey := h.m.keys.slot(e.app, id)
				oresp, err := e.op.client.Get(ctx, h.m.keys.outcome(e.app, "v1", id))
				if err != nil || len(oresp.Kvs) != 1 {
					t.Fatalf("%s: outcome: %v, %v", id, oresp, err)
				}
				rev := oresp.Kvs[0].ModRevision
				if tc.minHealthy == 0 {
					if n := keyCount(t, e, slotKey, rev-1); n != 1 {
						t.Errorf("%s: slot key missing just before the outcome's revision %d", id, rev)
					}
					if n := keyCount(t, e, slotKey, rev); n != 0 {
						t.Errorf("%s: slot key still there at the outcome's revision %d; want it deleted in the same transaction", id, rev)
					}
					if a := hostApp(t, e, id, rev); a.Phase != PhaseIdle || a.Version != "v1" {
						t.Errorf("%s: host record at the outcome = %+v; want v1, idle", id, a)
					}
					continue
				}
				if n := keyCount(t, e, slotKey, 0); n != 1 {
					t.Errorf("%s: slot given back at once; want it held for min_healthy_time %s", id, tc.minHealthy)
				}
				if i+1 < len(hosts) {
					select {
					case <-got[hosts[i+1]]:
						t.Fatalf("%s got the slot while %s held it for min_healthy_time", hosts[i+1], id)
					case <-time.After(tc.minHealthy / 2):
					}
				}
				eventually(t, 5*time.Second, id+" gives its slot back", func() bool { return keyCount(t, e, slotKey, 0) == 0 })
			}
			eventually(t, 5*time.Second, "v1 recorded done", func() bool { return e.appStatus().Done == "v1" })
		})
	}
}

// keyCount is how many keys named key exist at rev (0: now).
func keyCount(t *testing.T, e *env, key string, rev int64) int64 {
	t.Helper()
	resp, err := e.op.client.Get(t.Context(), key, clientv3.WithRev(rev), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("get %s at %d: %v", key, rev, err)
	}
	return resp.Count
}

// hostApp is host's record of the app at rev.
func hostApp(t *testing.T, e *env, host string, rev int64) HostApp {
	t.Helper()
	resp, err := e.op.client.Get(t.Context(), keys{e.prefix}.host(host), clientv3.WithRev(rev))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("host record of %s at %d: %v, %v", host, rev, resp, err)
	}
	var r HostRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		t.Fatal(err)
	}
	return r.Apps[e.app]
}

// TestOutcomeStaleView: the host that reports last must look at the host
// records even when its view, behind etcd, still shows another host queued
// and not reported. b reports first (a is still to come, so b does not
// look); a reports with the view it had before b's outcome, and must find
// out from etcd that b has reported, look, and record the version done.
// b keeps its slot (min_healthy_time), so only the outcome's absence tells.
func TestOutcomeStaleView(t *testing.T) {
	e := newEnv(t)
	r := Rollout{MaxParallel: "2", MinHealthyTime: 3 * time.Second}
	a := e.join(e.config("a", nil)).App(e.app, r)
	b := e.join(e.config("b", nil)).App(e.app, r)
	eventually(t, 5*time.Second, "watches in sync", func() bool { return a.State().Synced && b.State().Synced })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	da, db := gateBoth(t, ctx, a, b, "v1")
	slots := func(h *AppHandle, n int) func() bool {
		return func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.view != nil && len(h.view.slots) == n
		}
	}
	eventually(t, 5*time.Second, "a and b see both slots", func() bool { return slots(a, 2)() && slots(b, 2)() })
	a.mu.Lock()
	stale := a.view
	a.mu.Unlock()

	before := b.m.opts.Counter.Snapshot()[rangeCalls]
	if err := b.ReportOutcome(ctx, "v1", true, ""); err != nil {
		t.Fatal(err)
	}
	if n := b.m.opts.Counter.Snapshot()[rangeCalls] - before; n != 0 {
		t.Errorf("b read %d times; want none (a reports after it)", n)
	}
	_ = db.Slot.Healthy(ctx)
	eventually(t, 5*time.Second, "a sees b's outcome", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		r := a.view.rollouts["v1"]
		return r != nil && len(r.outcomes) == 1
	})
	a.mu.Lock()
	a.view = stale
	a.mu.Unlock()
	before = a.m.opts.Counter.Snapshot()[rangeCalls]
	if err := a.ReportOutcome(ctx, "v1", true, ""); err != nil {
		t.Fatal(err)
	}
	if n := a.m.opts.Counter.Snapshot()[rangeCalls] - before; n != 1 {
		t.Errorf("a read %d times; want 1 (it is the last)", n)
	}
	resp, err := e.op.client.Get(ctx, keys{e.prefix}.done(e.app))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Errorf("done after the last outcome: %d keys; want v1 recorded", len(resp.Kvs))
	}
	_ = da.Slot.Healthy(ctx)
}

// TestOutcomeLostByCrash: b deploys v1 and crashes before it reports its
// outcome (its lease, with its slot key and host record, lives on until
// session_ttl), then restarts within session_ttl running v1. a reports its
// success while b's old slot key is still there and b has no outcome, so a
// counts on b to look at the host records; b never reports v1 again (it runs
// it). v1 must still be recorded done, whether b is back before or after a's
// outcome.
func TestOutcomeLostByCrash(t *testing.T) {
	for _, restartFirst := range []bool{true, false} {
		name := "b back after a reports"
		if restartFirst {
			name = "b back before a reports"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			r := Rollout{MaxParallel: "2"}
			a := e.join(e.config("a", nil)).App(e.app, r)
			b := e.join(e.config("b", nil)).App(e.app, r)
			eventually(t, 5*time.Second, "watches in sync", func() bool { return a.State().Synced && b.State().Synced })
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			e.reg.set("v1")
			eventually(t, 5*time.Second, "a poller elected", func() bool { return a.IsPoller() || b.IsPoller() })
			poller := a
			if b.IsPoller() {
				poller = b
			}
			if err := poller.PublishRelease(ctx, e.reg.poll(poller.m.HostID())); err != nil {
				t.Fatalf("publish v1: %v", err)
			}
			da, _ := gateBoth(t, ctx, a, b, "v1")
			eventually(t, 5*time.Second, "a sees both slots", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				return a.view != nil && len(a.view.slots) == 2
			})
			// b has deployed v1; it crashes before ReportOutcome.
			b.m.abandon()
			restart := func() {
				b2 := e.join(e.config("b", nil)).App(e.app, r)
				eventually(t, 5*time.Second, "b in sync after its restart", func() bool { return b2.State().Synced })
				if err := b2.SetDeployed(ctx, "v1"); err != nil {
					t.Fatalf("b: SetDeployed after the restart: %v", err)
				}
			}
			if restartFirst {
				restart()
				if keyCount(t, e, keys{e.prefix}.slot(e.app, "b"), 0) != 0 {
					t.Errorf("b back running v1 kept the slot key of its crashed deploy")
				}
			}
			if !restartFirst && keyCount(t, e, keys{e.prefix}.slot(e.app, "b"), 0) != 1 {
				t.Fatalf("b's slot key gone before a reports; the test needs it held")
			}
			before := a.m.opts.Counter.Snapshot()[rangeCalls]
			if err := a.ReportOutcome(ctx, "v1", true, ""); err != nil {
				t.Fatal(err)
			}
			// Back first, b gave up its old slot key, so a looks; not back
			// yet, b's old key makes a count on b (the case b must handle).
			want := int64(0)
			if restartFirst {
				want = 1
			}
			if n := a.m.opts.Counter.Snapshot()[rangeCalls] - before; n != want {
				t.Errorf("a read %d times after its outcome; want %d", n, want)
			}
			_ = da.Slot.Healthy(ctx)
			if !restartFirst {
				restart()
			}
			// Long enough for b's old lease to expire twice over.
			eventually(t, 3*testTTL, "v1 recorded done once a and b run it", func() bool { return e.appStatus().Done == "v1" })
		})
	}
}

// gateBoth passes a and b through the gate for version; each must be allowed.
func gateBoth(t *testing.T, ctx context.Context, a, b *AppHandle, version string) (Decision, Decision) {
	t.Helper()
	da, err := a.Gate(ctx, version)
	if err != nil || !da.Allowed {
		t.Fatalf("a: Gate = %+v, %v", da, err)
	}
	db, err := b.Gate(ctx, version)
	if err != nil || !db.Allowed {
		t.Fatalf("b: Gate = %+v, %v", db, err)
	}
	return da, db
}
