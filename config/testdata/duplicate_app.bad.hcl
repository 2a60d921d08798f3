app "api" {
  registry = "ghr://linyows/myapp"
  runner "assets" {}
}

app "api" {
  registry = "ghr://linyows/other"
  runner "assets" {}
}
