app "api" {
  registry = "ghr://linyows/myapp?pre-release=yes"
  runner "assets" {}
}
