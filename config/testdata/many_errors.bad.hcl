# Problems of every layer in one file: all of them must be reported.
agent {
  log_level = "loud"
  colour    = true
}

app "api" {
  registry = "img://ghcr.io/acme/api"
  interval = "often"
  runner "assets" {}
}

app "web" {
  registry      = "ghr://linyows/web?pre-release=maybe"
  keep_releases = 0
}

app "api" {
  registry = "file://relative/path"
  runner "container" {}
}
