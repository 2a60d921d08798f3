agent {
  log_level = "info"
  log_format = "json"
}

app "api" {
  registry = "ghr://o/api?pre-release=true"
  calver = "YYYY.0M.MICRO"
  slot = "blue"

  runner "server" {
    command = ["./api", "-listen", ":8000"]
    ports = ["8000-8010", 9000]
    health_path = "/health"
    health_timeout = "20s"
  }

  hooks {
    before_deploy = "echo $${APP} before"
    after_deploy = "systemctl reload nginx"
  }
}
