package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Options are the things a [Member] is given besides its config.
type Options struct {
	// Logger receives the member's logs; nil discards them.
	Logger *slog.Logger
	// Counter, when set, counts every etcd request the member makes.
	Counter *RequestCounter
	// OpTimeout bounds each etcd request; default 5s.
	OpTimeout time.Duration
	// MaxBackoff caps the wait between reconnect attempts; default session_ttl.
	MaxBackoff time.Duration
}

// Member is this host in the fleet. Make it with [Join], get a handle per app
// with [Member.App], and [Member.Close] it when the agent stops.
//
// All methods are safe for concurrent use. The member keeps one etcd session
// (lease) alive; when etcd cannot be reached it retries with backoff and
// reports itself unavailable ([Member.Available]); what apps do then is
// decided by on_unavailable.
type Member struct {
	cfg    Fleet
	opts   Options
	logger *slog.Logger
	keys   keys
	client *clientv3.Client

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	probe  chan struct{} // an op failed: check etcd now
	// campaigns are the apps' election campaigns, which may outlive their
	// app's loop until the client is closed (AppHandle.loop).
	campaigns sync.WaitGroup

	mu        sync.Mutex
	sess      *concurrency.Session
	sctx      context.Context // cancelled when sess ends
	avail     bool
	reason    string
	availCh   chan struct{} // closed and replaced when avail or sess changes
	apps      map[string]*AppHandle
	pending   []pendingOutcome
	abandoned bool
}

type pendingOutcome struct {
	app, version, reason string
	ok                   bool
}

// Join makes a member for cfg (defaults applied, valid) and starts it in the
// background. It does no network I/O: it reads the TLS files and returns; the
// member connects on its own. Use [Member.WaitAvailable] to wait for etcd.
// ctx is not retained; [Member.Close] stops the member.
func Join(ctx context.Context, cfg Fleet, opts Options) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Etcd.Enabled() {
		return nil, errors.New("fleet: Join needs the etcd backend; use fleet/fleetlock for FleetLock")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 5 * time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = cfg.SessionTTL
	}
	if err := checkTLSFiles(cfg); err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &Member{
		cfg: cfg, opts: opts, logger: opts.Logger.With("host", cfg.HostID),
		keys: keys{cfg.Etcd.Prefix},
		ctx:  mctx, cancel: cancel, done: make(chan struct{}), probe: make(chan struct{}, 1),
		availCh: make(chan struct{}), apps: map[string]*AppHandle{}, reason: "connecting",
	}
	go m.run()
	return m, nil
}

// checkTLSFiles reads the TLS files, so that a wrong path is an error of Join.
func checkTLSFiles(cfg Fleet) error {
	_, err := tlsConfig(cfg.Etcd)
	return err
}

// newClient builds the etcd client for cfg. With a username it authenticates,
// which needs etcd: dialTimeout bounds that.
func newClient(cfg Fleet, counter *RequestCounter, dialTimeout time.Duration) (*clientv3.Client, error) {
	ccfg := clientv3.Config{
		DialTimeout:          dialTimeout,
		Endpoints:            cfg.Etcd.Endpoints.List(),
		Username:             cfg.Etcd.Username,
		Password:             cfg.Etcd.Password,
		DialKeepAliveTime:    cfg.SessionTTL / 3,
		DialKeepAliveTimeout: cfg.SessionTTL / 3,
		Logger:               zap.NewNop(),
	}
	if counter != nil {
		ccfg.DialOptions = counter.DialOptions()
	}
	t, err := tlsConfig(cfg.Etcd)
	if err != nil {
		return nil, err
	}
	ccfg.TLS = t
	c, err := clientv3.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd client for %s: %w", cfg.Etcd.Endpoints, err)
	}
	return c, nil
}

