app "api" {
  registry = "ghr://linyows/myapp"
  runner "assets" {}
  runner "assets" {
    link = "/var/www/html"
  }
}
