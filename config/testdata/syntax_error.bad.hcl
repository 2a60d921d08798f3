app "api" {
  registry = "ghr://linyows/myapp"
  runner "assets" {
}
