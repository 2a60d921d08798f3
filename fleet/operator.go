package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Operator runs the operators' commands (fleet status, pause, resume,
// promote, retry) against the fleet's etcd, without joining the fleet. Each
// method makes one or two requests and returns when its ctx ends.
type Operator struct {
	client *clientv3.Client
	keys   keys
	owned  bool
}

// NewOperator returns an operator for cfg's etcd (defaults applied); Close
// it when done. With a username it authenticates at once, waiting at most
// dialTimeout (0: 5s) for etcd.
func NewOperator(cfg Fleet, counter *RequestCounter, dialTimeout time.Duration) (*Operator, error) {
	if !cfg.Etcd.Enabled() {
		return nil, errors.New("fleet: the operator commands need the etcd backend")
	}
	if dialTimeout == 0 {
		dialTimeout = 5 * time.Second
	}
	c, err := newClient(cfg, counter, dialTimeout)
	if err != nil {
		return nil, err
	}
	return &Operator{client: c, keys: keys{cfg.Etcd.Prefix}, owned: true}, nil
}

// Operator returns an operator that uses the member's etcd client, or
// ErrUnavailable before the member first reached etcd.
func (m *Member) Operator() (*Operator, error) {
	c := m.cli()
	if c == nil {
		return nil, ErrUnavailable
	}
	return &Operator{client: c, keys: m.keys}, nil
}

// Close closes the operator's client (not a member's).
func (o *Operator) Close() error {
	if !o.owned {
		return nil
	}
	return o.client.Close()
}

// Status is the fleet as read from etcd at one revision.
type Status struct {
	Revision int64        `json:"revision"`
	Hosts    []HostRecord `json:"hosts"` // live hosts (their records are on their leases)
	Apps     []AppStatus  `json:"apps"`
}

// AppStatus is one app across the fleet.
type AppStatus struct {
	Name    string   `json:"name"`
	Release *Release `json:"release,omitempty"`
	// Poller is the host that polls the registry (the election's leader).
	Poller string `json:"poller,omitempty"`
	// Phase is the rollout phase of the published release.
	Phase  Phase  `json:"phase"`
	Paused bool   `json:"paused"`
	Done   string `json:"done,omitempty"` // last fully rolled-out version
	// Canaries, Healthy and Failed are about the published release.
	Canaries []string          `json:"canaries,omitempty"`
	Healthy  []string          `json:"healthy,omitempty"`
	Failed   map[string]string `json:"failed,omitempty"`
	Promoted bool              `json:"promoted,omitempty"`
	// Slots are the hosts holding a deploy slot, then the hosts queued for one.
	Slots       []SlotRecord `json:"slots,omitempty"`
	Queued      []SlotRecord `json:"queued,omitempty"`
	MaxParallel int          `json:"max_parallel,omitempty"`
	Bad         []BadVersion `json:"bad,omitempty"`
}

// Status reads the whole fleet in one request.
func (o *Operator) Status(ctx context.Context) (Status, error) {
	resp, err := o.client.Get(ctx, o.keys.prefix+"/", clientv3.WithPrefix())
	if err != nil {
		return Status{}, fmt.Errorf("fleet status: %w", err)
	}
	return statusFrom(o.keys, resp.Header.Revision, resp.Kvs), nil
}

func statusFrom(k keys, rev int64, kvs []*mvccpb.KeyValue) Status {
	st := Status{Revision: rev, Hosts: []HostRecord{}, Apps: []AppStatus{}}
	byApp := map[string][]*mvccpb.KeyValue{}
	for _, kv := range kvs {
		key := string(kv.Key)
		if strings.HasPrefix(key, k.hosts()) {
			var r HostRecord
			if json.Unmarshal(kv.Value, &r) == nil {
				st.Hosts = append(st.Hosts, r)
			}
			continue
		}
		if app, _, ok := k.parseAppKey(key); ok {
			byApp[app] = append(byApp[app], kv)
		}
	}
	for _, r := range st.Hosts {
		for app := range r.Apps {
			if _, ok := byApp[app]; !ok {
				byApp[app] = nil
			}
		}
	}
	sort.Slice(st.Hosts, func(i, j int) bool { return st.Hosts[i].Host < st.Hosts[j].Host })
	for app, list := range byApp {
		st.Apps = append(st.Apps, appStatus(buildView(k, app, rev, list), app))
	}
	sort.Slice(st.Apps, func(i, j int) bool { return st.Apps[i].Name < st.Apps[j].Name })
	return st
}

