# Three apps on one host, in HCL. multi-app.json and multi-app.yaml are the same
# configuration in HCL's JSON syntax and in YAML: the agent reads all three
# (the syntax is chosen by the file name) and decodes them to the same thing.
#
#   dewy-agent validate -config examples/multi-app.hcl

agent {
  state_dir = "/var/lib/dewy-agent"
  log_level = "info"
  admin     = "127.0.0.1:17539"
}

# An API server from GitHub Releases. The agent holds port 8000 and hands it to
# each new version, which takes over once /health answers.
app "api" {
  registry      = "ghr://myorg/api"
  artifact      = "api_linux_amd64.tar.gz"
  interval      = "1m"
  keep_releases = 5

  runner "server" {
    command        = ["./api", "-listen-from-env"]
    ports          = [8000]
    env            = { APP_ENV = "production", DATABASE_URL = env("DATABASE_URL") }
    health_path    = "/health"
    health_timeout = "20s"
  }
}

# A static site from a folder registry on a shared mount, linked into the web
# server's document root.
app "site" {
  registry = "file:///srv/releases/site"
  artifact = "site.tar.gz"

  runner "assets" {
    link = "/var/www/site"
  }
}

# Documentation, pre-releases included.
app "docs" {
  registry    = "ghr://myorg/docs?artifact=docs.zip"
  pre_release = true
  interval    = "10m"

  runner "assets" {
    link = "/var/www/docs"
  }
}
