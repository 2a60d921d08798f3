app "api" {
  registry = "ftp://example.com/releases"
  runner "assets" {}
}
