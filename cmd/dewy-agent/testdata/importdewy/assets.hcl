app "site" {
  registry = "s3://ap-northeast-1/bucket/site?endpoint=http://127.0.0.1:9000"
  interval = "60s"

  runner "assets" {
  }

  hooks {
    after_deploy = "true"
  }
}
