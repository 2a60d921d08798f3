agent {
  log_format = "yaml"
}
