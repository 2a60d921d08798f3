# The demo's config file, used by `make demo`. The demo program sets DEMO_DIR to a
# temporary folder holding the local registry and the agent's state, and
# DEMO_PORT to a free port.

agent {
  state_dir = "${env("DEMO_DIR")}/state"
  log_level = "info"
  admin     = ""
}

# A web app published into a local folder registry:
#   $DEMO_DIR/registry/web/v1.0.0/webapp_<os>_<arch>.tar.gz
# The agent holds the port; each new version starts beside the old one, takes
# over once /health answers, and the old one drains and stops.
app "web" {
  registry = "file://${env("DEMO_DIR")}/registry/web"
  interval = "1s"

  runner "server" {
    command      = ["./webapp"]
    ports        = [env("DEMO_PORT")]
    health_path  = "/health"
    crash_window = "2s"
  }
}
