app "web" {
  registry = "img://ghcr.io/myorg/web?pre-release=true"
  runner "container" {
    ports          = ["8080:80", "9090"]
    replicas       = 2
    health_path    = "/health"
    health_timeout = "20s"
    drain_time     = "15s"
    env            = { DATABASE_URL = "postgres://db/web" }
    volumes        = ["/data:/app/data", "cache:/cache:ro"]
    command        = ["serve", "--port", "80"]
    user           = "1000:1000"
    network        = "backend"
    memory         = "512m"
    cpus           = 1.5
    crash_window   = "5s"
  }
}

app "worker" {
  registry = "img://myuser/worker"
  runner "container" {}
}
