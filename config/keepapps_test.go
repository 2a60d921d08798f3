package config

import "testing"

// TestKeepAppsRunningOnStop: the agent block's keep_apps_running_on_stop is a
// bool, false by default.
func TestKeepAppsRunningOnStop(t *testing.T) {
	app := "app \"web\" {\n  registry = \"ghr://o/r\"\n  runner \"assets\" {}\n}\n"
	for _, tc := range []struct {
		agent   string
		want    bool
		wantErr bool
	}{
		{agent: "", want: false},
		{agent: "agent {\n  keep_apps_running_on_stop = true\n}\n", want: true},
		{agent: "agent {\n  keep_apps_running_on_stop = false\n}\n", want: false},
		{agent: "agent {\n  keep_apps_running_on_stop = \"yes please\"\n}\n", wantErr: true},
	} {
		f, diags := Parse("keep.hcl", []byte(tc.agent+app))
		if diags.HasErrors() != tc.wantErr {
			t.Fatalf("%q: diagnostics %v, want errors %v", tc.agent, diags, tc.wantErr)
		}
		if !tc.wantErr && f.Agent.KeepAppsRunningOnStop != tc.want {
			t.Errorf("%q: KeepAppsRunningOnStop = %v, want %v", tc.agent, f.Agent.KeepAppsRunningOnStop, tc.want)
		}
	}
}
