package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestDeployInFlightRolledBackOnRestart: a state.json that records a deploy
// in flight (the agent died after `current` switched, before the deploy was
// recorded) makes the next agent point `current` back at the release state.json
// names and clear the record, so what resumes is what was live.
func TestDeployInFlightRolledBackOnRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write(e.config("1h", "site"))
	clk := newFakeClock()
	first := e.newAgent(Options{Clock: clk})
	stop := testkit.Go(t, "Run", first.Run)
	waitFor(t, "v1.0.0 deployed", deployed(first, "site"))
	w := first.worker("site")
	e.publish("v1.1.0")
	pollNow(t, clk, w)
	waitFor(t, "v1.1.0 deployed", func() bool { return w.snapshot().Deployed == "v1.1.0" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// As if the agent died with v1.1.0 switched in but not yet recorded.
	entries, _ := os.ReadDir(filepath.Join(w.dir, "releases"))
	var oldRel string
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "v1.0.0") {
			oldRel = filepath.Join("releases", en.Name())
		}
	}
	st, err := loadState(w.dir)
	if err != nil || oldRel == "" {
		t.Fatalf("state %+v, %v; v1.0.0 release %q", st, err, oldRel)
	}
	st.Deploying = &DeployInFlight{Version: "v1.1.0", Previous: "v1.0.0", Release: st.Release, Phase: phaseActivating}
	st.Version, st.Release = "v1.0.0", oldRel
	if err := st.save(w.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.reg, "v1.1.0")); err != nil { // no redeploy meanwhile
		t.Fatal(err)
	}

	second := e.start(Options{Clock: newFakeClock()})
	waitFor(t, "v1.0.0 resumed", deployed(second, "site"))
	waitFor(t, "the deploy in flight settled", func() bool {
		raw, _ := os.ReadFile(filepath.Join(w.dir, "state.json"))
		var got State
		return json.Unmarshal(raw, &got) == nil && got.Deploying == nil && got.Version == "v1.0.0"
	})
	body, _ := os.ReadFile(filepath.Join(w.dir, "current", "index.html"))
	if string(body) != "v1.0.0\n" {
		t.Fatalf("current serves %q after the rollback of the deploy in flight", body)
	}
}
