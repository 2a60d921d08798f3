agent {
  log_level = "info"
}

agent {
  log_level = "debug"
}
