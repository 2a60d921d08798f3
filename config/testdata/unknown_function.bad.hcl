app "api" {
  registry = getenv("REGISTRY")
  runner "assets" {}
}
