app "api" {
  registry = "ghr://linyows/myapp"
}
