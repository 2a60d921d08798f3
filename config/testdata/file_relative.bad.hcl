app "site" {
  registry = "file://releases/site"
  runner "assets" {}
}
