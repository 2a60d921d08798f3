app "api" {
  registry = "ghr://linyows/myapp"
  artifact = "myapp_linux_amd64.tar.gz.minisig"
  verify {
    minisign_public_keys = ["RWQnotakey"]
    ssh_allowed_signers  = "no_such_allowed_signers"
  }
  verify {
    minisign_public_keys = ["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"]
  }
  runner "assets" {}
}

app "web" {
  registry = "img://ghcr.io/myorg/web"
  verify {
    minisign_public_keys = ["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"]
  }
  runner "container" {}
}
