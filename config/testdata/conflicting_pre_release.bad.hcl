app "api" {
  registry    = "ghr://linyows/myapp?pre-release=true"
  pre_release = false
  runner "assets" {}
}
