package agent

import (
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Limits of the admin API. A request is small and quick; anything that takes
// longer or holds more is not the CLI or a metrics scraper.
const (
	// AdminMaxConns is the most connections the admin API holds open. Past
	// it, a new connection closes the oldest idle one, or is closed itself
	// when every connection is busy, so a flood of idle connections can never
	// take the file descriptors deploys need.
	AdminMaxConns = 64
	// AdminReadHeaderTimeout bounds reading a request's headers, and how
	// long a connection may stay open before it sends anything.
	AdminReadHeaderTimeout = 5 * time.Second
	// AdminReadTimeout bounds reading a whole request.
	AdminReadTimeout = 10 * time.Second
	// AdminWriteTimeout bounds writing a response.
	AdminWriteTimeout = 30 * time.Second
	// AdminIdleTimeout closes a keep-alive connection idle this long.
	AdminIdleTimeout = 30 * time.Second
	// AdminMaxBodyBytes bounds a request body.
	AdminMaxBodyBytes = 64 << 10
	// AdminMaxHeaderBytes bounds a request's headers.
	AdminMaxHeaderBytes = 16 << 10
	// AdminClientHeader is the header the CLI sends with every request. A
	// state-changing request needs it or a JSON content type: a browser
	// cannot send either cross-site without a CORS preflight, which the
	// admin API never grants.
	AdminClientHeader = "X-Dewy-Agent"
)

// adminGuard wraps the admin API's handler with the rules that keep other
// web sites and other users off it:
//
//   - the Host header must name the API's own address (127.0.0.1, [::1],
//     localhost, the configured host, or any IP literal when bound to every
//     interface), so DNS rebinding cannot reach it from a browser;
//   - a request with an Origin header from anywhere else is refused;
//   - a POST needs Content-Type: application/json or X-Dewy-Agent;
//   - with a token, every request but GET /healthz needs
//     "Authorization: Bearer <token>";
//   - bodies are limited to AdminMaxBodyBytes.
type adminGuard struct {
	next     http.Handler
	hosts    map[string]bool // lower-case host names and IPs allowed in Host and Origin
	anyIP    bool            // bound to every interface: any IP literal is the API's own
	token    func() string
	refusals func(reason string)
}

// newAdminGuard returns the guard for an API configured as addr ("host:port")
// and bound at bound (the listener's address).
func newAdminGuard(next http.Handler, addr, bound string, token func() string) *adminGuard {
	g := &adminGuard{next: next, token: token, hosts: map[string]bool{
		"localhost": true, "127.0.0.1": true, "::1": true,
	}}
	for _, hp := range []string{addr, bound} {
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			g.anyIP = true
			if name, err := os.Hostname(); err == nil && name != "" {
				g.hosts[strings.ToLower(name)] = true
			}
			continue
		}
		g.hosts[host] = true
	}
	return g
}

// ownHost reports whether hostport (a Host header, or an Origin's host)
// names the API's own address.
func (g *adminGuard) ownHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if g.hosts[host] {
		return true
	}
	return g.anyIP && net.ParseIP(host) != nil
}

func (g *adminGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.ownHost(r.Host) {
		refuse(w, http.StatusMisdirectedRequest, fmt.Sprintf("this is the dewy-agent admin API; it answers only to its own address, not to host %q", r.Host))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !g.ownHost(u.Host) {
			refuse(w, http.StatusForbidden, "cross-site request refused: the Origin is not the admin API's own address")
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !fromClient(r) {
		refuse(w, http.StatusForbidden, "cross-site request refused: a "+r.Method+" needs Content-Type: application/json or the header "+AdminClientHeader+": 1")
		return
	}
	if tok := g.token(); tok != "" && !(r.Method == http.MethodGet && r.URL.Path == "/healthz") {
		if !validBearer(r.Header.Get("Authorization"), tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dewy-agent"`)
			refuse(w, http.StatusUnauthorized, "the admin API needs a token: set DEWY_ADMIN_TOKEN or pass -token (the agent block's admin_token)")
			return
		}
	}
	if r.ContentLength > AdminMaxBodyBytes {
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: the admin API takes at most %d bytes", AdminMaxBodyBytes))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, AdminMaxBodyBytes)
	g.next.ServeHTTP(w, r)
}

// fromClient reports whether r carries a mark a browser cannot add to a
// simple cross-site request: the CLI's header or a JSON content type.
func fromClient(r *http.Request) bool {
	if r.Header.Get(AdminClientHeader) != "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// validBearer compares the Authorization header with "Bearer <token>" in
// constant time.
func validBearer(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

func refuse(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// connLimiter is a listener that holds at most max connections. When a new
// connection would pass the limit it closes the connection that has been
// idle (or silent since it opened) longest; when every connection is busy
// with a request, it closes the new one instead.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*connEntry
}

type connEntry struct {
	state http.ConnState
	since time.Time
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, conns: map[net.Conn]*connEntry{}}
}

// Accept returns the next connection, making room for it first.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.conns) >= l.max {
			victim := l.oldestIdle()
			if victim == nil {
				l.mu.Unlock()
				c.Close()
				continue
			}
			delete(l.conns, victim)
			victim.Close()
		}
		l.conns[c] = &connEntry{state: http.StateNew, since: time.Now()}
		l.mu.Unlock()
		return c, nil
	}
}

// oldestIdle returns the connection that has waited longest without a
// request in progress, or nil. The caller holds l.mu.
func (l *connLimiter) oldestIdle() net.Conn {
	var victim net.Conn
	var since time.Time
	for c, e := range l.conns {
		if e.state != http.StateNew && e.state != http.StateIdle {
			continue
		}
		if victim == nil || e.since.Before(since) {
			victim, since = c, e.since
		}
	}
	return victim
}

// track is the http.Server's ConnState hook.
func (l *connLimiter) track(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		if e := l.conns[c]; e != nil {
			e.state, e.since = s, time.Now()
		}
	}
}

// open returns how many connections the limiter holds.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
