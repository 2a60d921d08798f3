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
	// direct: only the package's own imports count, not what they import
	// (the agent imports config, which imports every implementation).
	direct bool
}

// rules are the dependency rules of docs/ARCHITECTURE.md.
func rules() []rule {
	rs := []rule{
		{"config", []string{"agent"}, "config is the file's schema; the agent uses it, not the other way round", false},
		{"runners", runnerImpls, "the runners role package knows no implementation", false},
		{"sources", sourceImpls, "the sources role package knows no implementation", false},
		{"fleet", []string{"agent", "config", "runners", "sources"}, "fleet coordinates agents; config and the agent use it, never the other way round", false},
		{"internal/hclsettings", []string{""}, "the settings helpers are a leaf: they import no package of the module", false},
		{"internal/tcpproxy", []string{""}, "the proxy shared by the runners is a leaf: it imports no package of the module", false},
		{"signing", []string{"agent", "config", "runners", "sources", "fleet", "notify", "releasestore"}, "signing checks bytes it is handed: it knows no agent, config, runner or source", false},
		{"agent", append(slices.Clone(runnerImpls), sourceImpls...), "the agent knows runners and sources only through their interfaces", true},
	}
	for _, r := range runnerImpls {
		rs = append(rs, rule{r, []string{"agent", "config", "sources"}, "a runner depends on no agent, config or source", false})
	}
	for _, s := range sourceImpls {
		var others []string
		for _, o := range sourceImpls {
			if o != s {
				others = append(others, o)
			}
		}
		rs = append(rs, rule{s, append([]string{"runners", "config", "agent"}, others...),
			"a source depends on no runner, config, agent or other source", false})
	}
	return rs
}

// under reports whether pkg (module-relative) is prefix or below it; the empty
// prefix is the whole module.
func under(pkg, prefix string) bool {
	return prefix == "" || pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

// graph is, per module-relative package, its module dependencies: imports
// (direct) and deps (transitive).
type graph struct {
	imports, deps map[string][]string
}

// violations checks g against rs.
func violations(rs []rule, g graph) []string {
	var out []string
	for _, r := range rs {
		m := g.deps
		if r.direct {
			m = g.imports
		}
		ds, ok := m[r.pkg]
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

// moduleGraph runs go list for the packages the rules name: their imports
// and their transitive dependencies (-deps' list), test files left out.
func moduleGraph(t *testing.T) graph {
	t.Helper()
	var args []string
	for _, r := range rules() {
		args = append(args, module+r.pkg)
	}
	const format = "{{.ImportPath}}{{range .Imports}} i:{{.}}{{end}}{{range .Deps}} d:{{.}}{{end}}"
	out, err := exec.Command("go", append([]string{"list", "-f", format}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := graph{imports: map[string][]string{}, deps: map[string][]string{}}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(fields[0], module)
		g.imports[pkg], g.deps[pkg] = []string{}, []string{}
		for _, f := range fields[1:] {
			kind, path, _ := strings.Cut(f, ":")
			if !strings.HasPrefix(path, module) {
				continue
			}
			path = strings.TrimPrefix(path, module)
			if kind == "i" {
				g.imports[pkg] = append(g.imports[pkg], path)
			} else {
				g.deps[pkg] = append(g.deps[pkg], path)
			}
		}
	}
	return g
}

// TestLayering enforces who may depend on whom, with go list's transitive
// dependencies.
func TestLayering(t *testing.T) {
	for _, v := range violations(rules(), moduleGraph(t)) {
		t.Error(v)
	}
}

// TestLayeringCatches makes sure the check fails on a broken graph, so a
// passing TestLayering means something.
func TestLayeringCatches(t *testing.T) {
	g := graph{imports: map[string][]string{}, deps: map[string][]string{}}
	for _, r := range rules() {
		g.imports[r.pkg], g.deps[r.pkg] = nil, nil
	}
	g.deps["config"] = []string{"agent/hooks"}
	g.deps["runners/server"] = []string{"runners", "sources/version"}
	g.deps["sources/grpc"] = []string{"sources", "sources/s3"}
	g.deps["sources"] = []string{"sources/version"}
	g.deps["internal/hclsettings"] = []string{"runners"}
	g.deps["agent"] = []string{"config", "sources/oci", "runners/server"} // through config: allowed
	g.imports["agent"] = []string{"config", "sources", "sources/oci"}
	got := violations(rules(), g)
	want := []string{
		"agent depends on sources/oci",
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
