app "api" {
  registry = "ghr://linyows/myapp"
  runner "static" {}
}
