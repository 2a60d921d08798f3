agent {
  notify = ["https://hooks.example.com/dewy"]
}

app "api" {
  registry = "ghr://linyows/myapp"
  notify   = ["slack://deploys?title=api", "mail://smtp.example.com:587/ops@example.com?from=dewy@example.com&quiet=true"]
  runner "assets" {}
  hooks {
    before_deploy = "pg_dump mydb > /backup/db.sql"
    after_deploy  = "systemctl reload nginx"
    timeout       = "2m"
  }
}

app "docs" {
  registry = "ghr://linyows/docs"
  runner "assets" {}
  hooks {
    after_deploy = "echo done"
  }
}
