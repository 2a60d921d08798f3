package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// update rewrites golden files instead of comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files")

// TestValidateBadFixtures runs validate on every bad fixture of the config
// package: each exits 1 and prints a diagnostic with the file and a line.
func TestValidateBadFixtures(t *testing.T) {
	files, _ := filepath.Glob("../../config/testdata/*.bad.hcl")
	if len(files) < 20 {
		t.Fatalf("found %d bad fixtures", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, _, stderr := runCLI("validate", "-config", f)
			if code != exitError {
				t.Fatalf("exit %d, want %d", code, exitError)
			}
			re := regexp.MustCompile(regexp.QuoteMeta(filepath.Base(f)) + `:\d+,\d+: Error`)
			if !re.MatchString(stderr) {
				t.Fatalf("no file:line,col diagnostic in:\n%s", stderr)
			}
		})
	}
}

// TestDocumentedConfigsValidate keeps the docs honest: dewy.hcl.example and every
// example config pass validate.
func TestDocumentedConfigsValidate(t *testing.T) {
	t.Setenv("DEMO_DIR", t.TempDir())
	t.Setenv("DEMO_PORT", "18080")
	t.Setenv("DEWY_ADMIN_TOKEN", "example-token") // dewy.hcl.example's admin_token
	var files []string
	for _, pattern := range []string{"*.hcl", "*.json", "*.yaml"} {
		f, _ := filepath.Glob("../../examples/" + pattern)
		files = append(files, f...)
	}
	files = append(files, "../../dewy.hcl.example")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, stdout, stderr := runCLI("validate", "-config", f)
			if code != exitOK || !strings.Contains(stdout, "ok") {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			if stderr != "" {
				t.Fatalf("warnings:\n%s", stderr)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "unknown command", args: []string{"deploy"}, code: exitUsage, want: `unknown command "deploy"`},
		{name: "no config", args: []string{"validate"}, code: exitUsage, want: "-config is required"},
		{name: "run without config", args: nil, code: exitUsage, want: "-config is required"},
		{name: "unknown flag", args: []string{"plan", "-verbose"}, code: exitUsage, want: "flag provided but not defined"},
		{name: "stray argument", args: []string{"validate", "-config", "x.hcl", "extra"}, code: exitUsage, want: `unexpected argument "extra"`},
		{name: "missing file", args: []string{"validate", "-config", "/nonexistent/dewy.hcl"}, code: exitError, want: "no such file"},
		{name: "status unreachable", args: []string{"status", "-addr", "127.0.0.1:1"}, code: exitError, want: "cannot reach the agent"},
		{name: "help", args: []string{"help"}, code: exitOK},
		{name: "version", args: []string{"version"}, code: exitOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, c.want) {
				t.Fatalf("output lacks %q:\n%s%s", c.want, stdout, stderr)
			}
		})
	}
}

