app "web" {
  registry = "img://ghcr.io/myorg/web"
  artifact = "web.tar.gz"
  runner "container" {
    ports      = ["8080:80:70", "http"]
    replicas   = 0
    network    = "host"
    privileged = true
    cap_add    = ["SYS_ADMIN"]
  }
}

app "audited" {
  registry = "img://ghcr.io/myorg/audited"
  report   = true
  runner "container" {}
}
