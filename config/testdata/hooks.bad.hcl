app "api" {
  registry = "ghr://linyows/myapp"
  notify   = ["pager://ops", "slack://"]
  runner "assets" {}
  hooks {
    before_deploy = "true"
    timeout       = "forever"
  }
  hooks {
    after_deploy = "true"
  }
}
