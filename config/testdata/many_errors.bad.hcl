# Problems of every layer in one file: all of them must be reported.
agent {
  log_level = "loud"
  colour    = true
}

app "api" {
  registry = "s3://ap-northeast-1/bucket/api"
  interval = "often"
  runner "assets" {}
}

app "web" {
  registry      = "ghr://linyows/web?pre-release=maybe"
  keep_releases = 0
}

app "api" {
  registry = "file://relative/path"
  runner "container" {}
}
