app "api" {
  artifact = "myapp.tar.gz"
  runner "assets" {}
}
