app "api" {
  registry    = "ghr://linyows/myapp"
  pre_release = "sometimes"
  runner "assets" {}
}
