app "app" {
  registry = "ghr://o/app"
  interval = "30s"
  notify = ["slack://ch"]

  runner "server" {
    command = ["/opt/app/bin"]
    ports = [8000]
  }
}
