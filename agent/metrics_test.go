package agent

import (
	"slices"
	"testing"
)

// versionSeries lists the deployed_version_info series as "app=version".
func versionSeries(t *testing.T, m *metrics) []string {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if f.GetName() != "dewy_deployed_version_info" {
			continue
		}
		for _, s := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got = append(got, l["app"]+"="+l["version"])
		}
	}
	slices.Sort(got)
	return got
}

// TestSetVersionKeepsOneSeriesPerApp checks that an app has one
// deployed_version_info series, its latest version's, through upgrades, an
// undeployed state and removal, and that other apps' series are untouched.
func TestSetVersionKeepsOneSeriesPerApp(t *testing.T) {
	m := newMetrics()
	steps := []struct {
		app, version string
		forget       bool
		want         []string
	}{
		{app: "a", version: "v1", want: []string{"a=v1"}},
		{app: "b", version: "v1", want: []string{"a=v1", "b=v1"}},
		{app: "a", version: "v2", want: []string{"a=v2", "b=v1"}},
		{app: "a", version: "v2", want: []string{"a=v2", "b=v1"}},
		{app: "b", version: "", want: []string{"a=v2"}},
		{app: "a", forget: true, want: nil},
		{app: "a", version: "v3", want: []string{"a=v3"}},
	}
	for i, s := range steps {
		if s.forget {
			m.forget(s.app)
		} else {
			m.setVersion(s.app, s.version)
		}
		if got := versionSeries(t, m); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (%s %q): series %v, want %v", i, s.app, s.version, got, s.want)
		}
	}
}
