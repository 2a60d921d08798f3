app "api" {
  registry = "ghr://linyows"
  runner "assets" {}
}
