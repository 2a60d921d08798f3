app "api" {
  registry = "ghr://linyows/myapp"
  runner "assets" {}
}

hooks {
  after_deploy = "true"
}
