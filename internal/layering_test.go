package internal_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module path; rules below are written relative to it.
const module = "github.com/dewy-agent/dewy-agent/"

// sourceImpls are the registry implementations: a source may use the shared
// packages under sources/ (version, folders) but not another implementation.
var sourceImpls = []string{"sources/file", "sources/ghr", "sources/grpc", "sources/gs", "sources/oci", "sources/s3"}

// runnerImpls are the runner implementations.
var runnerImpls = []string{"runners/assets", "runners/container", "runners/server"}

// rule forbids pkg to depend, directly or not, on any package under one of
// the prefixes (a prefix is a package and everything below it).
type rule struct {
	pkg    string
	forbid []string
	why    string
}

// rules are the dependency rules of docs/ARCHITECTURE.md.
func rules() []rule {
	rs := []rule{
		{"config", []string{"agent"}, "config is the file's schema; the agent uses it, not the other way round"},
		{"runners", runnerImpls, "the runners role package knows no implementation"},
		{"sources", sourceImpls, "the sources role package knows no implementation"},
		{"internal/hclsettings", []string{""}, "the settings helpers are a leaf: they import no package of the module"},
	}
	for _, r := range runnerImpls {
		rs = append(rs, rule{r, []string{"agent", "config", "sources"}, "a runner depends on no agent, config or source"})
	}
	for _, s := range sourceImpls {
		var others []string
		for _, o := range sourceImpls {
			if o != s {
				others = append(others, o)
			}
		}
		rs = append(rs, rule{s, append([]string{"runners", "config", "agent"}, others...),
			"a source depends on no runner, config, agent or other source"})
	}
	return rs
}

// under reports whether pkg (module-relative) is prefix or below it; the empty
// prefix is the whole module.
func under(pkg, prefix string) bool {
	return prefix == "" || pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

// violations checks deps (module-relative package -> its transitive module
// dependencies) against rs.
func violations(rs []rule, deps map[string][]string) []string {
	var out []string
	for _, r := range rs {
		ds, ok := deps[r.pkg]
		if !ok {
			out = append(out, r.pkg+": package not found")
			continue
		}
		for _, d := range ds {
			for _, f := range r.forbid {
				if under(d, f) {
					out = append(out, r.pkg+" depends on "+d+": "+r.why)
				}
			}
		}
	}
	return out
}

// moduleDeps runs go list -deps for the packages the rules name.
func moduleDeps(t *testing.T) map[string][]string {
	t.Helper()
	var args []string
	for _, r := range rules() {
		args = append(args, module+r.pkg)
	}
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(fields[0], module)
		deps[pkg] = []string{}
		for _, d := range fields[1:] {
			if strings.HasPrefix(d, module) {
				deps[pkg] = append(deps[pkg], strings.TrimPrefix(d, module))
			}
		}
	}
	return deps
}

// TestLayering enforces who may depend on whom, with go list's transitive
// dependencies.
func TestLayering(t *testing.T) {
	for _, v := range violations(rules(), moduleDeps(t)) {
		t.Error(v)
	}
}

// TestLayeringCatches makes sure the check fails on a broken graph, so a
// passing TestLayering means something.
func TestLayeringCatches(t *testing.T) {
	deps := map[string][]string{}
	for _, r := range rules() {
		deps[r.pkg] = nil
	}
	deps["config"] = []string{"agent/hooks"}
	deps["runners/server"] = []string{"runners", "sources/version"}
	deps["sources/grpc"] = []string{"sources", "sources/s3"}
	deps["sources"] = []string{"sources/version"}
	deps["internal/hclsettings"] = []string{"runners"}
	got := violations(rules(), deps)
	want := []string{
		"config depends on agent/hooks",
		"internal/hclsettings depends on runners",
		"runners/server depends on sources/version",
		"sources/grpc depends on sources/s3",
	}
	if len(got) != len(want) {
		t.Fatalf("violations:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w+":") }) {
			t.Errorf("no violation %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}