func appStatus(v *appView, app string) AppStatus {
	a := AppStatus{Name: app, Release: v.release, Paused: v.paused, Done: v.done, Phase: PhaseIdle}
	if len(v.leaders) > 0 {
		a.Poller = v.leaders[0].Host
	}
	maxPar := 1
	if v.release != nil {
		a.Phase = v.phase(v.release.Version)
		if r := v.rollouts[v.release.Version]; r != nil {
			a.Promoted = r.promoted
			if r.plan != nil {
				a.Canaries = r.plan.Canaries
				maxPar = r.plan.MaxParallel
				a.MaxParallel = maxPar
			}
			for h, o := range r.outcomes {
				if o.OK {
					a.Healthy = append(a.Healthy, h)
				} else {
					if a.Failed == nil {
						a.Failed = map[string]string{}
					}
					a.Failed[h] = o.Reason
				}
			}
			sort.Strings(a.Healthy)
		}
	} else if v.paused {
		a.Phase = PhasePaused
	}
	for i, s := range v.slots {
		if i < maxPar {
			a.Slots = append(a.Slots, s.SlotRecord)
		} else {
			a.Queued = append(a.Queued, s.SlotRecord)
		}
	}
	for _, b := range v.bad {
		a.Bad = append(a.Bad, b)
	}
	sort.Slice(a.Bad, func(i, j int) bool { return a.Bad[i].Version < a.Bad[j].Version })
	return a
}

// Pause stops new deploys of app fleet-wide; deploys under way finish.
func (o *Operator) Pause(ctx context.Context, app string) error {
	if _, err := o.client.Put(ctx, o.keys.paused(app), ""); err != nil {
		return fmt.Errorf("fleet pause %s: %w", app, err)
	}
	return nil
}

// Resume undoes Pause.
func (o *Operator) Resume(ctx context.Context, app string) error {
	if _, err := o.client.Delete(ctx, o.keys.paused(app)); err != nil {
		return fmt.Errorf("fleet resume %s: %w", app, err)
	}
	return nil
}

// Promote ends the bake (and the wait for canaries) of the app's published
// release now; it returns the version promoted.
func (o *Operator) Promote(ctx context.Context, app string) (string, error) {
	resp, err := o.client.Get(ctx, o.keys.release(app))
	if err != nil {
		return "", fmt.Errorf("fleet promote %s: %w", app, err)
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("fleet promote %s: no release published yet", app)
	}
	var r Release
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return "", fmt.Errorf("fleet promote %s: unreadable release: %w", app, err)
	}
	if _, err := o.client.Put(ctx, o.keys.promoted(app, r.Version), ""); err != nil {
		return "", fmt.Errorf("fleet promote %s %s: %w", app, r.Version, err)
	}
	return r.Version, nil
}

// Retry forgets the fleet-wide bad mark of version and the failures that led
// to it, so hosts try it again.
func (o *Operator) Retry(ctx context.Context, app, version string) error {
	resp, err := o.client.Get(ctx, o.keys.outcomes(app, version), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("fleet retry %s %s: %w", app, version, err)
	}
	ops := []clientv3.Op{clientv3.OpDelete(o.keys.bad(app, version))}
	for _, kv := range resp.Kvs {
		var out Outcome
		if json.Unmarshal(kv.Value, &out) == nil && !out.OK {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
	}
	if _, err := o.client.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("fleet retry %s %s: %w", app, version, err)
	}
	return nil
}
