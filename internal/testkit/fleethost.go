package testkit

import (
	"fmt"
	"strings"
)

// FleetHost is one host of a test fleet: an agent that serves the app "site"
// (the assets runner, site.tar.gz from a file registry polled every second)
// in an etcd fleet whose sessions last 2s. The fleet tests, the fleet e2e
// test and the fleet example all run hosts like this.
type FleetHost struct {
	StateDir string
	HostID   string
	// Labels is the body of the labels map: `role = "canary"`.
	Labels    string
	Endpoints []string // etcd client URLs
	Prefix    string   // etcd key prefix
	Registry  string   // the registry folder
	// Rollout is the body of the app's rollout block; AppExtra goes in the
	// app block after it.
	Rollout, AppExtra string
}

// Config is the host's config file.
func (h FleetHost) Config() string {
	return fmt.Sprintf(`agent {
  state_dir = %q
  admin     = ""
}
fleet {
  host_id     = %q
  labels      = { %s }
  session_ttl = "2s"
  etcd {
    endpoints = [%s]
    prefix    = %q
  }
}
app "site" {
  registry = "file://%s"
  artifact = "site.tar.gz"
  interval = "1s"
  runner "assets" {}
  rollout {
    %s
  }
  %s
}
`, h.StateDir, h.HostID, h.Labels, `"`+strings.Join(h.Endpoints, `", "`)+`"`, h.Prefix, h.Registry, h.Rollout, h.AppExtra)
}
