# The smallest useful file: one app, everything else defaulted.
app "api" {
  registry = "ghr://linyows/myapp"
  runner "assets" {}
}
