package config

import (
	"fmt"
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
	// etcd is a valid backend for the cases about something else.
	const etcd = `  etcd { endpoints = ["http://a:1"] }`
	lines := func(l ...string) string { return strings.Join(l, "\n") }
	tests := []struct {
		name string
		// fleet is the fleet block's body (no block when empty), rollout
		// the app's rollout block; the fleet block starts on line 1.
		fleet, rollout string
		line           int
		want           string
	}{
		{"rollout without fleet", "", "  rollout { canary = 1 }", 5, "Rollout without a fleet"},
		{"bad ttl", lines(`  session_ttl = "1s"`, etcd), "", 2, "session_ttl"},
		{"bad on_unavailable", lines(`  on_unavailable = "panic"`, etcd), "", 2, "on_unavailable"},
		{"bad endpoint", lines("  etcd {", `    endpoints = ["10.0.0.1"]`, "  }"), "", 3, "endpoint"},
		{"bad prefix", lines("  etcd {", `    endpoints = ["http://a:1"]`, `    prefix = "dewy/"`, "  }"), "", 4, "prefix"},
		{"password without user", lines("  etcd {", `    endpoints = ["http://a:1"]`, `    password = env("ETCD_PW")`, "  }"), "", 4, "username"},
		{"no backend", `  host_id = "a"`, "", 1, "Missing fleet backend"},
		{"both backends", lines(etcd, `  fleetlock { url = "http://b:1" }`), "", 3, "Two fleet backends"},
		{"bad host_id", lines(`  host_id = "a b"`, etcd), "", 2, "host_id"},
		{"bad canary", etcd, lines("  rollout {", `    canary = "150%"`, "  }"), 9, "canary"},
		{"bad max_parallel", etcd, lines("  rollout {", "    max_parallel = 0", "  }"), 9, "max_parallel"},
		{"bad bake", etcd, lines("  rollout {", `    bake = "soon"`, "  }"), 9, "bake"},
		{"bad threshold", etcd, lines("  rollout {", "    failure_threshold = 0", "  }"), 9, "failure_threshold"},
		{"unknown attribute", lines(etcd, "  colour = 1"), "", 3, "colour"},
		{"unknown etcd attribute", lines("  etcd {", `    endpoints = ["http://a:1"]`, `    prefx = "/d"`, "  }"), "", 4, `Did you mean "prefix"?`},
		{"unknown fleetlock attribute", lines(`  fleetlock {`, `    url = "http://b:1"`, `    grup = "web"`, "  }"), "", 4, `Did you mean "group"?`},
		{"unknown block", lines(etcd, "  etc {}"), "", 3, `Did you mean "etcd"?`},
		{"unknown rollout attribute", etcd, lines("  rollout {", "    canry = 1", "  }"), 9, `Did you mean "canary"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(fleetApp, "%s", tt.rollout, 1)
			if tt.fleet != "" {
				src = "fleet {\n" + tt.fleet + "\n}\n" + src
			}
			f, diags := Parse("dewy.hcl", []byte(src))
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

// TestUnknownSettingInReadBlocks: the blocks read by name (agent, fleet and
// its etcd block, rollout, runner) reject what they do not know, at its line
// and with a suggestion, in every syntax.
func TestUnknownSettingInReadBlocks(t *testing.T) {
	tests := []struct {
		name, file, src string
		line            int
		want            string
	}{
		{"HCL agent", "dewy.hcl", "agent {\n  stat_dir = \"/srv\"\n}\n" + fmt.Sprintf(fleetApp, ""), 2, `Did you mean "state_dir"?`},
		{"HCL runner", "dewy.hcl", "app \"web\" {\n  registry = \"file:///srv/rel\"\n  runner \"server\" {\n    command = [\"./web\"]\n    restrat = \"never\"\n  }\n}\n", 5, `Did you mean "restart"?`},
		{"JSON agent", "dewy.json", `{
  "agent": {"stat_dir": "/srv"},
  "app": {"web": {"registry": "file:///srv/rel", "runner": {"assets": {}}}}
}`, 2, `Did you mean "state_dir"?`},
		{"JSON etcd", "dewy.json", `{
  "fleet": {"etcd": {"endpoints": ["http://a:1"],
                     "prefx": "/d"}},
  "app": {"web": {"registry": "file:///srv/rel", "runner": {"assets": {}}}}
}`, 3, `Did you mean "prefix"?`},
		{"YAML rollout", "dewy.yaml", `fleet:
  etcd:
    endpoints: ["http://a:1"]
app:
  web:
    registry: file:///srv/rel
    runner:
      assets: {}
    rollout:
      canry: 1
`, 10, `Did you mean "canary"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse(tt.file, []byte(tt.src))
			for _, d := range diags {
				if strings.Contains(d.Detail, tt.want) && d.Subject != nil && d.Subject.Start.Line == tt.line {
					return
				}
			}
			t.Errorf("want %q at line %d, got %v", tt.want, tt.line, diags)
		})
	}
}
