# Every option of this build, none left to its default.
agent {
  state_dir   = "/srv/dewy"
  log_level   = "debug"
  log_format  = "json"
  admin       = "0.0.0.0:9000"
  admin_token = "fixture-admin-token"
}

app "api" {
  registry      = "ghr://linyows/myapp"
  pre_release   = true
  artifact      = "myapp_linux_amd64.tar.gz"
  interval      = "5m"
  keep_releases = 3
  report        = true

  runner "assets" {
    link = "/var/www/html/"
  }
}
