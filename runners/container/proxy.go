package container

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy timings.
const (
	// dialTimeout bounds one connection attempt to a replica's published port.
	dialTimeout = 2 * time.Second
	// backendWait is how long a client connection waits for a replica to take it
	// when none in rotation answers (all starting, restarting, or none yet).
	backendWait = 10 * time.Second
	// halfCloseWait is how long a client may go on sending after the replica closed
	// its side of the connection.
	halfCloseWait = 10 * time.Second
)

// backend is one replica's published port, as seen by one proxy.
type backend struct {
	replica string                 // container name, for logs
	addr    atomic.Pointer[string] // "127.0.0.1:<port>"; changes if the container restarts
	active  atomic.Int64           // proxied connections open, dials included
}

func newBackend(replica, addr string) *backend {
	b := &backend{replica: replica}
	b.addr.Store(&addr)
	return b
}

// proxy listens on one port and forwards each connection to a backend in
// rotation, round-robin, skipping backends that refuse the connection.
type proxy struct {
	ln     net.Listener
	logger *slog.Logger

	mu       sync.Mutex
	rotation []*backend
	next     int
	wake     chan struct{} // closed and replaced when the rotation changes
	conns    map[net.Conn]struct{}
	closed   bool
	done     chan struct{} // closed by close

	wg sync.WaitGroup // the accept loop and every connection handler
}

// listen binds the port on all interfaces and starts accepting.
func listen(port int, logger *slog.Logger) (*proxy, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	p := &proxy{
		ln:     ln,
		logger: logger,
		wake:   make(chan struct{}),
		conns:  map[net.Conn]struct{}{},
		done:   make(chan struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) addr() net.Addr { return p.ln.Addr() }

// changed wakes the connections waiting for a backend. Callers hold p.mu.
func (p *proxy) changed() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// add puts backends in rotation.
func (p *proxy) add(bs ...*backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range bs {
		if !containsBackend(p.rotation, b) {
			p.rotation = append(p.rotation, b)
		}
	}
	p.changed()
}

// remove takes backends out of rotation. Once it returns, no new connection goes
// to them; the ones already open stay (see idle).
func (p *proxy) remove(bs ...*backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.rotation[:0:0]
	for _, b := range p.rotation {
		if !containsBackend(bs, b) {
			kept = append(kept, b)
		}
	}
	p.rotation = kept
	p.changed()
}

func containsBackend(bs []*backend, b *backend) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// inRotation reports whether b takes new connections.
func (p *proxy) inRotation(b *backend) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return containsBackend(p.rotation, b)
}

// idle waits until the backends have no open connection, ctx is done or the
// deadline passes. It reports whether they are idle.
func idle(ctx context.Context, deadline time.Time, bs []*backend) bool {
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

// close stops accepting, lets open connections finish until ctx is done or drain
// has passed, then closes them, and returns when every handler has returned.
func (p *proxy) close(ctx context.Context, drain time.Duration) {
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

func (p *proxy) accept() {
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
func (p *proxy) handle(client net.Conn) {
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
// refuses, and waiting up to backendWait for one to take the connection. The
// chosen backend's active count is already raised; nil when none did.
func (p *proxy) dial() (*backend, net.Conn) {
	deadline := time.Now().Add(backendWait)
	tried := map[*backend]bool{}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, nil
		}
		var b *backend
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
			// Raised under the lock: once remove returns, a backend gains no
			// connection, so idle can trust the count.
			b.active.Add(1)
		}
		wake := p.wake
		p.mu.Unlock()

		if b != nil {
			addr := *b.addr.Load()
			c, err := net.DialTimeout("tcp", addr, dialTimeout)
			if err == nil {
				return b, c
			}
			b.active.Add(-1)
			tried[b] = true
			p.logger.Debug("proxy: replica refused a connection; trying another", "replica", b.replica, "addr", addr, "err", err)
			continue
		}
		if !time.Now().Before(deadline) {
			p.logger.Warn("proxy: no replica took a connection; closing it", "addr", p.ln.Addr().String(), "waited", backendWait)
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
	// The replica is done; a client that does not close in time is closed.
	client.SetReadDeadline(time.Now().Add(halfCloseWait))
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		return
	}
	c.Close()
}
