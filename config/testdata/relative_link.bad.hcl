app "site" {
  registry = "file:///srv/releases/site"
  runner "assets" {
    link = "www"
  }
}
