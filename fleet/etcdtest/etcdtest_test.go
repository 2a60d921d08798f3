package etcdtest

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func TestMember(t *testing.T) {
	tuned := false
	endpoint, stop, err := Member(t.TempDir(), func(cfg *embed.Config) {
		cfg.TickMs, cfg.ElectionMs = 10, 100
		tuned = true
	})
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	defer stop()
	if !tuned {
		t.Error("tune was not called")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := cli.Get(t.Context(), "k")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v" {
		t.Fatalf("get = %v, %v; want k=v", got, err)
	}
}
