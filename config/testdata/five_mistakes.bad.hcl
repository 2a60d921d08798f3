# Five mistakes, each owned by a different part of the code: a gRPC registry
# without a port, a refused container setting, too many replicas, an unknown
# attribute and a server port out of range. All are reported at once.
app "api" {
  registry = "grpc://localhost?no-tls=true"
  runner "server" {
    command = ["./api"]
    ports   = [70000]
  }
}

app "web" {
  registry  = "img://ghcr.io/acme/web"
  intervall = "30s"
  runner "container" {
    privileged = true
    replicas   = 100
  }
}
