app "api" {
  registry = "ghr://o/api"
  calver   = "YYYY.QQ"
  slot     = "blue+green"
  runner "assets" {}
}
app "web" {
  registry = "ghr://o/web?calver=YYYY.0M.MICRO"
  calver   = "YYYY.0M.0D"
  runner "assets" {}
}
app "opt" {
  registry = "s3://us-east-1/bucket/opt?calver=nope"
  runner "assets" {}
}
app "img" {
  registry = "img://ghcr.io/o/img"
  slot     = "blue"
  runner "container" {}
}
