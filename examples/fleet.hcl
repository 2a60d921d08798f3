# One host of a fleet (README "Fleets"). `make fleet-demo` runs five of these
# against an embedded etcd; `dewy-agent fleet status -config examples/fleet.hcl`
# shows the fleet.
agent {
  state_dir = "/var/lib/dewy-agent"
}

fleet {
  host_id        = "web-1"
  labels         = { role = "canary", zone = "a" }
  session_ttl    = "15s"
  on_unavailable = "hold"
  etcd {
    endpoints = ["http://127.0.0.1:2379"]
    prefix    = "/dewy/demo"
    username  = "dewy"
    password  = env("ETCD_PASSWORD")
  }
}

app "site" {
  registry = "file:///srv/releases/site"
  artifact = "site.tar.gz"
  interval = "30s"
  runner "assets" {}
  rollout {
    canary            = 1
    bake              = "10m"
    max_parallel      = "10%"
    min_healthy_time  = "30s"
    failure_threshold = 1
  }
}
