package fleet

import (
	"context"
	"sort"
	"sync"

	"google.golang.org/grpc"
)

// RequestCounter counts the etcd requests of one member, for benchmarks and
// metrics: every unary call by method, every stream opened, and every message
// sent on a stream (lease keep-alives are "send:/etcdserverpb.Lease/LeaseKeepAlive").
// Give it to [Join] in [Options.Counter]. Safe for concurrent use.
type RequestCounter struct {
	mu     sync.Mutex
	counts map[string]int64
}

// NewRequestCounter returns an empty counter.
func NewRequestCounter() *RequestCounter { return &RequestCounter{counts: map[string]int64{}} }

func (c *RequestCounter) add(key string) {
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
}

// DialOptions returns the gRPC options that make the etcd client count.
func (c *RequestCounter) DialOptions() []grpc.DialOption {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		c.add("unary:" + method)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c.add("stream:" + method)
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &countedStream{ClientStream: s, c: c, key: "send:" + method}, nil
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

type countedStream struct {
	grpc.ClientStream
	c   *RequestCounter
	key string
}

func (s *countedStream) SendMsg(m any) error {
	s.c.add(s.key)
	return s.ClientStream.SendMsg(m)
}

// Snapshot returns the counts so far, by "kind:method".
func (c *RequestCounter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// KeepAlive is the key of lease keep-alive messages in a [RequestCounter.Snapshot].
const KeepAlive = "send:/etcdserverpb.Lease/LeaseKeepAlive"

// Requests returns the total count, and the keys counted, leaving out lease
// keep-alives and stream opens of keep-alive streams.
func (c *RequestCounter) Requests() (int64, []string) {
	var n int64
	var keys []string
	for k, v := range c.Snapshot() {
		if k == KeepAlive || k == "stream:/etcdserverpb.Lease/LeaseKeepAlive" {
			continue
		}
		n += v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return n, keys
}