// tlsConfig returns the TLS settings of e, or nil for plain connections.
func tlsConfig(e Etcd) (*tls.Config, error) {
	if e.CAFile == "" && e.CertFile == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("fleet: etcd ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("fleet: etcd ca_file %s holds no PEM certificate", e.CAFile)
		}
		t.RootCAs = pool
	}
	if e.CertFile != "" {
		c, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("fleet: etcd cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{c}
	}
	return t, nil
}

// HostID is this member's host id.
func (m *Member) HostID() string { return m.cfg.HostID }

// Config is the member's config.
func (m *Member) Config() Fleet { return m.cfg }

// Available reports whether etcd is reachable, and if not, why.
func (m *Member) Available() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.avail, m.reason
}

// WaitAvailable blocks until etcd is reachable or ctx ends.
func (m *Member) WaitAvailable(ctx context.Context) error {
	for {
		m.mu.Lock()
		ok, ch := m.avail, m.availCh
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return ErrClosed
		case <-ch:
		}
	}
}

// Close stops the member: it resigns its elections and revokes its lease, so
// its slots and registration go at once. Close does not return before every
// goroutine of the member has ended, and waits at most ctx for etcd.
func (m *Member) Close(ctx context.Context) error {
	m.cancel()
	<-m.done
	m.mu.Lock()
	sess := m.sess
	abandoned := m.abandoned
	m.mu.Unlock()
	var err error
	if sess != nil && !abandoned {
		rctx, cancel := context.WithTimeout(ctx, m.opts.OpTimeout)
		_, err = m.cli().Revoke(rctx, sess.Lease())
		cancel()
		if err != nil {
			err = fmt.Errorf("fleet: revoke lease: %w", err)
		}
	}
	if c := m.cli(); c != nil {
		if cerr := c.Close(); cerr != nil && err == nil && !errors.Is(cerr, context.Canceled) {
			err = fmt.Errorf("fleet: close etcd client: %w", cerr)
		}
	}
	m.waitApps()
	m.campaigns.Wait()
	return err
}

// abandon stops the member as a crash would: nothing is revoked, so its lease
// (and every slot and election key on it) lives until session_ttl passes.
// For tests.
func (m *Member) abandon() {
	m.mu.Lock()
	m.abandoned = true
	sess := m.sess
	m.mu.Unlock()
	if sess != nil {
		sess.Orphan()
	}
	m.cancel()
	<-m.done
	if c := m.cli(); c != nil {
		_ = c.Close()
	}
	m.waitApps()
	m.campaigns.Wait()
}

// waitApps waits for every app loop, which ends with the member's context:
// only then may campaigns be waited on, since a loop adds to it.
func (m *Member) waitApps() {
	for _, h := range m.handles() {
		<-h.done
	}
}

// handles returns the member's app handles at this moment, for work done
// without holding the member's lock.
func (m *Member) handles() []*AppHandle {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.apps))
}

// cli returns the etcd client, nil until the member first reached etcd.
func (m *Member) cli() *clientv3.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.client
}

// session returns the current session and its context, or nils.
func (m *Member) session() (*concurrency.Session, context.Context, chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.avail {
		return nil, nil, m.availCh
	}
	return m.sess, m.sctx, m.availCh
}

func (m *Member) setAvail(ok bool, reason string) {
	m.mu.Lock()
	changed := m.avail != ok
	first := !ok && !m.avail && m.reason == "connecting" // the first attempt failed
	m.avail, m.reason = ok, reason
	m.mu.Unlock()
	if changed || first {
		m.notify()
		if ok {
			m.logger.Info("fleet: etcd available")
		} else {
			m.logger.Warn("fleet: etcd unavailable", "reason", reason, "on_unavailable", m.cfg.OnUnavailable)
		}
	}
}

// notify wakes everyone waiting on availCh.
func (m *Member) notify() {
	m.mu.Lock()
	close(m.availCh)
	m.availCh = make(chan struct{})
	m.mu.Unlock()
}

