# The demo's config file, used by `make demo`. The demo program sets DEMO_DIR to a
# temporary folder holding the local registry and the agent's state.

agent {
  state_dir = "${env("DEMO_DIR")}/state"
  log_level = "info"
  admin     = ""
}

# A static site published into a local folder registry:
#   $DEMO_DIR/registry/site/v1.0.0/site.tar.gz
app "site" {
  registry = "file://${env("DEMO_DIR")}/registry/site"
  artifact = "site.tar.gz"
  interval = "1s"

  runner "assets" {
    link = "${env("DEMO_DIR")}/www"
  }
}
