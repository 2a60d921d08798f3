agent {
  admin = "127.0.0.1:17600"
}

app "web" {
  registry = "img://ghcr.io/o/web"

  runner "container" {
    command = ["serve", "-v"]
    ports = ["8080:80"]
    replicas = 3
    drain_time = "10s"
    health_path = "/healthz"
  }
}
