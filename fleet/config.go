package fleet

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// OnUnavailable says what a member does while etcd cannot be reached.
const (
	// Hold keeps what runs and deploys nothing new until etcd is back.
	Hold = "hold"
	// Local acts alone: the member polls and deploys as if it had no fleet.
	Local = "local"
)

// Defaults applied by [Fleet.WithDefaults] and [Rollout.WithDefaults]: the one
// place where they live.
const (
	DefaultSessionTTL       = 15 * time.Second
	DefaultPrefix           = "/dewy"
	DefaultOnUnavailable    = Hold
	DefaultFailureThreshold = 1
)

// Fleet is the decoded `fleet` block: plain comparable data, so "changed" is ==.
type Fleet struct {
	// HostID names this host in the fleet. Default: /etc/machine-id, then the
	// hostname (see [DefaultHostID]).
	HostID string
	// Labels are free-form; role = "canary" puts the host first in line.
	Labels Labels
	// SessionTTL is the etcd lease TTL: a dead host's leadership, slots and
	// registration go away within it.
	SessionTTL time.Duration
	// OnUnavailable is "hold" or "local".
	OnUnavailable string
	// Etcd is the etcd backend. Exactly one of Etcd and FleetLock is set.
	Etcd Etcd
	// FleetLock is the FleetLock backend (max_parallel = 1 per group, nothing else).
	FleetLock FleetLock
}

// Labels is a host's labels in canonical form "k=v,k=v" (sorted keys), so that
// [Fleet] stays comparable. Use [NewLabels] and [Labels.Map].
type Labels string

// NewLabels returns the canonical form of m.
func NewLabels(m map[string]string) Labels {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return Labels(strings.Join(parts, ","))
}

// Map returns the labels as a map.
func (l Labels) Map() map[string]string {
	m := map[string]string{}
	if l == "" {
		return m
	}
	for _, p := range strings.Split(string(l), ",") {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

// Etcd is the `etcd` block of `fleet`.
type Etcd struct {
	Endpoints Endpoints
	// Prefix is the root of every key the fleet writes; one per environment.
	Prefix   string
	CAFile   string
	CertFile string
	KeyFile  string
	Username string
	// Password is a secret: it never appears in errors, logs or String.
	Password string
}

// Endpoints is a comma-joined endpoint list, so that [Etcd] stays comparable.
type Endpoints string

// NewEndpoints joins eps.
func NewEndpoints(eps ...string) Endpoints { return Endpoints(strings.Join(eps, ",")) }

// List splits the endpoints.
func (e Endpoints) List() []string {
	if e == "" {
		return nil
	}
	return strings.Split(string(e), ",")
}

// FleetLock is the `fleetlock` block of `fleet`.
type FleetLock struct {
	URL   string
	Group string
}

// Enabled reports whether the etcd backend is configured.
func (e Etcd) Enabled() bool { return e.Endpoints != "" }

// Enabled reports whether the FleetLock backend is configured.
func (f FleetLock) Enabled() bool { return f.URL != "" }

// String prints the etcd settings with the password redacted.
func (e Etcd) String() string {
	pw := ""
	if e.Password != "" {
		pw = "<redacted>"
	}
	return fmt.Sprintf("etcd{endpoints=%s prefix=%s ca=%s cert=%s key=%s user=%s password=%s}",
		e.Endpoints, e.Prefix, e.CAFile, e.CertFile, e.KeyFile, e.Username, pw)
}

// GoString keeps %#v from printing the password too.
func (e Etcd) GoString() string { return e.String() }

// String prints the fleet settings with the password redacted.
func (f Fleet) String() string {
	return fmt.Sprintf("fleet{host=%s labels=%s session_ttl=%s on_unavailable=%s %s fleetlock=%s/%s}",
		f.HostID, f.Labels, f.SessionTTL, f.OnUnavailable, f.Etcd, f.FleetLock.URL, f.FleetLock.Group)
}

// GoString keeps %#v from printing the password too.
func (f Fleet) GoString() string { return f.String() }

// WithDefaults returns f with every unset field given its default. hostID is
// called only when HostID is empty (pass [DefaultHostID]).
func (f Fleet) WithDefaults(hostID func() (string, error)) (Fleet, error) {
	if f.HostID == "" && hostID != nil {
		id, err := hostID()
		if err != nil {
			return f, fmt.Errorf("fleet: host_id: %w", err)
		}
		f.HostID = id
	}
	if f.SessionTTL == 0 {
		f.SessionTTL = DefaultSessionTTL
	}
	if f.OnUnavailable == "" {
		f.OnUnavailable = DefaultOnUnavailable
	}
	if f.Etcd.Enabled() && f.Etcd.Prefix == "" {
		f.Etcd.Prefix = DefaultPrefix
	}
	if f.FleetLock.Enabled() && f.FleetLock.Group == "" {
		f.FleetLock.Group = "default"
	}
	return f, nil
}

// Validate returns every problem with f, joined; nil when f is usable. It does
// no I/O (files named by the TLS settings are read by [Join]).
func (f Fleet) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("fleet: "+format, a...)) }
	if f.HostID == "" {
		bad("host_id is empty")
	} else if strings.ContainsAny(f.HostID, "/ \t\n") {
		bad("host_id %q must not contain '/' or spaces", f.HostID)
	}
	for k := range f.Labels.Map() {
		if k == "" || strings.ContainsAny(k, ",=") {
			bad("label key %q is invalid", k)
		}
	}
	if f.SessionTTL < 2*time.Second {
		bad("session_ttl %s is too short; use at least 2s (etcd leases are whole seconds)", f.SessionTTL)
	} else if f.SessionTTL%time.Second != 0 {
		bad("session_ttl %s must be whole seconds", f.SessionTTL)
	}
	if f.OnUnavailable != Hold && f.OnUnavailable != Local {
		bad("on_unavailable = %q; use %q or %q", f.OnUnavailable, Hold, Local)
	}
	switch {
	case f.Etcd.Enabled() && f.FleetLock.Enabled():
		bad("set either an etcd block or a fleetlock block, not both")
	case !f.Etcd.Enabled() && !f.FleetLock.Enabled():
		bad("needs an etcd block with endpoints or a fleetlock block with a url")
	}
	if f.Etcd.Enabled() {
		for _, ep := range f.Etcd.Endpoints.List() {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix" && u.Scheme != "unixs") || u.Host == "" && u.Path == "" {
				bad("etcd endpoint %q is not a URL like https://10.0.0.1:2379", ep)
			}
		}
		if !strings.HasPrefix(f.Etcd.Prefix, "/") || strings.HasSuffix(f.Etcd.Prefix, "/") {
			bad("etcd prefix %q must start with '/' and not end with '/'", f.Etcd.Prefix)
		}
		if (f.Etcd.CertFile == "") != (f.Etcd.KeyFile == "") {
			bad("etcd cert_file and key_file go together")
		}
		if f.Etcd.Password != "" && f.Etcd.Username == "" {
			bad("etcd password is set without a username")
		}
	}
	if f.FleetLock.Enabled() {
		u, err := url.Parse(f.FleetLock.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("fleetlock url %q is not an http(s) URL", f.FleetLock.URL)
		}
	}
	return errors.Join(errs...)
}

