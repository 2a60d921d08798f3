package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dewy-agent/dewy-agent/notify"
)

// TestEmptyRegistryIsNoRelease: a registry that answers but holds nothing the
// app allows is reported as no_release, not as registry_unreachable; a registry
// that cannot be read still is registry_unreachable.
func TestEmptyRegistryIsNoRelease(t *testing.T) {
	e := newEnv(t)
	os.RemoveAll(e.reg)
	os.MkdirAll(e.reg, 0o755) // exists, and is empty
	wh := newWebhook(t, 0)
	e.write(e.hooksConfig(`    timeout = "10s"`, wh.URL))
	e.start(Options{})
	waitFor(t, "no_release reported", func() bool { _, ok := wh.find(notify.NoRelease); return ok })
	if ev, ok := wh.find(notify.RegistryUnreachable); ok {
		t.Fatalf("an empty registry was reported unreachable: %+v", ev)
	}

	e2 := newEnv(t)
	e2.reg = filepath.Join(e2.dir, "missing")
	wh2 := newWebhook(t, 0)
	e2.write(e2.hooksConfig(`    timeout = "10s"`, wh2.URL))
	e2.start(Options{})
	waitFor(t, "registry_unreachable reported", func() bool { _, ok := wh2.find(notify.RegistryUnreachable); return ok })
	if _, ok := wh2.find(notify.NoRelease); ok {
		t.Fatal("a missing registry folder was reported as no_release")
	}
}
