package fleet

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// HostRecord is the value of P/hosts/<host>, bound to the host's session.
type HostRecord struct {
	Host   string             `json:"host"`
	Labels map[string]string  `json:"labels,omitempty"`
	Apps   map[string]HostApp `json:"apps"`
}

// HostApp is one app on one host.
type HostApp struct {
	Version string `json:"version"`          // deployed version, "" for none
	Phase   Phase  `json:"phase"`            // idle, deploying, install, healthy
	Target  string `json:"target,omitempty"` // the version being deployed
	// Baked is the bake this host measured on its own clock before deploying
	// Target (zero for canaries and promoted rollouts).
	Baked time.Duration `json:"baked,omitempty"`
}

// Plan is the value of P/apps/<app>/rollouts/<version>/plan: fixed when the
// version is first seen, so every host follows the same numbers.
type Plan struct {
	Version          string        `json:"version"`
	Canaries         []string      `json:"canaries"`
	MaxParallel      int           `json:"max_parallel"`
	Bake             time.Duration `json:"bake"`
	MinHealthyTime   time.Duration `json:"min_healthy_time"`
	FailureThreshold int           `json:"failure_threshold"`
	Hosts            int           `json:"hosts"` // hosts running the app when planned
	By               string        `json:"by"`
}

func (p Plan) isCanary(host string) bool {
	for _, c := range p.Canaries {
		if c == host {
			return true
		}
	}
	return false
}

// Outcome is the value of .../outcomes/<host>.
type Outcome struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// BadVersion is the value of P/apps/<app>/bad/<version>.
type BadVersion struct {
	Version string            `json:"version"`
	Hosts   map[string]string `json:"hosts"` // host -> reason
}

// SlotRecord is the value of P/apps/<app>/slots/<host>.
type SlotRecord struct {
	Host    string `json:"host"`
	Version string `json:"version"`
}

// slotKV is a slot key with its create revision (the semaphore order).
type slotKV struct {
	SlotRecord
	Rev int64
}

// rolloutView is one version's rollout as read from etcd.
type rolloutView struct {
	plan     *Plan
	release  *Release // as published; kept after a newer release replaces it
	promoted bool
	outcomes map[string]Outcome
}

// appView is every key of one app, parsed.
type appView struct {
	rev      int64
	release  *Release
	paused   bool
	done     string
	bad      map[string]BadVersion
	slots    []slotKV // ordered by create revision
	rollouts map[string]*rolloutView
	leaders  []slotKV // poller election keys (value = host), by create revision
}

func (v *appView) rollout(version string) *rolloutView {
	r := v.rollouts[version]
	if r == nil {
		r = &rolloutView{outcomes: map[string]Outcome{}}
		v.rollouts[version] = r
	}
	return r
}

// decodeCache keeps the parsed value of each key of an app by key and mod
// revision, so that rebuilding the view after a watch event parses only the
// keys that changed (a rollout on many hosts keeps hundreds of keys: slots,
// outcomes, election keys). It belongs to one goroutine.
type decodeCache map[string]decoded

type decoded struct {
	rev int64
	v   any
	ok  bool
}

// decode parses kv's JSON value as a T, through c when it is not nil.
func decode[T any](c decodeCache, kv *mvccpb.KeyValue) (T, bool) {
	if e, hit := c[string(kv.Key)]; hit && e.rev == kv.ModRevision {
		if v, isT := e.v.(T); isT {
			return v, e.ok
		}
	}
	var v T
	ok := json.Unmarshal(kv.Value, &v) == nil
	if c != nil {
		c[string(kv.Key)] = decoded{rev: kv.ModRevision, v: v, ok: ok}
	}
	return v, ok
}

