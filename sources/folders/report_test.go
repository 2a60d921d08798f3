package folders_test

import (
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestReportKey(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		prefix  string
		tag     string
		want    string
		wantErr bool
	}{
		{name: "with prefix", prefix: "myapp/", tag: "v1.0.0", want: "myapp/v1.0.0/.dewy-reports/20260501T120000.000Z-web1-api.txt"},
		{name: "no prefix", tag: "v1.0.0", want: "v1.0.0/.dewy-reports/20260501T120000.000Z-web1-api.txt"},
		{name: "empty tag", tag: "", wantErr: true},
		{name: "dot dot", tag: "..", wantErr: true},
		{name: "slash", tag: "a/b", wantErr: true},
		{name: "backslash", tag: `a\b`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sources.Report{App: "api", Host: "web1", Time: at, Release: version.Release{Tag: tt.tag}}
			got, err := folders.ReportKey(tt.prefix, r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ReportKey = %q, %v; want error %v", got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ReportKey = %q, want %q", got, tt.want)
			}
		})
	}
}
