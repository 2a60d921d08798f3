app "api" {
  registry = "linyows/myapp"
  runner "assets" {}
}
