app "api" {
  registry = "ghr://linyows/myapp?prerelease=true"
  runner "assets" {}
}
