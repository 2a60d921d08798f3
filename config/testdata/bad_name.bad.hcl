app "../etc" {
  registry = "ghr://linyows/myapp"
  runner "assets" {}
}
