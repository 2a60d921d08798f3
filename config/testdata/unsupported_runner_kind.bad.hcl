app "web" {
  registry = "ghr://linyows/myapp"
  runner "container" {
    ports = ["8080:80"]
  }
}
