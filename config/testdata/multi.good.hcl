# Several apps, options given in the URL, a relative state_dir and no admin API.
agent {
  state_dir = "state"
  admin     = ""
}

app "api" {
  registry = "ghr://linyows/myapp?pre-release=true&artifact=myapp_linux_amd64.tar.gz"
  runner "assets" {}
}

app "site.v2" {
  registry    = "file:///srv/releases//site/"
  pre_release = false
  artifact    = "site.tar.gz"
  interval    = "1s"
  runner "assets" {
    link = "/var/www/site"
  }
}

app "docs_1-x" {
  # The same setting in the URL and as an attribute, with the same value.
  registry      = "ghr://dewy-agent/docs.site?artifact=docs.zip&pre-release=false"
  artifact      = "docs.zip"
  pre_release   = false
  keep_releases = 1
  interval      = "1h30m"
  runner "assets" {}
}
