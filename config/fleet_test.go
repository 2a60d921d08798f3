package config

import (
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/fleet"
)

const fleetApp = `
app "web" {
  registry = "file:///srv/rel"
  runner "assets" {}
%s
}
`

func TestFleetBlockDecodes(t *testing.T) {
	t.Setenv("ETCD_PW", "s3cret-pw")
	src := `
fleet {
  host_id        = "web-3"
  labels         = { role = "canary", zone = "a" }
  session_ttl    = "20s"
  on_unavailable = "local"
  etcd {
    endpoints = ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
    prefix    = "/dewy/prod"
    username  = "dewy"
    password  = env("ETCD_PW")
  }
}
` + strings.Replace(fleetApp, "%s", `rollout {
    canary = "5%"
    bake = "10m"
    max_parallel = 2
    min_healthy_time = "30s"
    failure_threshold = 2
  }`, 1)
	f, diags := Parse("dewy.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := fleet.Fleet{
		HostID: "web-3", Labels: "role=canary,zone=a", SessionTTL: 20 * time.Second, OnUnavailable: fleet.Local,
		Etcd: fleet.Etcd{Endpoints: "http://10.0.0.1:2379,http://10.0.0.2:2379", Prefix: "/dewy/prod", Username: "dewy", Password: "s3cret-pw"},
	}
	if f.Fleet == nil || *f.Fleet != want {
		t.Fatalf("fleet = %v, want %v", f.Fleet, want)
	}
	r := f.Apps[0].Rollout
	wantR := fleet.Rollout{Canary: "5%", Bake: 10 * time.Minute, MaxParallel: "2", MinHealthyTime: 30 * time.Second, FailureThreshold: 2}
	if r == nil || *r != wantR {
		t.Fatalf("rollout = %+v, want %+v", r, wantR)
	}
}

func TestFleetDefaultsAreFleets(t *testing.T) {
	src := `fleet {
  etcd { endpoints = ["http://127.0.0.1:2379"] }
}` + strings.Replace(fleetApp, "%s", "rollout {}", 1)
	f, diags := Parse("dewy.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want, _ := fleet.Fleet{Etcd: fleet.Etcd{Endpoints: "http://127.0.0.1:2379"}}.WithDefaults(nil)
	if *f.Fleet != want {
		t.Errorf("fleet = %v, want %v", *f.Fleet, want)
	}
	if got, want := *f.Apps[0].Rollout, (fleet.Rollout{}).WithDefaults(); got != want {
		t.Errorf("rollout = %+v, want %+v", got, want)
	}
	if f.Fleet.HostID != "" {
		t.Errorf("host_id %q: the agent fills it in, not config", f.Fleet.HostID)
	}
}

func TestNoFleetBlockChangesNothing(t *testing.T) {
	f, diags := Parse("dewy.hcl", []byte(strings.Replace(fleetApp, "%s", "", 1)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if f.Fleet != nil || f.Apps[0].Rollout != nil {
		t.Errorf("fleet = %v, rollout = %v; want both nil", f.Fleet, f.Apps[0].Rollout)
	}
}

func TestFleetDiagnostics(t *testing.T) {
	t.Setenv("ETCD_PW", "s3cret-pw")
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"rollout without fleet", strings.Replace(fleetApp, "%s", "  rollout { canary = 1 }", 1), 5, "Rollout without a fleet"},
		{"bad ttl", "fleet {\n  session_ttl = \"1s\"\n  etcd { endpoints = [\"http://a:1\"] }\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 2, "session_ttl"},
		{"bad on_unavailable", "fleet {\n  on_unavailable = \"panic\"\n  etcd { endpoints = [\"http://a:1\"] }\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 2, "on_unavailable"},
		{"bad endpoint", "fleet {\n  etcd {\n    endpoints = [\"10.0.0.1\"]\n  }\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 3, "endpoint"},
		{"bad prefix", "fleet {\n  etcd {\n    endpoints = [\"http://a:1\"]\n    prefix = \"dewy/\"\n  }\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 4, "prefix"},
		{"password without user", "fleet {\n  etcd {\n    endpoints = [\"http://a:1\"]\n    password = env(\"ETCD_PW\")\n  }\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 4, "username"},
		{"no backend", "fleet {\n  host_id = \"a\"\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 1, "Missing fleet backend"},
		{"both backends", "fleet {\n  etcd { endpoints = [\"http://a:1\"] }\n  fleetlock { url = \"http://b:1\" }\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 3, "Two fleet backends"},
		{"bad host_id", "fleet {\n  host_id = \"a b\"\n  etcd { endpoints = [\"http://a:1\"] }\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 2, "host_id"},
		{"bad canary", "fleet {\n  etcd { endpoints = [\"http://a:1\"] }\n}\n" + strings.Replace(fleetApp, "%s", "  rollout {\n    canary = \"150%\"\n  }", 1), 9, "canary"},
		{"bad max_parallel", "fleet {\n  etcd { endpoints = [\"http://a:1\"] }\n}\n" + strings.Replace(fleetApp, "%s", "  rollout {\n    max_parallel = 0\n  }", 1), 9, "max_parallel"},
		{"bad bake", "fleet {\n  etcd { endpoints = [\"http://a:1\"] }\n}\n" + strings.Replace(fleetApp, "%s", "  rollout {\n    bake = \"soon\"\n  }", 1), 9, "bake"},
		{"bad threshold", "fleet {\n  etcd { endpoints = [\"http://a:1\"] }\n}\n" + strings.Replace(fleetApp, "%s", "  rollout {\n    failure_threshold = 0\n  }", 1), 9, "failure_threshold"},
		{"unknown attribute", "fleet {\n  etcd { endpoints = [\"http://a:1\"] }\n  colour = 1\n}\n" + strings.Replace(fleetApp, "%s", "", 1), 3, "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, diags := Parse("dewy.hcl", []byte(tt.src))
			if !diags.HasErrors() || f != nil {
				t.Fatalf("no error; fleet = %v", f)
			}
			found := false
			for _, d := range diags {
				text := d.Summary + ": " + d.Detail
				if strings.Contains(text, "s3cret-pw") {
					t.Errorf("diagnostic shows the password: %s", text)
				}
				if strings.Contains(text, tt.want) && d.Subject != nil && d.Subject.Start.Line == tt.line {
					found = true
				}
			}
			if !found {
				t.Errorf("want a diagnostic about %q at line %d, got %v", tt.want, tt.line, diags)
			}
		})
	}
}
