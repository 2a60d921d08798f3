# env() reads the agent's environment; an unset variable is "".
agent {
  state_dir = "${env("DEWY_TEST_ROOT")}/state"
  log_level = env("DEWY_TEST_LOG_LEVEL")
}

app "api" {
  registry = "ghr://${env("DEWY_TEST_OWNER")}/myapp"
  artifact = env("DEWY_TEST_UNSET")
  interval = env("DEWY_TEST_INTERVAL")
  runner "assets" {
    link = "${env("DEWY_TEST_ROOT")}/www"
  }
}
