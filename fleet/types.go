package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"
)

// Phase is where an app's rollout, or this host's part in it, stands.
type Phase string

// Phases.
const (
	PhaseIdle      Phase = "idle"      // nothing to roll out
	PhaseCanary    Phase = "canary"    // canaries deploy; the others wait
	PhaseBake      Phase = "bake"      // canaries healthy; the others wait for bake
	PhaseRollout   Phase = "rollout"   // everyone, max_parallel at a time
	PhaseDone      Phase = "done"      // every host runs the version
	PhasePaused    Phase = "paused"    // an operator paused the app
	PhaseStopped   Phase = "stopped"   // the version is bad fleet-wide
	PhaseSlot      Phase = "slot"      // this host waits for a deploy slot
	PhaseDeploying Phase = "deploying" // this host holds a slot and deploys
	PhaseHealthy   Phase = "healthy"   // this host is healthy, still holding its slot
	PhaseHold      Phase = "hold"      // etcd unreachable, on_unavailable = hold
	PhaseLocal     Phase = "local"     // etcd unreachable, on_unavailable = local
	PhaseInstall   Phase = "install"   // first install of the fleet's last rolled-out version
)

// Release is what the poller publishes for an app: the release every host
// deploys. Hosts still verify what they download against SHA256/Digest.
type Release struct {
	Version   string    `json:"version"`
	Artifact  string    `json:"artifact,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	Digest    string    `json:"digest,omitempty"` // image digest for img://
	Published time.Time `json:"published"`
	// Source is what the poller's registry source needs to fetch the
	// release (asset names and refs), opaque to the fleet.
	Source json.RawMessage `json:"source,omitempty"`
	// Leader and Term are filled by PublishRelease: the poller's host id and
	// the create revision of its election key (one term, one poller).
	Leader string `json:"leader"`
	Term   int64  `json:"term"`
}

// same reports whether r and o name the same release (leader and term aside).
func (r Release) same(o Release) bool {
	return r.Version == o.Version && r.Artifact == o.Artifact && r.SHA256 == o.SHA256 &&
		r.Digest == o.Digest && r.Published.Equal(o.Published)
}

// Decision is the answer of a [Gater]: may this host deploy the version now.
type Decision struct {
	// Allowed: deploy now. Slot is then non-nil and must be finished.
	Allowed bool
	// Phase is the rollout phase that decided.
	Phase Phase
	// Wait says, for people, what the host waits for ("" when allowed).
	Wait string
	// Slot is the deploy slot, when Allowed.
	Slot Slot
}

// Slot is a deploy slot. The caller calls exactly one of Healthy or Release
// once the deploy is over; both are safe to call more than once and from any
// goroutine, and neither blocks longer than its ctx.
type Slot interface {
	// Healthy says the deploy worked and the app is healthy; the slot is
	// released min_healthy_time later (on this host's monotonic clock).
	Healthy(ctx context.Context) error
	// Release gives the slot back now (a failed or abandoned deploy).
	Release(ctx context.Context) error
}

// Gater decides whether a host may deploy a version. Both the etcd backend
// ([AppHandle]) and the FleetLock client implement it.
//
// Gate blocks until the host may deploy (Allowed, with a Slot), or until the
// answer is a refusal that waiting will not change (the version is bad, or
// etcd is unreachable under on_unavailable = hold), or ctx ends (ctx.Err()).
// The caller cancels ctx to give up, e.g. when a newer release appears.
type Gater interface {
	Gate(ctx context.Context, version string) (Decision, error)
}

// Errors.
var (
	// ErrNotLeader: PublishRelease by a member that is not the app's poller.
	ErrNotLeader = errors.New("fleet: not the poller of this app")
	// ErrUnavailable: etcd cannot be reached right now.
	ErrUnavailable = errors.New("fleet: etcd unavailable")
	// ErrClosed: the member was closed.
	ErrClosed = errors.New("fleet: member closed")
)

// noSlot is the slot of decisions that need none (local mode, first install).
type noSlot struct{}

func (noSlot) Healthy(context.Context) error { return nil }
func (noSlot) Release(context.Context) error { return nil }

func sortStrings(s []string) { sort.Strings(s) }
