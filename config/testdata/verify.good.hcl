app "api" {
  registry = "ghr://linyows/myapp"
  verify {
    minisign_public_keys = ["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"]
    ssh_allowed_signers  = "verify_allowed_signers"
    ssh_namespace        = "release"
  }
  runner "assets" {}
}

app "docs" {
  registry = "ghr://linyows/docs"
  runner "assets" {}
}
