app "api" {
  registry = "ghr://linyows/myapp"
  runner "server" {
    ports          = [8000, 8000, 70000]
    health_path    = "health"
    health_timeout = "soon"
    stop_signal    = "SIGKILL"
    restart        = "sometimes"
    dir            = "../outside"
  }
}
