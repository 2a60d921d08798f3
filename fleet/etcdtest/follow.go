package etcdtest

import (
	"context"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Follow reads every key under prefix and then follows their changes, one
// revision at a time: after applying a revision's events to the keys it
// calls each with the revision, the keys as they now stand (key ->
// KeyValue) and the revision's events. each runs on one goroutine; the map
// is Follow's, to be read only inside each. The first read happens before
// Follow returns; the watch stops, and each is no longer called, when the
// test ends, before the clean-ups registered ahead of Follow run.
func Follow(t testing.TB, cli *clientv3.Client, prefix string, each func(rev int64, kvs map[string]*mvccpb.KeyValue, evs []*clientv3.Event)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		cancel()
		t.Fatalf("follow %s: %v", prefix, err)
	}
	kvs := map[string]*mvccpb.KeyValue{}
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = kv
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for wr := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				continue // the client watches again; tests do not compact
			}
			evs := wr.Events
			for len(evs) > 0 {
				rev := evs[0].Kv.ModRevision
				n := 0
				for n < len(evs) && evs[n].Kv.ModRevision == rev {
					if kv := evs[n].Kv; evs[n].Type == clientv3.EventTypeDelete {
						delete(kvs, string(kv.Key))
					} else {
						kvs[string(kv.Key)] = kv
					}
					n++
				}
				each(rev, kvs, evs[:n])
				evs = evs[n:]
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
