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

app "site" {
  registry = "ghr://myorg/site"
  verify {
    sigstore {
      trusted_root    = "trusted_root.json"
      issuer          = "https://token.actions.githubusercontent.com"
      issuer_regexp   = "^https://token\\.actions\\.githubusercontent\\.com$"
      identity_regexp = "^https://github\\.com/myorg/site/(.github"
    }
  }
  runner "assets" {}
}
