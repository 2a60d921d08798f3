app "api" {
  registry = "ghr://linyows/myapp"
  interval = "5 minutes"
  runner "assets" {}
}
