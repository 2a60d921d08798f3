app "api" {
  registry = "ghr://linyows/myapp"
  interval = "500ms"
  runner "assets" {}
}
