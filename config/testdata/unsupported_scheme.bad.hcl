app "site" {
  registry = "s3://ap-northeast-1/my-releases/site"
  runner "assets" {}
}