// failed is called when an etcd request failed: the supervisor checks etcd.
func (m *Member) failed(err error) {
	if err == nil || m.ctx.Err() != nil {
		return
	}
	m.setAvail(false, err.Error())
	select {
	case m.probe <- struct{}{}:
	default:
	}
}

func (m *Member) opCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(parent), m.opts.OpTimeout)
}

// run is the supervisor: it keeps one session alive and the member
// registered, and checks etcd when something failed.
func (m *Member) run() {
	defer close(m.done)
	defer m.stopApps()
	failures := 0
	for m.ctx.Err() == nil && m.cli() == nil {
		// With a username the client authenticates at once; etcd hashes the
		// password with bcrypt, which can take a while on a busy server.
		c, err := newClient(m.cfg, m.opts.Counter, max(m.opts.OpTimeout, 5*time.Second))
		if err == nil {
			m.mu.Lock()
			m.client = c
			m.mu.Unlock()
			break
		}
		failures++
		m.setAvail(false, err.Error())
		if !m.sleep(backoff(failures, m.opts.MaxBackoff)) {
			return
		}
	}
	for m.ctx.Err() == nil {
		sess, err := m.newSession()
		if err != nil {
			failures++
			m.setAvail(false, err.Error())
			if !m.sleep(backoff(failures, m.opts.MaxBackoff)) {
				return
			}
			continue
		}
		failures = 0
		sctx, scancel := context.WithCancel(m.ctx)
		m.mu.Lock()
		m.sess, m.sctx = sess, sctx
		m.mu.Unlock()
		if err := m.register(sctx); err != nil {
			m.failed(err)
		} else {
			m.setAvail(true, "")
			m.flushPending(sctx)
		}
		m.startApps()
		m.watchSession(sess)
		scancel()
		m.notify()
		if m.ctx.Err() == nil {
			m.setAvail(false, "etcd session lost")
		}
	}
}

// watchSession returns when sess ends or the member stops; in between it
// answers probe requests.
func (m *Member) watchSession(sess *concurrency.Session) {
	fails := 0
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-sess.Done():
			return
		case <-m.probe:
		}
		// Something failed: check etcd until it answers, or the session ends.
		for {
			ctx, cancel := m.opCtx(m.ctx)
			resp, err := m.cli().Get(ctx, m.keys.host(m.cfg.HostID))
			cancel()
			if err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].Lease == int64(sess.Lease()) {
				fails = 0
				m.setAvail(true, "")
				m.flushPending(m.ctx)
				break
			}
			if err == nil {
				// Not registered on this lease: register again; if the lease
				// itself expired while we were away, start a new session.
				if rerr := m.register(m.ctx); rerr == nil {
					fails = 0
					m.setAvail(true, "")
					m.flushPending(m.ctx)
					break
				} else if errors.Is(rerr, rpctypes.ErrLeaseNotFound) {
					sess.Orphan()
					return
				} else {
					err = rerr
				}
			}
			fails++
			m.setAvail(false, err.Error())
			select {
			case <-m.ctx.Done():
				return
			case <-sess.Done():
				return
			case <-time.After(backoff(fails, m.opts.MaxBackoff)):
			}
		}
	}
}

func (m *Member) newSession() (*concurrency.Session, error) {
	ctx, cancel := m.opCtx(m.ctx)
	lease, err := m.cli().Grant(ctx, int64(m.cfg.SessionTTL/time.Second))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("fleet: grant lease: %w", err)
	}
	s, err := concurrency.NewSession(m.client, concurrency.WithLease(lease.ID), concurrency.WithContext(m.ctx),
		concurrency.WithTTL(int(m.cfg.SessionTTL/time.Second)))
	if err != nil {
		return nil, fmt.Errorf("fleet: session: %w", err)
	}
	return s, nil
}

func (m *Member) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// record is this host's record as it should be in etcd.
func (m *Member) record() HostRecord {
	r := HostRecord{Host: m.cfg.HostID, Labels: m.cfg.Labels.Map(), Apps: map[string]HostApp{}}
	for _, h := range m.handles() {
		r.Apps[h.name] = h.hostApp()
	}
	return r
}

