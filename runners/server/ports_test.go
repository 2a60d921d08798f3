package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings/hcltest"
)

func TestDecodePortRanges(t *testing.T) {
	tests := []struct {
		name     string
		ports    string
		want     []int
		wantErr  string
		wantCol  int // column of the diagnostic (1-based); 0: not checked
		wantDiag int
	}{
		{name: "numbers", ports: `[8000, 9000]`, want: []int{8000, 9000}},
		{name: "range and number mixed", ports: `["8000-8003", 9000]`, want: []int{8000, 8001, 8002, 8003, 9000}},
		{name: "number as string", ports: `["8000", 9001]`, want: []int{8000, 9001}},
		{name: "one-port range", ports: `["8000-8000"]`, want: []int{8000}},
		{name: "101 ports", ports: `["8000-8100"]`, want: portSeq(8000, 8100)},
		{name: "102 ports", ports: `["8000-8100", 9000]`, wantErr: "at most 101 are allowed", wantCol: 23, wantDiag: 1},
		{name: "reversed", ports: `[8000, "8010-8000"]`, wantErr: `range "8010-8000" starts above its end`, wantCol: 16, wantDiag: 1},
		{name: "range end out of bounds", ports: `["65530-65536"]`, wantErr: "not a number from 1 to 65535", wantDiag: 1},
		{name: "range from zero", ports: `["0-10"]`, wantErr: "not a number from 1 to 65535", wantDiag: 1},
		{name: "not a range", ports: `["80-x"]`, wantErr: `"80-x" is not a range`, wantDiag: 1},
		{name: "words", ports: `["http"]`, wantErr: `"http" is not a port number`, wantDiag: 1},
		{name: "overlap", ports: `["8000-8005", "8004-8006"]`, wantErr: "ports 8004 to 8005 are listed twice", wantCol: 23, wantDiag: 1},
		{name: "number inside range", ports: `["8000-8005", 8003]`, wantErr: "port 8003 is listed twice", wantCol: 23, wantDiag: 1},
		{name: "single out of bounds", ports: `[70000]`, wantErr: "port 70000 is not a number from 1 to 65535", wantDiag: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := Kind().Decode(hcltest.Block(t, "command = [\"./app\"]\nports = "+tt.ports+"\n", nil))
			if tt.wantErr == "" {
				if diags.HasErrors() {
					t.Fatal(diags.Error())
				}
				if c := got.(Config); !slices.Equal(c.Ports, tt.want) {
					t.Fatalf("Ports = %v, want %v", c.Ports, tt.want)
				}
				return
			}
			if len(diags) != tt.wantDiag {
				t.Fatalf("%d diagnostics, want %d: %v", len(diags), tt.wantDiag, diags)
			}
			d := diags[0]
			if !strings.Contains(d.Detail, tt.wantErr) || d.Subject == nil || d.Subject.Start.Line != 2 {
				t.Fatalf("diagnostic = %v at %v, want %q on line 2", d.Detail, d.Subject, tt.wantErr)
			}
			if tt.wantCol != 0 && d.Subject.Start.Column != tt.wantCol {
				t.Errorf("diagnostic at column %d, want %d (the item)", d.Subject.Start.Column, tt.wantCol)
			}
		})
	}
}

func portSeq(first, last int) []int {
	var s []int
	for p := first; p <= last; p++ {
		s = append(s, p)
	}
	return s
}
