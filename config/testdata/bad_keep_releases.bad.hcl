app "api" {
  registry      = "ghr://linyows/myapp"
  keep_releases = 0
  runner "assets" {}
}
