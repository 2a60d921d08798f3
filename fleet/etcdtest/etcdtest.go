// Package etcdtest runs an etcd cluster inside a test process (embedded
// members on loopback, each with its own data dir and ports) and a TCP proxy
// that cuts one client's connection on demand.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Cluster is an embedded etcd cluster. Its methods are for the test's
// goroutine only.
type Cluster struct {
	t       testing.TB
	names   []string
	dirs    []string
	client  []url.URL
	peer    []url.URL
	initial string
	members []*embed.Etcd
}

// Start runs an n-member cluster (TickMs 10, ElectionMs 100) and stops it when
// the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, members: make([]*embed.Etcd, n)}
	var parts []string
	for i := range n {
		c.names = append(c.names, fmt.Sprintf("m%d", i))
		c.dirs = append(c.dirs, t.TempDir())
		c.client = append(c.client, freeURL(t))
		c.peer = append(c.peer, freeURL(t))
		parts = append(parts, c.names[i]+"="+c.peer[i].String())
	}
	c.initial = strings.Join(parts, ",")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(i, "new") }()
	}
	wg.Wait()
	t.Cleanup(c.Close)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("etcdtest: start cluster: %v", err)
	}
	return c
}

func freeURL(t testing.TB) url.URL {
	t.Helper()
	u, err := loopbackURL()
	if err != nil {
		t.Fatalf("etcdtest: free port: %v", err)
	}
	return u
}

// loopbackURL is an http URL on a free loopback port, for an etcd listener.
func loopbackURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	return url.URL{Scheme: "http", Host: addr}, nil
}

// Member runs one etcd member on free loopback ports with its data in dir,
// for programs (the fleet demo, the fleet benchmark) rather than tests; tune,
// when not nil, changes its config before it starts. It returns once the
// member is ready, with its client URL and the function that stops it.
func Member(dir string, tune func(*embed.Config)) (endpoint string, stop func(), err error) {
	client, err := loopbackURL()
	if err != nil {
		return "", nil, fmt.Errorf("start etcd: %w", err)
	}
	peer, err := loopbackURL()
	if err != nil {
		return "", nil, fmt.Errorf("start etcd: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	if tune != nil {
		tune(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return "", nil, errors.New("etcd did not become ready")
	}
	return client.String(), e.Close, nil
}

func (c *Cluster) start(i int, state string) error {
	cfg := embed.NewConfig()
	cfg.Name = c.names[i]
	cfg.Dir = c.dirs[i]
	cfg.ListenClientUrls = []url.URL{c.client[i]}
	cfg.AdvertiseClientUrls = []url.URL{c.client[i]}
	cfg.ListenPeerUrls = []url.URL{c.peer[i]}
	cfg.AdvertisePeerUrls = []url.URL{c.peer[i]}
	cfg.InitialCluster = c.initial
	cfg.ClusterState = state
	cfg.InitialClusterToken = "etcdtest"
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"/dev/null"}
	cfg.UnsafeNoFsync = true
	cfg.BcryptCost = 4 // bcrypt's minimum: auth tests stay fast under -race
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("member %s: %w", c.names[i], err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return fmt.Errorf("member %s: not ready after 30s", c.names[i])
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("member %s: %w", c.names[i], err)
	}
	c.members[i] = e
	return nil
}

// Endpoints returns the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.client))
	for i, u := range c.client {
		out[i] = u.String()
	}
	return out
}

// Stop stops member i (its data stays).
func (c *Cluster) Stop(i int) {
	if e := c.members[i]; e != nil {
		e.Close()
		c.members[i] = nil
	}
}

// Restart starts the stopped members is at once (they need each other for a
// quorum) and waits until they are ready.
func (c *Cluster) Restart(is ...int) {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(is))
	for k, i := range is {
		wg.Add(1)
		go func() { defer wg.Done(); errs[k] = c.start(i, "existing") }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatalf("etcdtest: restart: %v", err)
	}
}

// Close stops every member.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}

// Proxy forwards TCP connections to a set of targets (the first that
// answers); Cut closes every connection and refuses new ones until Restore.
type Proxy struct {
	l       net.Listener
	targets []string
	mu      sync.Mutex
	cut     bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewProxy listens on loopback and forwards to targets (host:port or URLs).
// It closes when the test ends.
func NewProxy(t testing.TB, targets ...string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: proxy: %v", err)
	}
	p := &Proxy{l: l, conns: map[net.Conn]struct{}{}}
	for _, tg := range targets {
		if u, err := url.Parse(tg); err == nil && u.Host != "" {
			tg = u.Host
		}
		p.targets = append(p.targets, tg)
	}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Endpoint is the proxy's URL for an etcd client.
func (p *Proxy) Endpoint() string { return "http://" + p.l.Addr().String() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.pipe(in)
	}
}

func (p *Proxy) pipe(in net.Conn) {
	defer p.wg.Done()
	var out net.Conn
	for _, tg := range p.targets {
		c, err := net.DialTimeout("tcp", tg, time.Second)
		if err == nil {
			out = c
			break
		}
	}
	if out == nil {
		_ = in.Close()
		return
	}
	if !p.track(in, out) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	_ = in.Close()
	_ = out.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// Cut closes every connection through the proxy and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy.
func (p *Proxy) Close() {
	_ = p.l.Close()
	p.Cut()
	p.wg.Wait()
}

// WaitHealthy is a helper for tests that must not start before the cluster
// has a leader: it returns when ctx ends or ping succeeds.
func WaitHealthy(ctx context.Context, ping func(context.Context) error) error {
	for {
		if err := ping(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
