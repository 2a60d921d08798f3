app "api" {
  registry = "ghr://linyows/myapp?artifact=a.tar.gz&artifact=b.tar.gz"
  runner "assets" {}
}
