# /etc/dewy-agent/dewy.hcl: the apps this host runs. Edit it, then
#   dewy-agent validate -config /etc/dewy-agent/dewy.hcl
#   systemctl enable --now dewy-agent     (or: systemctl reload dewy-agent)
# Every option is described in /usr/share/doc/dewy-agent and the README.

agent {
  state_dir = "/var/lib/dewy-agent"
  admin     = "127.0.0.1:17539"
}

# An app: uncomment and fill in, one block per app.
#
# app "api" {
#   registry = "ghr://owner/repo"          # GITHUB_TOKEN from the environment
#   runner "server" {
#     command     = ["./api"]
#     ports       = [8000]
#     health_path = "/health"
#   }
# }
