// Package tcpproxy is the agent's TCP proxy: it holds a public port and forwards
// each connection to one of the backends in its rotation. The container runner
// puts its replicas behind it; the server runner, with proxy = true, its healthy
// generation. Its words:
//
//   - Backend: one address a proxy may forward to ("127.0.0.1:<port>"), with a
//     count of the connections it forwards there. The address may change (a
//     restarted container publishes a new port); the count is how a runner knows
//     that a backend out of rotation is drained.
//   - Rotation: the backends a proxy sends NEW connections to, round-robin; a
//     backend that refuses a connection is skipped. Taking a backend out of
//     rotation leaves its open connections alone: they end when either side
//     closes them.
//
// The proxy forwards bytes, not requests: a keep-alive connection stays with the
// backend it was first forwarded to until one side closes it. Half-closes are
// passed on.
//
// A proxy is safe for concurrent use. Close stops it; nothing else does.
package tcpproxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy timings.
const (
	// DialTimeout bounds one connection attempt to a backend.
	DialTimeout = 2 * time.Second
	// BackendWait is how long a client connection waits for a backend to take it
	// when none in rotation answers (all starting, restarting, or none yet).
	BackendWait = 10 * time.Second
	// HalfCloseWait is how long a client may go on sending after the backend
	// closed its side of the connection.
	HalfCloseWait = 10 * time.Second
)

// Backend is one address a proxy forwards to. Make it with NewBackend; one
// Backend may be in the rotation of one proxy.
type Backend struct {
	name   string                 // for logs: a container name, a generation
	addr   atomic.Pointer[string] // "127.0.0.1:<port>"
	active atomic.Int64           // forwarded connections open, dials included
}

// NewBackend returns a backend named name (for logs) at addr ("host:port").
func NewBackend(name, addr string) *Backend {
	b := &Backend{name: name}
	b.addr.Store(&addr)
	return b
}

// Name is the backend's name, for logs.
func (b *Backend) Name() string { return b.name }

// Addr is the address new connections are dialled to.
func (b *Backend) Addr() string { return *b.addr.Load() }

// SetAddr changes the address for the next connections; open ones stay.
func (b *Backend) SetAddr(addr string) { b.addr.Store(&addr) }

// Active is how many forwarded connections to b are open, dials under way
// included.
func (b *Backend) Active() int64 { return b.active.Load() }

// Proxy listens on one port and forwards each connection to a backend in
// rotation.
type Proxy struct {
	ln     net.Listener
	logger *slog.Logger

	mu       sync.Mutex
	rotation []*Backend
	next     int
	wake     chan struct{} // closed and replaced when the rotation changes
	conns    map[net.Conn]struct{}
	closed   bool
	done     chan struct{} // closed by Close

	wg sync.WaitGroup // the accept loop and every connection handler
}

// Listen binds addr (":8080" for every interface, "127.0.0.1:0" for a free
// loopback port) and starts accepting. Connections that arrive while the
// rotation is empty wait up to BackendWait for a backend.
func Listen(addr string, logger *slog.Logger) (*Proxy, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Serve(ln, logger), nil
}

// Serve is Listen on a listener the caller made: a socket it keeps elsewhere
// too, or one taken over from another process. Close closes ln.
func Serve(ln net.Listener, logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		ln:     ln,
		logger: logger,
		wake:   make(chan struct{}),
		conns:  map[net.Conn]struct{}{},
		done:   make(chan struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// changed wakes the connections waiting for a backend. Callers hold p.mu.
func (p *Proxy) changed() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// Add puts backends in rotation.
func (p *Proxy) Add(bs ...*Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range bs {
		if !slices.Contains(p.rotation, b) {
			p.rotation = append(p.rotation, b)
		}
	}
	p.changed()
}

// Remove takes backends out of rotation. Once it returns, no new connection
// goes to them; the ones already open stay (see Idle).
func (p *Proxy) Remove(bs ...*Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rotation = slices.DeleteFunc(slices.Clone(p.rotation), func(b *Backend) bool { return slices.Contains(bs, b) })
	p.changed()
}

// Set makes bs the whole rotation in one step: once it returns, every new
// connection goes to one of bs and none to a backend that was there before.
func (p *Proxy) Set(bs ...*Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rotation = slices.Clone(bs)
	p.next = 0
	p.changed()
}

// InRotation reports whether b takes new connections.
func (p *Proxy) InRotation(b *Backend) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.rotation, b)
}

// Rotation returns the backends in rotation, in order.
func (p *Proxy) Rotation() []*Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rotation)
}

// Idle waits until the backends have no open connection, ctx is done or the
// deadline passes. It reports whether they are idle. Backends out of rotation
// gain no connection, so once idle they stay idle.
func Idle(ctx context.Context, deadline time.Time, bs []*Backend) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		open := int64(0)
		for _, b := range bs {
			open += b.active.Load()
		}
		if open == 0 {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// Close stops accepting (the port is free once it returns), lets open
// connections finish until ctx is done or drain has passed, then closes them,
// and returns when every handler has returned. Closing twice does nothing.
func (p *Proxy) Close(ctx context.Context, drain time.Duration) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.changed()
	p.mu.Unlock()
	p.ln.Close()

	deadline := time.Now().Add(drain)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		p.mu.Lock()
		n := len(p.conns)
		p.mu.Unlock()
		if n == 0 || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off a little and go on.
			p.logger.Warn("proxy accept", "addr", p.ln.Addr().String(), "err", err)
			select {
			case <-p.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.handle(c)
	}
}

// handle forwards one client connection.
func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	b, server := p.dial()
	if server == nil {
		client.Close()
		return
	}
	defer b.active.Add(-1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.mu.Unlock()

	pipe(client, server)

	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
	client.Close()
	server.Close()
}

// dial connects to a backend in rotation, round-robin, trying the others when one
// refuses, and waiting up to BackendWait for one to take the connection. The
// chosen backend's active count is already raised; nil when none did.
func (p *Proxy) dial() (*Backend, net.Conn) {
	deadline := time.Now().Add(BackendWait)
	tried := map[*Backend]bool{}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, nil
		}
		var b *Backend
		n := len(p.rotation)
		for i := range n {
			cand := p.rotation[(p.next+i)%n]
			if !tried[cand] {
				b = cand
				p.next = (p.next + i + 1) % n
				break
			}
		}
		if b != nil {
			// Raised under the lock: once Remove or Set returns, a backend
			// gains no connection, so Idle can trust the count.
			b.active.Add(1)
		}
		wake := p.wake
		p.mu.Unlock()

		if b != nil {
			addr := b.Addr()
			c, err := net.DialTimeout("tcp", addr, DialTimeout)
			if err == nil {
				return b, c
			}
			b.active.Add(-1)
			tried[b] = true
			p.logger.Debug("proxy: backend refused a connection; trying another", "backend", b.name, "addr", addr, "err", err)
			continue
		}
		if !time.Now().Before(deadline) {
			p.logger.Warn("proxy: no backend took a connection; closing it", "addr", p.ln.Addr().String(), "waited", BackendWait)
			return nil, nil
		}
		select {
		case <-wake:
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
		clear(tried)
	}
}

// pipe copies both ways until both sides are done, passing half-closes on.
func pipe(client, server net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(server, client)
		closeWrite(server)
	}()
	io.Copy(client, server)
	closeWrite(client)
	// The backend is done; a client that does not close in time is closed.
	client.SetReadDeadline(time.Now().Add(HalfCloseWait))
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		return
	}
	c.Close()
}
