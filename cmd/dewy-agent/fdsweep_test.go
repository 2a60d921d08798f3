package main

import (
	"slices"
	"testing"

	"github.com/dewy-agent/dewy-agent/config"
)

// TestForeignSockets: at start the agent drops the stored sockets no server
// runner will take: of an app gone from the file, and of an app that is run
// by another runner kind now; a server app's names stay for its runner.
func TestForeignSockets(t *testing.T) {
	cfg, diags := config.Parse("dewy.hcl", []byte(`
app "web" {
  registry = "file:///srv/web"
  runner "server" {
    command = ["./web"]
    ports   = [8000]
  }
}
app "site" {
  registry = "file:///srv/site"
  runner "assets" {}
}
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := foreignSockets([]string{"web/8000", "web/9000", "site/8080", "gone/7000"}, cfg.Apps)
	if want := []string{"site/8080", "gone/7000"}; !slices.Equal(got, want) {
		t.Errorf("foreignSockets = %q, want %q", got, want)
	}
}
