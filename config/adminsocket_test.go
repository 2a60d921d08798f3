package config

import (
	"strings"
	"testing"
)

func TestAdminUnixSocket(t *testing.T) {
	f, diags := Parse("dewy.hcl", []byte("agent {\n  admin = \"unix:///run/dewy-agent/admin.sock\"\n}\napp \"a\" {\n  registry = \"file:///srv/a\"\n  runner \"assets\" {}\n}\n"))
	if diags.HasErrors() || f.Agent.Admin != "unix:///run/dewy-agent/admin.sock" || f.Agent.AdminToken != "" {
		t.Fatalf("a unix socket admin (no token needed): %v", diags)
	}
	_, diags = Parse("dewy.hcl", []byte("agent {\n  admin = \"unix://run/admin.sock\"\n}\n"))
	found := false
	for _, d := range diags {
		if d.Subject != nil && d.Subject.Start.Line == 2 && strings.Contains(d.Detail, "relative path") {
			found = true
		}
	}
	if !found {
		t.Fatalf("a relative socket path is not reported at line 2: %v", diags)
	}
}