// register writes the host record on the current session's lease.
func (m *Member) register(ctx context.Context) error {
	m.mu.Lock()
	sess := m.sess
	m.mu.Unlock()
	if sess == nil {
		return ErrUnavailable
	}
	b, err := json.Marshal(m.record())
	if err != nil {
		return err
	}
	octx, cancel := m.opCtx(ctx)
	defer cancel()
	if _, err := m.cli().Put(octx, m.keys.host(m.cfg.HostID), string(b), clientv3.WithLease(sess.Lease())); err != nil {
		return fmt.Errorf("fleet: register host: %w", err)
	}
	return nil
}

// putHost writes the host record with extra ops in one transaction guarded by
// cmps; it reports whether the guard held.
func (m *Member) putHost(ctx context.Context, cmps []clientv3.Cmp, ops ...clientv3.Op) (bool, error) {
	return m.putHostTxn(ctx, cmps, false, ops)
}

// putHostAnyway writes the host record with extra ops whether cmps hold or
// not, and reports whether they held: a question asked of etcd at the
// revision of the write, in the same round trip.
func (m *Member) putHostAnyway(ctx context.Context, cmps []clientv3.Cmp, ops ...clientv3.Op) (bool, error) {
	return m.putHostTxn(ctx, cmps, true, ops)
}

func (m *Member) putHostTxn(ctx context.Context, cmps []clientv3.Cmp, anyway bool, ops []clientv3.Op) (bool, error) {
	m.mu.Lock()
	sess := m.sess
	ok := m.avail
	m.mu.Unlock()
	if sess == nil || !ok {
		return false, ErrUnavailable
	}
	b, err := json.Marshal(m.record())
	if err != nil {
		return false, err
	}
	octx, cancel := m.opCtx(ctx)
	defer cancel()
	ops = append(ops, clientv3.OpPut(m.keys.host(m.cfg.HostID), string(b), clientv3.WithLease(sess.Lease())))
	txn := m.cli().Txn(octx).If(cmps...).Then(ops...)
	if anyway {
		txn = txn.Else(ops...)
	}
	resp, err := txn.Commit()
	if err != nil {
		m.failed(err)
		return false, fmt.Errorf("fleet: update host record: %w", err)
	}
	return resp.Succeeded, nil
}

func (m *Member) startApps() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.apps {
		h.kick()
	}
}

func (m *Member) stopApps() {
	for _, h := range m.handles() {
		h.stop()
	}
}

func (m *Member) queue(p pendingOutcome) {
	m.mu.Lock()
	m.pending = append(m.pending, p)
	m.mu.Unlock()
}

// flushPending writes the outcomes recorded while etcd was away.
func (m *Member) flushPending(ctx context.Context) {
	m.mu.Lock()
	pend := m.pending
	m.pending = nil
	apps := make(map[string]*AppHandle, len(m.apps))
	for k, h := range m.apps {
		apps[k] = h
	}
	m.mu.Unlock()
	for _, h := range apps {
		if err := h.releaseLeftover(ctx); err != nil {
			m.logger.Warn("fleet: give back a slot", "app", h.name, "err", err)
		}
	}
	for i, p := range pend {
		h := apps[p.app]
		if h == nil {
			continue
		}
		if err := h.writeOutcome(ctx, p.version, p.ok, p.reason); err != nil {
			m.mu.Lock()
			m.pending = append(append([]pendingOutcome{}, pend[i:]...), m.pending...)
			m.mu.Unlock()
			return
		}
		m.logger.Info("fleet: recorded an outcome from while etcd was away", "app", p.app, "version", p.version, "ok", p.ok)
	}
}

// backoff is 200ms doubled per failure, capped at max.
func backoff(n int, max time.Duration) time.Duration {
	d := 200 * time.Millisecond
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
