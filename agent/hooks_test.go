package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/notify"
)

// webhook records the events the agent posts to it; delay slows every answer.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	events []notify.WebhookPayload
}

func newWebhook(t *testing.T, delay time.Duration) *webhook {
	wh := &webhook{}
	wh.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		json.NewDecoder(r.Body).Decode(&p)
		wh.mu.Lock()
		wh.events = append(wh.events, p)
		wh.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(wh.Close)
	return wh
}

func (wh *webhook) kinds() []string {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	var ks []string
	for _, e := range wh.events {
		ks = append(ks, string(e.Kind)+"@"+e.Version)
	}
	return ks
}

func (wh *webhook) find(kind notify.Kind) (notify.WebhookPayload, bool) {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	for _, e := range wh.events {
		if e.Kind == kind {
			return e, true
		}
	}
	return notify.WebhookPayload{}, false
}

// hooksConfig is one app with hooks and a notifier.
func (e *env) hooksConfig(hooks, notifyURL string) string {
	return fmt.Sprintf(`
agent {
  state_dir = %q
  admin     = ""
}
app "site" {
  registry = "file://%s"
  artifact = "site.tar.gz"
  interval = "1s"
  notify   = [%q]
  runner "assets" {}
  hooks {
%s
  }
}
`, e.state, e.reg, notifyURL, hooks)
}

// TestBeforeDeployHookAbortsTheDeploy: a failing before_deploy hook leaves the
// deployed version current, is reported with its output, and the version is not
// marked bad (the hook may pass later, e.g. once a database is reachable).
func TestBeforeDeployHookAbortsTheDeploy(t *testing.T) {
	e := newEnv(t)
	wh := newWebhook(t, 0)
	gate := filepath.Join(e.dir, "gate")
	e.write(e.hooksConfig(fmt.Sprintf(`    before_deploy = "echo checking $DEWY_VERSION; test $DEWY_VERSION = v1.0.0 || test -e %s || exit 3"`, gate), wh.URL))
	a := e.start(Options{})
	waitFor(t, "v1.0.0 deployed", deployed(a, "site"))

	e.publish("v1.1.0")
	waitFor(t, "the hook failure reported", func() bool { _, ok := wh.find(notify.HookFailed); return ok })
	ev, _ := wh.find(notify.HookFailed)
	if ev.Step != "before_deploy" || ev.Version != "v1.1.0" || !strings.Contains(ev.Error, "status 3") || !strings.Contains(ev.Output, "checking v1.1.0") {
		t.Fatalf("hook_failed event = %+v", ev)
	}
	w := a.worker("site")
	body, _ := os.ReadFile(filepath.Join(w.dir, "current", "index.html"))
	if string(body) != "v1.0.0\n" || w.snapshot().Deployed != "v1.0.0" {
		t.Fatalf("current serves %q, deployed %q", body, w.snapshot().Deployed)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.dir, "releases")); len(entries) != 1 {
		t.Fatalf("%d release dirs, want 1 (the aborted one removed)", len(entries))
	}
	if st, _ := loadState(w.dir); len(st.Bad) != 0 {
		t.Fatalf("a hook failure marked the version bad: %+v", st.Bad)
	}

	// Once the hook passes, the version deploys.
	os.WriteFile(gate, nil, 0o644)
	waitFor(t, "v1.1.0 deployed", func() bool { return w.snapshot().Deployed == "v1.1.0" })
	// Events are delivered after the deploy is recorded.
	waitFor(t, "deploy_succeeded@v1.1.0 delivered", func() bool { return slices.Contains(wh.kinds(), "deploy_succeeded@v1.1.0") })
}

// TestAfterDeployHookEnvironment: the hook sees the deploy through DEWY_*
// variables; its failure is reported and the deploy stands.
func TestAfterDeployHookEnvironment(t *testing.T) {
	e := newEnv(t)
	wh := newWebhook(t, 0)
	out := filepath.Join(e.dir, "hook-env")
	e.write(e.hooksConfig(fmt.Sprintf(`    after_deploy = "env | grep ^DEWY_ | sort > %s; exit 1"
    timeout      = "10s"`, out), wh.URL))
	a := e.start(Options{})
	waitFor(t, "v1.0.0 deployed", deployed(a, "site"))
	e.publish("v1.1.0")
	waitFor(t, "v1.1.0 deployed", func() bool { return a.worker("site").snapshot().Deployed == "v1.1.0" })
	waitFor(t, "the hook's output", func() bool { b, _ := os.ReadFile(out); return strings.Contains(string(b), "v1.1.0") })

	b, _ := os.ReadFile(out)
	cur, _ := filepath.EvalSymlinks(filepath.Join(a.worker("site").dir, "current"))
	for _, want := range []string{
		"DEWY_APP=site", "DEWY_VERSION=v1.1.0", "DEWY_PREVIOUS_VERSION=v1.0.0",
		"DEWY_RELEASE_DIR=" + cur, "DEWY_REGISTRY=file://" + e.reg,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("hook env lacks %s:\n%s", want, b)
		}
	}
	waitFor(t, "after_deploy failure reported", func() bool {
		return slices.Contains(wh.kinds(), "hook_failed@v1.1.0")
	})
	if a.worker("site").snapshot().Deployed != "v1.1.0" {
		t.Fatal("a failing after_deploy hook undid the deploy")
	}
}

// TestSlowNotifierDoesNotDelayDeploys: a webhook that takes 10s to answer does
// not hold up a deploy.
func TestSlowNotifierDoesNotDelayDeploys(t *testing.T) {
	e := newEnv(t)
	wh := newWebhook(t, 10*time.Second)
	e.write(e.hooksConfig(`    timeout = "1m"`, wh.URL))
	start := time.Now()
	a := e.start(Options{StopTimeout: 5 * time.Second})
	waitFor(t, "v1.0.0 deployed", deployed(a, "site"))
	e.publish("v1.1.0")
	waitFor(t, "v1.1.0 deployed", func() bool { return a.worker("site").snapshot().Deployed == "v1.1.0" })
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("two deploys took %s with a slow notifier", took)
	}
}
