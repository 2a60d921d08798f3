package fleet

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestViewNext applies random batches of watch events to a view and checks
// after each batch that it equals the view rebuilt from every key, and that
// the view before the batch did not change (views are shared with readers).
func TestViewNext(t *testing.T) {
	k := keys{"/p"}
	const app = "web"
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	versions := []string{"v1", "v2"}
	hosts := []string{"h1", "h2", "h/3", "h4", "h5"}
	// Every key an app has, and a value for it (sometimes unreadable).
	value := func(r *rand.Rand, key string) []byte {
		if r.IntN(10) == 0 {
			return []byte("{not json")
		}
		v := versions[r.IntN(len(versions))]
		h := hosts[r.IntN(len(hosts))]
		switch {
		case key == k.release(app):
			return js(Release{Version: v})
		case key == k.done(app):
			return []byte(v)
		case len(key) > len(k.slots(app)) && key[:len(k.slots(app))] == k.slots(app):
			return js(SlotRecord{Host: h, Version: v})
		case len(key) > len(k.poller(app)) && key[:len(k.poller(app))] == k.poller(app):
			return []byte(h)
		}
		return js(map[string]any{"version": v, "ok": r.IntN(2) == 0, "hosts": map[string]string{h: "failed"},
			"canaries": []string{h}, "max_parallel": 2})
	}
	var all []string
	all = append(all, k.release(app), k.paused(app), k.done(app), k.poller(app)+"1a", k.poller(app)+"2b",
		"/p/apps/other/release", k.app(app)+"rollouts/broken")
	for _, v := range versions {
		all = append(all, k.bad(app, v), k.plan(app, v), k.releaseOf(app, v), k.promoted(app, v), k.rollout(app, v)+"unknown")
		for _, h := range hosts {
			all = append(all, k.outcome(app, v, h))
		}
	}
	for _, h := range hosts {
		all = append(all, k.slot(app, h))
	}

	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		kvs := map[string]*mvccpb.KeyValue{}
		rev := int64(1)
		v := buildView(k, app, rev, nil)
		for range 200 {
			var evs []*clientv3.Event
			for range 1 + r.IntN(4) {
				rev++
				key := all[r.IntN(len(all))]
				if _, ok := kvs[key]; ok && r.IntN(3) == 0 {
					delete(kvs, key)
					evs = append(evs, &clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}})
					continue
				}
				kv := &mvccpb.KeyValue{Key: []byte(key), Value: value(r, key), CreateRevision: rev, ModRevision: rev}
				if old, ok := kvs[key]; ok {
					kv.CreateRevision = old.CreateRevision
				}
				kvs[key] = kv
				evs = append(evs, &clientv3.Event{Type: clientv3.EventTypePut, Kv: kv})
			}
			before := fmt.Sprintf("%+v", dumpView(v))
			next := v.next(k, app, rev, evs)
			if after := fmt.Sprintf("%+v", dumpView(v)); after != before {
				t.Fatalf("seed %d rev %d: next changed the view it started from:\n%s\nnow\n%s", seed, rev, before, after)
			}
			var list []*mvccpb.KeyValue
			for _, kv := range kvs {
				list = append(list, kv)
			}
			want := buildView(k, app, rev, list)
			if !reflect.DeepEqual(dumpView(next), dumpView(want)) {
				t.Fatalf("seed %d rev %d: after %d events\n got %+v\nwant %+v", seed, rev, len(evs), dumpView(next), dumpView(want))
			}
			v = next
		}
	}
}

// dumpView is v with its pointers followed, for comparing and printing.
func dumpView(v *appView) map[string]any {
	rollouts := map[string]any{}
	for ver, r := range v.rollouts {
		rollouts[ver] = map[string]any{"plan": deref(r.plan), "release": deref(r.release), "promoted": r.promoted, "outcomes": fmt.Sprint(r.outcomes)}
	}
	return map[string]any{"rev": v.rev, "release": deref(v.release), "paused": v.paused, "done": v.done,
		"bad": fmt.Sprint(v.bad), "slots": fmt.Sprint(v.slots), "leaders": fmt.Sprint(v.leaders), "rollouts": rollouts}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