// TestPlan shows the deployed and newest versions and deploys nothing.
func TestPlan(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "registry")
	writeFile(t, filepath.Join(reg, "v1.0.0", "site.tar.gz"), testkit.TarGz(map[string]string{"index.html": "1"}))
	writeFile(t, filepath.Join(reg, "v1.2.0", "site.tar.gz"), testkit.TarGz(map[string]string{"index.html": "2"}))
	writeFile(t, filepath.Join(reg, "v2.0.0-rc.1", "site.tar.gz"), testkit.TarGz(map[string]string{"index.html": "3"}))
	state := filepath.Join(dir, "state")
	// The stable app has v1.0.0 deployed, as an earlier run would have left it.
	writeFile(t, filepath.Join(state, "apps", "stable", "state.json"), []byte(`{"version":"v1.0.0"}`))
	// The careful app found v1.2.0 bad earlier; the agent will not deploy it.
	writeFile(t, filepath.Join(state, "apps", "careful", "state.json"),
		[]byte(`{"version":"v1.0.0","bad":[{"version":"v1.2.0","reason":"server: bad release: exited before it was healthy\nmore"}]}`))
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	cfg := filepath.Join(dir, "dewy.hcl")
	writeFile(t, cfg, []byte(fmt.Sprintf(`
agent { state_dir = %q }
app "stable" {
  registry = "file://%s?artifact=site.tar.gz"
  runner "assets" {}
}
app "staging" {
  registry = "file://%s?artifact=site.tar.gz&pre-release=true"
  runner "assets" {}
}
app "missing" {
  registry = "file://%s/nope"
  runner "assets" {}
}
app "careful" {
  registry = "file://%s?artifact=site.tar.gz"
  runner "assets" {}
}
app "vacant" {
  registry = "file://%s"
  runner "assets" {}
}
`, state, reg, reg, dir, reg, empty)))
	code, stdout, stderr := runCLI("plan", "-config", cfg)
	if code != exitError { // the missing registry is an error
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`stable\s+assets\s+v1.0.0\s+v1.2.0\s+site.tar.gz\s+deploy`),
		regexp.MustCompile(`staging\s+assets\s+-\s+v2.0.0-rc.1\s+site.tar.gz\s+deploy`),
		regexp.MustCompile(`missing\s+assets\s+-\s+-\s+-\s+error`),
		regexp.MustCompile(`careful\s+assets\s+v1.0.0\s+v1.2.0\s+site.tar.gz\s+skip \(bad: server: bad release: exited before it was healthy\)\n`),
		regexp.MustCompile(`vacant\s+assets\s+-\s+-\s+-\s+no release`),
	}
	for _, re := range want {
		if !re.MatchString(stdout) {
			t.Errorf("plan lacks %s:\n%s", re, stdout)
		}
	}
	if !strings.Contains(stderr, "missing:") || !strings.Contains(stderr, "vacant:") {
		t.Errorf("no error for the missing or the empty registry:\n%s", stderr)
	}
	// Nothing was deployed or written.
	if _, err := os.Stat(filepath.Join(state, "apps", "staging")); !os.IsNotExist(err) {
		t.Errorf("plan created the staging app's directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(state, "apps", "stable", "current")); !os.IsNotExist(err) {
		t.Errorf("plan deployed: %v", err)
	}
}

// TestValidateBuildsEveryApp: checks that belong to a runner or source (not to
// the file's schema) fail validate too, at the line of the setting.
func TestValidateBuildsEveryApp(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "dewy.hcl")
	writeFile(t, cfg, []byte(`
app "web" {
  registry = "img://ghcr.io/acme/web"
  runner "container" {
    ports   = ["8080:80"]
    volumes = ["/var/run/docker.sock:/var/run/docker.sock"]
  }
}
app "ok" {
  registry = "file:///srv/releases/ok"
  runner "assets" {}
}
`))
	code, _, stderr := runCLI("validate", "-config", cfg)
	if code != exitError || !strings.Contains(stderr, "dewy.hcl:6,15: Error: Refused volume") || !strings.Contains(stderr, "docker.sock") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, ": Error:"); n != 1 {
		t.Fatalf("%d errors, want 1 (the good app is not reported):\n%s", n, stderr)
	}
}

// TestValidateGolden: validate reports every mistake of the file at once, the
// registry's and the runners' included, each with file:line,col and its source
// line, exactly as testdata/validate_five_mistakes.golden holds. Run with
// -update to rewrite the golden file after a deliberate change of wording.
func TestValidateGolden(t *testing.T) {
	const fixture = "../../config/testdata/five_mistakes.bad.hcl"
	golden := filepath.Join("testdata", "validate_five_mistakes.golden")
	code, stdout, stderr := runCLI("validate", "-config", fixture)
	if code != exitError || stdout != "" {
		t.Fatalf("exit %d, stdout %q, want exit %d and nothing on stdout", code, stdout, exitError)
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(stderr), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestValidateGolden -update to create it)", err)
	}
	if stderr != string(want) {
		t.Errorf("validate printed\n%s\nwant (%s)\n%s", stderr, golden, want)
	}
	if n := strings.Count(stderr, ": Error:"); n != 5 {
		t.Errorf("%d errors, want the five of the file", n)
	}
}
