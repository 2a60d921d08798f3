agent {
  admin = "localhost"
}
