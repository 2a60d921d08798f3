package config

import "testing"

func TestCalVerSlotAndGRPCArtifact(t *testing.T) {
	src := `
app "a" {
  registry = "ghr://o/a?calver=YYYY.0M.MICRO"
  slot     = "blue"
  runner "assets" {}
}
app "b" {
  registry = "file:///srv/b"
  calver   = "YY.MM.DD"
  runner "assets" {}
}
app "c" {
  registry = "grpc://127.0.0.1:9000?no-tls=true&calver=YYYY.0M.MICRO"
  artifact = "c_linux_amd64.tar.gz"
  runner "assets" {}
}
app "d" {
  registry = "grpc://127.0.0.1:9000?no-tls=true&artifact=d.tar.gz"
  calver   = "YYYY.0M.MICRO"
  runner "assets" {}
}
`
	f, diags := Parse("calver.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := map[string][3]string{ // calver, slot, artifact
		"a": {"YYYY.0M.MICRO", "blue", ""},
		"b": {"YY.MM.DD", "", ""},
		"c": {"YYYY.0M.MICRO", "", "c_linux_amd64.tar.gz"},
		"d": {"YYYY.0M.MICRO", "", "d.tar.gz"},
	}
	for name, w := range want {
		a, ok := f.App(name)
		if !ok {
			t.Fatalf("no app %q", name)
		}
		if got := [3]string{a.CalVer, a.Slot, a.Artifact}; got != w {
			t.Errorf("app %q: calver, slot, artifact = %q, want %q", name, got, w)
		}
	}
}

// TestGRPCWithContainerRunner: a grpc:// server may answer Dewy's
// img://host/repo:tag, so it pairs with the container runner too.
func TestGRPCWithContainerRunner(t *testing.T) {
	src := `
app "c" {
  registry = "grpc://127.0.0.1:9000?no-tls=true"
  runner "container" {}
}
`
	if _, diags := Parse("grpc.hcl", []byte(src)); diags.HasErrors() {
		t.Fatal(diags.Error())
	}
}
