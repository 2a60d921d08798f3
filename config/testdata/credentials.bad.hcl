app "api" {
  registry = "ghr://octocat:s3cr3t@linyows/myapp"
  runner "assets" {}
}
