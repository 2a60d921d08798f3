app "api" {
  registry = "ghr://linyows/myapp"
  runner "server" {
    command = ["./myapp"]
  }
}
