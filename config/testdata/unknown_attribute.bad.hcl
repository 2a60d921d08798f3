app "api" {
  registry = "ghr://linyows/myapp"
  intervall = "30s"
  runner "assets" {}
}
