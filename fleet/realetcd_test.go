package fleet

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
)

// TestRealEtcdRollout runs a small fleet against the real etcd program (the
// version users have: Debian 12's etcd-server is 3.4) rather than the
// embedded server of go.mod's version: sessions, the poll election, the
// publish and slot transactions, watches with WithRequireLeader, the
// operator's pause and promote. It skips when no etcd program is installed.
func TestRealEtcdRollout(t *testing.T) {
	srv := etcdtest.StartBinary(t)
	if !strings.HasPrefix(srv.ServerVersion, "3.") {
		t.Fatalf("server version %q, want 3.x", srv.ServerVersion)
	}
	e := newEnvOn(t, srv.Endpoints())
	r := Rollout{Canary: "1", Bake: 300 * time.Millisecond, MaxParallel: "1", MinHealthyTime: 50 * time.Millisecond, FailureThreshold: 1}
	agents := e.startAgents(4, r)
	rolledOut := func(v string) func() bool { return func() bool { return e.rolledOut(agents, v) } }
	e.reg.set("v1.0.0")
	eventually(t, 30*time.Second, "v1.0.0 rolled out on etcd "+srv.ServerVersion, rolledOut("v1.0.0"))

	// Paused, nothing starts; resumed, the rollout goes on.
	if err := e.op.Pause(t.Context(), e.app); err != nil {
		t.Fatal(err)
	}
	e.reg.set("v1.1.0")
	eventually(t, 10*time.Second, "v1.1.0 published while paused", func() bool {
		st := e.appStatus()
		return st.Release != nil && st.Release.Version == "v1.1.0" && st.Phase == PhasePaused
	})
	for _, a := range agents {
		if a.version() != "v1.0.0" {
			t.Errorf("%s runs %s while the app is paused", a.host, a.version())
		}
	}
	if err := e.op.Resume(t.Context(), e.app); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "v1.1.0 rolled out on etcd "+srv.ServerVersion, rolledOut("v1.1.0"))

	deploys, _, most := e.chk.counts()
	if deploys != 8 || most != 1 {
		t.Errorf("checker saw %d deploys, at most %d at once; want 8 and exactly 1", deploys, most)
	}
	if p := e.reg.pollers(); len(p) != 1 {
		t.Errorf("hosts that polled the registry: %v; want exactly one", p)
	}
	if st := e.status(); len(st.Hosts) != 4 || !slices.Equal(e.appStatus().Canaries, []string{"h0"}) {
		t.Errorf("status: %d hosts, canaries %v; want 4 and [h0]", len(st.Hosts), e.appStatus().Canaries)
	}
}
