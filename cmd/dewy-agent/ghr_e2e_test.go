package main

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestGitHubEndToEnd runs the real binary against a fake GitHub API: two apps, one
// allowing pre-releases, releases over several pages, downloads redirected to a
// storage host, a new release picked up, and steady polls answered 304. A restart
// with the registry unchanged downloads and deploys nothing.
func TestGitHubEndToEnd(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	gh := fakegithub.New(t)
	gh.RequireToken("ghp_e2e_secret_token")
	artifact := fmt.Sprintf("site_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	other := fmt.Sprintf("site_%s_%s.tar.gz", "windows", "386")
	release := func(tag string, pre bool) fakegithub.Release {
		return fakegithub.Release{Tag: tag, Prerelease: pre, Published: time.Now().Add(-time.Hour), Assets: map[string][]byte{
			artifact:     testkit.TarGz(map[string]string{"index.html": tag + "\n"}),
			other:        []byte("not for this host"),
			"SHA256SUMS": nil, // filled below
		}}
	}
	publish := func(tag string, pre bool) {
		r := release(tag, pre)
		r.Assets["SHA256SUMS"] = []byte(sha256Line(r.Assets[artifact], artifact))
		gh.AddRelease("acme", "site", r)
	}
	// 120 old releases put the newest on page 1 and the rest on page 2.
	for i := range 120 {
		publish(fmt.Sprintf("v0.%d.0", i), false)
	}
	publish("v1.0.0", false)
	publish("v1.1.0-rc.1", true)
	gh.AddRelease("acme", "site", fakegithub.Release{Tag: "v9.9.9", Draft: true})
	gh.AddRelease("acme", "site", fakegithub.Release{Tag: "latest"})

	e := newEnv(t)
	state, cfg := e.state, e.cfg
	e.writeConfig(t, "admin     = \"\"\n  log_level = \"debug\"", `
app "stable" {
  registry = "ghr://acme/site"
  interval = "1s"
  runner "assets" {}
}
app "staging" {
  registry    = "ghr://acme/site"
  pre_release = true
  interval    = "1s"
  runner "assets" {}
}
`)
	env := []string{"GITHUB_API_URL=" + gh.URL(), "GITHUB_TOKEN=ghp_e2e_secret_token", "GH_TOKEN="}

	p := startAgent(t, cfg, env...)
	waitVersion(t, p, state, "stable", "v1.0.0")
	waitVersion(t, p, state, "staging", "v1.1.0-rc.1")

	// A newer stable release reaches both apps.
	publish("v1.1.0", false)
	waitVersion(t, p, state, "stable", "v1.1.0")
	waitVersion(t, p, state, "staging", "v1.1.0")

	// With the list unchanged, polls are conditional and answered 304. Wait
	// for six requests (several polls of each app; a poll's download would
	// come before its app's next request), not for a fixed time.
	before := gh.Stats("acme", "site")
	after := before
	for i := 0; after.Requests-before.Requests < 6; i++ {
		if i > 400 {
			t.Fatalf("only %d polls in 20s with a 1s interval", after.Requests-before.Requests)
		}
		sleep()
		after = gh.Stats("acme", "site")
	}
	polls := after.Requests - before.Requests
	if polls < 4 || after.NotModified-before.NotModified != polls {
		t.Fatalf("steady polls: %d requests, %d answered 304; want all 304", polls, after.NotModified-before.NotModified)
	}
	if after.Downloads != before.Downloads {
		t.Fatalf("steady polls downloaded %d assets", after.Downloads-before.Downloads)
	}
	p.stop(t)
	if strings.Contains(p.logs(), "ghp_e2e_secret_token") {
		t.Fatal("the token appears in the log")
	}

	// Restart: the saved ETags make the first polls 304s; nothing is downloaded.
	downloads := gh.Stats("acme", "site").Downloads
	deploys := readState(t, state, "stable").Deploys + readState(t, state, "staging").Deploys
	p = startAgent(t, cfg, env...)
	for i := 0; strings.Count(p.logs(), "up to date") < 2; i++ {
		if i > 200 {
			t.Fatal("the restarted agent never reported both apps up to date")
		}
		sleep()
	}
	p.stop(t)
	if got := gh.Stats("acme", "site").Downloads; got != downloads {
		t.Fatalf("restart downloaded %d assets", got-downloads)
	}
	if got := readState(t, state, "stable").Deploys + readState(t, state, "staging").Deploys; got != deploys {
		t.Fatalf("restart deployed again: %d -> %d", deploys, got)
	}
}
