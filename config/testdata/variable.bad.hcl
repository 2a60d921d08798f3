app "api" {
  registry = var.registry
  runner "assets" {}
}
