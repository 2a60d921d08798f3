package fleet

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
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
	key string
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

// decode parses kv's JSON value as a T.
func decode[T any](kv *mvccpb.KeyValue) (T, bool) {
	var v T
	ok := json.Unmarshal(kv.Value, &v) == nil
	return v, ok
}

// buildView parses the keys of app (the kvs of P/apps/<app>/) at rev.
func buildView(k keys, app string, rev int64, kvs []*mvccpb.KeyValue) *appView {
	v := &appView{rev: rev, bad: map[string]BadVersion{}, rollouts: map[string]*rolloutView{}}
	e := &viewEdit{v: v, bulk: true, ownBad: true, ownSlots: true, ownLeaders: true, ownRollouts: true,
		own: map[string]bool{}, ownOutcomes: map[string]bool{}}
	for _, kv := range kvs {
		e.set(k, app, string(kv.Key), kv)
	}
	e.finish()
	return v
}

// next returns the view after the watch events evs, at rev. It parses only
// the keys of evs, and shares with v (which it leaves as it is) every part
// they did not change: a rollout on many hosts keeps hundreds of keys (slots,
// outcomes, election keys) and every host applies every change.
func (v *appView) next(k keys, app string, rev int64, evs []*clientv3.Event) *appView {
	n := *v
	n.rev = rev
	e := &viewEdit{v: &n, own: map[string]bool{}, ownOutcomes: map[string]bool{}}
	for _, ev := range evs {
		kv := ev.Kv
		if ev.Type == clientv3.EventTypeDelete {
			kv = nil
		}
		e.set(k, app, string(ev.Kv.Key), kv)
	}
	e.finish()
	return &n
}

// viewEdit changes a view that may share its maps, slices and rollouts with
// other views: each is copied before its first change (copy on write).
type viewEdit struct {
	v *appView
	// bulk: every key once, into an empty view (buildView); the queues are
	// sorted at the end.
	bulk                                      bool
	ownBad, ownSlots, ownLeaders, ownRollouts bool
	own                                       map[string]bool // rollouts copied, by version
	ownOutcomes                               map[string]bool // outcome maps copied, by version
}

// set records key as it is now: kv, or deleted when kv is nil.
func (e *viewEdit) set(k keys, app, key string, kv *mvccpb.KeyValue) {
	a, rest, ok := k.parseAppKey(key)
	if !ok || a != app {
		return
	}
	v := e.v
	switch {
	case rest == "release":
		v.release = nil
		if kv != nil {
			if r, ok := decode[Release](kv); ok {
				v.release = &r
			}
		}
	case rest == "paused":
		v.paused = kv != nil
	case rest == "done":
		v.done = ""
		if kv != nil {
			v.done = string(kv.Value)
		}
	case strings.HasPrefix(rest, "bad/"):
		if !e.ownBad {
			v.bad, e.ownBad = maps.Clone(v.bad), true
		}
		version := unesc(strings.TrimPrefix(rest, "bad/"))
		delete(v.bad, version)
		if kv != nil {
			b, _ := decode[BadVersion](kv)
			b.Version = version
			v.bad[version] = b
		}
	case strings.HasPrefix(rest, "slots/"):
		if !e.ownSlots {
			v.slots, e.ownSlots = slices.Clone(v.slots), true
		}
		var s SlotRecord
		if kv != nil {
			s, _ = decode[SlotRecord](kv)
			s.Host = unesc(strings.TrimPrefix(rest, "slots/"))
		}
		v.slots = e.setQueued(v.slots, key, s, kv)
	case strings.HasPrefix(rest, "poller/"):
		if !e.ownLeaders {
			v.leaders, e.ownLeaders = slices.Clone(v.leaders), true
		}
		var s SlotRecord
		if kv != nil {
			s.Host = string(kv.Value)
		}
		v.leaders = e.setQueued(v.leaders, key, s, kv)
	default:
		version, what, host, ok := parseRolloutRest(rest)
		if !ok || (kv == nil && v.rollouts[version] == nil) {
			return
		}
		r := e.rollout(version)
		switch what {
		case "plan":
			r.plan = nil
			if kv != nil {
				if p, ok := decode[Plan](kv); ok {
					r.plan = &p
				}
			}
		case "release":
			r.release = nil
			if kv != nil {
				if rel, ok := decode[Release](kv); ok {
					r.release = &rel
				}
			}
		case "promoted":
			r.promoted = kv != nil
		case "outcomes":
			if !e.ownOutcomes[version] {
				r.outcomes, e.ownOutcomes[version] = maps.Clone(r.outcomes), true
			}
			delete(r.outcomes, host)
			if kv != nil {
				if o, ok := decode[Outcome](kv); ok {
					r.outcomes[host] = o
				}
			}
		}
	}
}

// setQueued removes key from q (ordered by create revision) and, when kv is
// not nil, puts it back as s at its place.
func (e *viewEdit) setQueued(q []slotKV, key string, s SlotRecord, kv *mvccpb.KeyValue) []slotKV {
	if e.bulk {
		return append(q, slotKV{SlotRecord: s, Rev: kv.CreateRevision, key: key})
	}
	q = slices.DeleteFunc(q, func(e slotKV) bool { return e.key == key })
	if kv == nil {
		return q
	}
	i := sort.Search(len(q), func(i int) bool { return q[i].Rev > kv.CreateRevision })
	return slices.Insert(q, i, slotKV{SlotRecord: s, Rev: kv.CreateRevision, key: key})
}

// rollout returns version's rollout, copied for this edit.
func (e *viewEdit) rollout(version string) *rolloutView {
	if !e.ownRollouts {
		e.v.rollouts, e.ownRollouts = maps.Clone(e.v.rollouts), true
	}
	if e.own[version] {
		return e.v.rollouts[version]
	}
	r := &rolloutView{outcomes: map[string]Outcome{}}
	if old := e.v.rollouts[version]; old != nil {
		c := *old
		r = &c
	} else {
		e.ownOutcomes[version] = true
	}
	e.v.rollouts[version] = r
	e.own[version] = true
	return r
}

// finish drops the rollouts this edit left with nothing in them.
func (e *viewEdit) finish() {
	if e.bulk {
		byRev := func(a, b slotKV) int { return cmp.Compare(a.Rev, b.Rev) }
		slices.SortFunc(e.v.slots, byRev)
		slices.SortFunc(e.v.leaders, byRev)
	}
	for version := range e.own {
		r := e.v.rollouts[version]
		if r.plan == nil && r.release == nil && !r.promoted && len(r.outcomes) == 0 {
			delete(e.v.rollouts, version)
		}
	}
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
