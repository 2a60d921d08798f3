# One app per registry kind, as the seed defines them. Validate with
#   dewy-agent validate -config examples/registries.hcl

agent {
  state_dir = "/var/lib/dewy-agent"
}

# GitHub Releases. GITHUB_TOKEN (or GH_TOKEN) in the agent's environment; for
# GitHub Enterprise also GITHUB_API_URL=https://ghe.example.com/api/v3.
app "from-github" {
  registry = "ghr://linyows/myapp?pre-release=true&artifact=myapp_linux_amd64.tar.gz"
  report   = true
  runner "assets" {}
}

# S3: objects <prefix>/<version>/<artifact>, e.g.
#   my-releases/myapp/v1.2.4/myapp_linux_amd64.tar.gz
# Credentials from the AWS default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
# shared files, instance roles). IAM: s3:ListBucket, s3:GetObject, and
# s3:PutObject for reports.
app "from-s3" {
  registry = "s3://ap-northeast-1/my-releases/myapp"
  runner "assets" {}
}

# An S3-compatible service: ?endpoint= (or AWS_ENDPOINT_URL); path-style addressing.
app "from-s3-compatible" {
  registry = "s3://jp-north-1/my-releases/myapp?endpoint=https://s3.isk01.sakurastorage.jp"
  runner "assets" {}
}

# Google Cloud Storage, the same layout. Application default credentials
# (GOOGLE_APPLICATION_CREDENTIALS, workload identity); STORAGE_EMULATOR_HOST for
# an emulator. Roles: storage.objectViewer, plus storage.objectCreator for reports.
app "from-gcs" {
  registry = "gs://my-releases-bucket/myapp"
  runner "assets" {}
}

# A gRPC registry server speaking Dewy's dewy.RegistryService (see
# examples/grpc-registry for one that serves a folder). The server chooses the
# version and the artifact; its artifact_url may be https://, http://, file://,
# s3://<region>/<bucket>/<key>, gs://<bucket>/<key> or
# ghr://<owner>/<repo>/<tag>/<asset>.
app "from-grpc" {
  registry = "grpc://localhost:9000?no-tls=true"
  report   = true
  runner "assets" {}
}

# An OCI registry: container images for the container runner. docker login
# leaves the credentials the agent uses.
app "from-oci" {
  registry = "img://ghcr.io/myorg/web"
  runner "container" {
    ports = ["8080:80"]
  }
}

# A local or shared folder with the S3 layout.
app "from-folder" {
  registry = "file:///srv/releases/myapp"
  runner "assets" {}
}