// buildView parses the keys of app (the kvs of P/apps/<app>/); cache may be
// nil. The values it returns are shared with the cache and other views:
// read only.
func buildView(k keys, app string, rev int64, kvs []*mvccpb.KeyValue, cache decodeCache) *appView {
	v := &appView{rev: rev, bad: map[string]BadVersion{}, rollouts: map[string]*rolloutView{}}
	for _, kv := range kvs {
		a, rest, ok := k.parseAppKey(string(kv.Key))
		if !ok || a != app {
			continue
		}
		switch {
		case rest == "release":
			if r, ok := decode[Release](cache, kv); ok {
				v.release = &r
			}
		case rest == "paused":
			v.paused = true
		case rest == "done":
			v.done = string(kv.Value)
		case strings.HasPrefix(rest, "bad/"):
			b, _ := decode[BadVersion](cache, kv)
			b.Version = unesc(strings.TrimPrefix(rest, "bad/"))
			v.bad[b.Version] = b
		case strings.HasPrefix(rest, "slots/"):
			s, _ := decode[SlotRecord](cache, kv)
			s.Host = unesc(strings.TrimPrefix(rest, "slots/"))
			v.slots = append(v.slots, slotKV{s, kv.CreateRevision})
		case strings.HasPrefix(rest, "poller/"):
			v.leaders = append(v.leaders, slotKV{SlotRecord{Host: string(kv.Value)}, kv.CreateRevision})
		default:
			ver, what, host, ok := parseRolloutRest(rest)
			if !ok {
				continue
			}
			r := v.rollout(ver)
			switch what {
			case "plan":
				if p, ok := decode[Plan](cache, kv); ok {
					r.plan = &p
				}
			case "release":
				if rel, ok := decode[Release](cache, kv); ok {
					r.release = &rel
				}
			case "promoted":
				r.promoted = true
			case "outcomes":
				if o, ok := decode[Outcome](cache, kv); ok {
					r.outcomes[host] = o
				}
			}
		}
	}
	sort.Slice(v.slots, func(i, j int) bool { return v.slots[i].Rev < v.slots[j].Rev })
	sort.Slice(v.leaders, func(i, j int) bool { return v.leaders[i].Rev < v.leaders[j].Rev })
	return v
}

// releaseOf returns the release record of version as it was published, or
// nil when it is unknown (never published, or its rollout's keys removed).
func (v *appView) releaseOf(version string) *Release {
	if r := v.rollouts[version]; r != nil && r.release != nil {
		return r.release
	}
	if v.release != nil && v.release.Version == version {
		return v.release
	}
	return nil
}

// firstInstall is the release a host with nothing deployed installs at once:
// the last fully rolled-out version, when it is not bad and its release
// record is known.
func (v *appView) firstInstall() *Release {
	if v.done == "" || v.bad[v.done].Version != "" {
		return nil
	}
	return v.releaseOf(v.done)
}

// slotRank returns how many slot keys come before host's, and whether host
// has one.
func (v *appView) slotRank(host string) (int, bool) {
	for i, s := range v.slots {
		if s.Host == host {
			return i, true
		}
	}
	return 0, false
}

// canariesHealthy reports whether every canary of the plan reported success.
func (r *rolloutView) canariesHealthy() (bool, []string) {
	var waiting []string
	for _, c := range r.plan.Canaries {
		if o, ok := r.outcomes[c]; !ok || !o.OK {
			waiting = append(waiting, c)
		}
	}
	return len(waiting) == 0, waiting
}

// phase is the fleet-wide phase of version's rollout.
func (v *appView) phase(version string) Phase {
	switch {
	case version == "":
		return PhaseIdle
	case v.bad[version].Version != "":
		return PhaseStopped
	case v.paused:
		return PhasePaused
	case v.done == version:
		return PhaseDone
	}
	r := v.rollouts[version]
	if r == nil || r.plan == nil {
		return PhaseCanary
	}
	if ok, _ := r.canariesHealthy(); !ok {
		return PhaseCanary
	}
	if r.promoted || r.plan.Bake == 0 {
		return PhaseRollout
	}
	for h := range r.outcomes {
		if !r.plan.isCanary(h) {
			return PhaseRollout
		}
	}
	for _, s := range v.slots {
		if s.Version == version && !r.plan.isCanary(s.Host) {
			return PhaseRollout
		}
	}
	return PhaseBake
}

// choosePlan fixes the rollout of version for the hosts running app.
func choosePlan(version, by string, r Rollout, hosts []HostRecord) Plan {
	var labelled, others []string
	for _, h := range hosts {
		if h.Labels["role"] == "canary" {
			labelled = append(labelled, h.Host)
		} else {
			others = append(others, h.Host)
		}
	}
	sort.Strings(labelled)
	sort.Strings(others)
	n := len(hosts)
	want := min(r.Canary.Resolve(n), n)
	canaries := append(labelled, others...)[:want]
	return Plan{
		Version:          version,
		Canaries:         append([]string{}, canaries...),
		MaxParallel:      max(1, r.MaxParallel.Resolve(n)),
		Bake:             r.Bake,
		MinHealthyTime:   r.MinHealthyTime,
		FailureThreshold: r.FailureThreshold,
		Hosts:            n,
		By:               by,
	}
}
