app "api" {
  registry = "ghr://linyows/myapp"
  runner "server" {
    command        = ["./myapp", "-listen-from-env"]
    dir            = "bin"
    ports          = [8000, 8001]
    env            = { APP_ENV = "production" }
    health_path    = "/health"
    health_timeout = "10s"
    stop_signal    = "sigint"
    stop_timeout   = "5s"
    restart        = "on-failure"
    crash_window   = "3s"
  }
}

app "worker" {
  registry = "ghr://linyows/myapp"
  runner "server" {
    command = ["./worker"]
  }
}
