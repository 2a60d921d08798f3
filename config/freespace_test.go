package config

import (
	"strings"
	"testing"
)

func TestMinFreeSpace(t *testing.T) {
	tests := []struct {
		value   string
		want    FreeSpace
		wantErr string
	}{
		{value: `"1GiB"`, want: FreeSpace{Bytes: 1 << 30}},
		{value: `"500MB"`, want: FreeSpace{Bytes: 500e6}},
		{value: `"5%"`, want: FreeSpace{Percent: 5}},
		{value: `"2048"`, want: FreeSpace{Bytes: 2048}},
		{value: `"lots"`, wantErr: "Invalid min_free_space"},
		{value: `"150%"`, wantErr: "not a percentage above 0 and below 100"},
		{value: `"0"`, wantErr: "is zero"},
		{value: `5`, want: FreeSpace{Bytes: 5}}, // a number is bytes
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			src := "agent {\n  state_dir = \"/tmp/x\"\n  min_free_space = " + tt.value + "\n}\napp \"a\" {\n  registry = \"file:///srv/r\"\n  runner \"assets\" {}\n}\n"
			f, diags := Parse("/etc/dewy.hcl", []byte(src))
			if tt.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.wantErr) {
					t.Fatalf("diags = %v, want %q", diags, tt.wantErr)
				}
				if diags[0].Subject == nil || diags[0].Subject.Start.Line != 3 {
					t.Fatalf("diagnostic at %v, want line 3", diags[0].Subject)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if f.Agent.MinFreeSpace != tt.want {
				t.Fatalf("MinFreeSpace = %+v, want %+v", f.Agent.MinFreeSpace, tt.want)
			}
		})
	}
}
