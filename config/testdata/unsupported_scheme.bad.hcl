app "site" {
  registry = "img://ghcr.io/acme/site"
  runner "assets" {}
}
