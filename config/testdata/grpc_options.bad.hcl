app "api" {
  registry    = "grpc://registry.example.com:9000"
  pre_release = true
  slot        = "blue"
  artifact    = "api_linux_amd64.tar.gz"
  runner "assets" {}
}
