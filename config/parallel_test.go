package config

import (
	"strings"
	"testing"
)

func TestMaxParallelDeploys(t *testing.T) {
	tests := []struct {
		name, agent string
		want        int
		wantErr     string
	}{
		{"default", "", 0, ""},
		{"set", "max_parallel_deploys = 4", 4, ""},
		{"zero", "max_parallel_deploys = 0", 0, "max_parallel_deploys is 0; it must be at least 1."},
		{"not a number", `max_parallel_deploys = "many"`, 0, "max_parallel_deploys must be a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "agent {\n  state_dir = \"/var/lib/dewy\"\n  " + tt.agent + "\n}\napp \"site\" {\n  registry = \"file:///srv/site\"\n  runner \"assets\" {}\n}\n"
			f, diags := Parse("dewy.hcl", []byte(src))
			if tt.wantErr != "" {
				if !strings.Contains(diags.Error(), tt.wantErr) {
					t.Fatalf("diagnostics %v, want %q", diags, tt.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if f.Agent.MaxParallelDeploys != tt.want {
				t.Errorf("MaxParallelDeploys = %d, want %d", f.Agent.MaxParallelDeploys, tt.want)
			}
		})
	}
}