// DefaultHostID returns the content of /etc/machine-id, or else the hostname.
func DefaultHostID() (string, error) { return hostIDFrom("/etc/machine-id", os.Hostname) }

func hostIDFrom(machineID string, hostname func() (string, error)) (string, error) {
	if b, err := os.ReadFile(machineID); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	h, err := hostname()
	if err != nil {
		return "", fmt.Errorf("no %s and no hostname: %w", machineID, err)
	}
	if h == "" {
		return "", fmt.Errorf("no %s and an empty hostname", machineID)
	}
	return h, nil
}

// Amount is a host count ("2") or a share of the hosts running the app ("10%").
type Amount string

// Resolve returns the amount for a fleet of n hosts: a percentage rounds up
// and is at least 1 when n > 0 and the percentage is above zero.
func (a Amount) Resolve(n int) int {
	s := string(a)
	if strings.HasSuffix(s, "%") {
		p, _ := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if p <= 0 || n <= 0 {
			return 0
		}
		return max(1, int(math.Ceil(p*float64(n)/100)))
	}
	v, _ := strconv.Atoi(s)
	return v
}

func (a Amount) validate(name string, min int) error {
	s := string(a)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || v > 100 || (min > 0 && v == 0) {
			return fmt.Errorf("rollout: %s = %q; use a host count or a percentage in (0%%, 100%%]", name, s)
		}
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min {
		return fmt.Errorf("rollout: %s = %q; use a host count of at least %d or a percentage like \"10%%\"", name, s, min)
	}
	return nil
}

// Rollout is an app's `rollout` block. The zero Rollout (an app without the
// block) still shares the poll and the fleet's bad versions; its defaults
// deploy everywhere one host at a time without canaries.
type Rollout struct {
	// Canary is how many hosts deploy a new version first (count or "N%").
	Canary Amount
	// Bake is how long, after every canary is healthy, the others wait.
	Bake time.Duration
	// MaxParallel is how many hosts hold a deploy slot at once, fleet-wide.
	MaxParallel Amount
	// MinHealthyTime is how long a host keeps its slot after it is healthy.
	MinHealthyTime time.Duration
	// FailureThreshold is how many failed hosts make a version bad fleet-wide.
	FailureThreshold int
}

// WithDefaults returns r with every unset field given its default.
func (r Rollout) WithDefaults() Rollout {
	if r.Canary == "" {
		r.Canary = "0"
	}
	if r.MaxParallel == "" {
		r.MaxParallel = "1"
	}
	if r.FailureThreshold == 0 {
		r.FailureThreshold = DefaultFailureThreshold
	}
	return r
}

// Validate returns every problem with r (after [Rollout.WithDefaults]), joined.
func (r Rollout) Validate() error {
	var errs []error
	if err := r.Canary.validate("canary", 0); err != nil {
		errs = append(errs, err)
	}
	if err := r.MaxParallel.validate("max_parallel", 1); err != nil {
		errs = append(errs, err)
	}
	if r.Bake < 0 {
		errs = append(errs, fmt.Errorf("rollout: bake %s is negative", r.Bake))
	}
	if r.MinHealthyTime < 0 {
		errs = append(errs, fmt.Errorf("rollout: min_healthy_time %s is negative", r.MinHealthyTime))
	}
	if r.FailureThreshold < 1 {
		errs = append(errs, fmt.Errorf("rollout: failure_threshold %d must be at least 1", r.FailureThreshold))
	}
	return errors.Join(errs...)
}
