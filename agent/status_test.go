package agent

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/runners"
)

func TestPhase(t *testing.T) {
	bad := []BadVersion{{Version: "v2.0.0", Reason: "exited"}}
	cases := []struct {
		name string
		s    Status
		want string
	}{
		{"stopped", Status{State: StateStopped, Deployed: "v1.0.0"}, PhaseStopped},
		{"downloading", Status{State: StateDeploying, Download: &Progress{Bytes: 1, Total: 2}}, PhaseDownloading},
		{"deploying", Status{State: StateDeploying, Newest: "v2.0.0"}, PhaseDeploying},
		{"starting", Status{State: StateStarting}, PhaseStarting},
		{"never deployed, only version bad", Status{State: StateIdle, Newest: "v2.0.0", Bad: bad}, PhaseBadVersion},
		{"newest bad", Status{State: StateIdle, Deployed: "v1.0.0", Newest: "v2.0.0", Bad: bad}, PhaseBadVersion},
		{"failing", Status{State: StateFailed, Deployed: "v1.0.0"}, PhaseFailing},
		{"waiting", Status{State: StateIdle, Waiting: true}, PhaseWaiting},
		{"never deployed", Status{State: StateIdle}, PhaseNeverDeployed},
		{"running", Status{State: StateIdle, Deployed: "v1.0.0", Newest: "v1.0.0"}, PhaseRunning},
		{"crash-looping", Status{State: StateIdle, Deployed: "v1.0.0", Workload: &runners.Workload{CrashLooping: true}}, PhaseCrashLooping},
		{"not running", Status{State: StateIdle, Deployed: "v1.0.0", Workload: &runners.Workload{}}, PhaseNotRunning},
		{"server in its crash window", Status{State: StateDeploying, Newest: "v2.0.0", Workload: &runners.Workload{Running: true}}, PhaseDeploying},
	}
	for _, c := range cases {
		if got := phase(c.s); got != c.want {
			t.Errorf("%s: phase = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestProgress: the download's bytes are counted as they are read and shown
// while the download runs.
func TestProgress(t *testing.T) {
	p := &progress{}
	if p.snapshot() != nil {
		t.Fatal("progress before a download")
	}
	p.begin("app.tar.gz", 10)
	r := countingReader{ReadCloser: io.NopCloser(strings.NewReader("0123456789")), p: p}
	buf := make([]byte, 4)
	r.Read(buf)
	got := p.snapshot()
	if got == nil || got.Bytes != 4 || got.Total != 10 || got.Artifact != "app.tar.gz" {
		t.Fatalf("progress = %+v", got)
	}
	if d := describeProgress(&Progress{Bytes: 120 << 20, Total: 500 << 20, Rate: 30 << 20}); d != "120.0 MiB of 500.0 MiB at 30.0 MiB/s" {
		t.Errorf("describe = %q", d)
	}
	p.end()
	if p.snapshot() != nil {
		t.Fatal("progress after the download")
	}
}

func TestOutcomeOf(t *testing.T) {
	if outcomeOf(nil) != "succeeded" || outcomeOf(errors.New("x")) != "failed" ||
		outcomeOf(&deployError{step: "deploy", rolledBack: true, err: errors.New("x")}) != "rolled back" {
		t.Error("outcomes misnamed")
	}
}

// TestStatusAfterDeploy: a deployed app reads "running", with the deploy in its
// history.
func TestStatusAfterDeploy(t *testing.T) {
	e := newEnv(t)
	e.write(e.config("1h", "site"))
	a := e.start(Options{})
	waitFor(t, "deployed", deployed(a, "site"))
	waitFor(t, "running", func() bool { return a.worker("site").snapshot().Phase == PhaseRunning })
	s := a.worker("site").snapshot()
	if len(s.History) != 1 || s.History[0].Version != "v1.0.0" || s.History[0].Outcome != "succeeded" || s.History[0].Took <= 0 {
		t.Fatalf("history = %+v", s.History)
	}
}
