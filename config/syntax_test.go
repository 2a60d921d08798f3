package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/runners/server"
	"github.com/dewy-agent/dewy-agent/sources/file"
)

// syntaxFixtures lists the fixtures in JSON and YAML whose name ends in kind
// ("good" or "bad").
func syntaxFixtures(t *testing.T, kind string) []string {
	t.Helper()
	var files []string
	for _, ext := range []string{"json", "hcl.json", "yaml", "yml"} {
		m, err := filepath.Glob("testdata/*." + kind + "." + ext)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if ext == "json" && strings.HasSuffix(f, ".hcl.json") {
				continue // listed by the hcl.json pattern
			}
			files = append(files, f)
		}
	}
	slices.Sort(files)
	return files
}

// TestSyntaxBadFixtures checks that every bad JSON and YAML fixture is
// reported with its own file name, line and column, and the source line.
func TestSyntaxBadFixtures(t *testing.T) {
	tests := []badFixture{
		{name: "YAML: unknown attribute, worded as in HCL", file: "unknown_attribute.bad.yaml", at: "4,5", want: []string{"Unsupported argument", `Did you mean "interval"?`, "   4:     intervall: 30s"}},
		{
			name: "YAML: registry and runner mistakes at YAML positions, all at once",
			file: "five_mistakes.bad.yaml",
			want: []string{
				"five_mistakes.bad.yaml:4,15:", `target "localhost" has no port`,
				"five_mistakes.bad.yaml:8,16:", "port 70000 is not a number from 1 to 65535",
				"five_mistakes.bad.yaml:11,5:", `Did you mean "interval"?`,
				"five_mistakes.bad.yaml:14,21:", "privileged is refused",
				"five_mistakes.bad.yaml:15,19:", "replicas is 100; it must be at most 64",
			},
		},
		{name: "YAML: wrong type", file: "wrong_type.bad.yaml", at: "4,18", want: []string{"pre_release must be true or false", "   4:     pre_release: sometimes"}},
		{name: "YAML: yes is a string in YAML 1.2", file: "yes_is_a_string.bad.yaml", at: "5,13", want: []string{"report must be true or false", "   5:     report: yes"}},
		{name: "YAML: missing registry points at the app's key", file: "missing_registry.bad.yaml", at: "2,3", want: []string{`app "api" has no registry`, "   2:   api:"}},
		{name: "YAML: unknown block, and so no runner", file: "unknown_block.bad.yaml", at: "4,5", want: []string{`"runners"`, `Did you mean "runner"?`, "   4:     runners:"}},
		{
			name: "YAML: server runner values of the wrong type",
			file: "server_types.bad.yaml",
			want: []string{
				"server_types.bad.yaml:6,18:", "command must be a list of strings", "   6:         command: ./myapp",
				"server_types.bad.yaml:7,16:", `ports[1]: "http" is not a port number or a range`,
			},
		},
		{name: "YAML: an error inside a ${} template points into the string", file: "env_without_quotes.bad.yaml", at: "4,21", want: []string{"Variables not allowed", "   4:     interval: ${env(INTERVAL)}"}},
		{name: "YAML: syntax error", file: "indentation.bad.yaml", at: "4,1", want: []string{"Invalid YAML", "mapping values are not allowed", "   4:      runner:"}},
		{
			name: "YAML file holding HCL",
			file: "hcl_in_yaml.bad.yaml",
			want: []string{"hcl_in_yaml.bad.yaml:2,1:", "hcl_in_yaml.bad.yaml does not look like YAML", "looks like HCL",
				"the syntax is chosen by the file name: .hcl for HCL, .json or .hcl.json for JSON, .yaml or .yml for YAML"},
		},
		{name: "YAML: two documents", file: "two_documents.bad.yaml", at: "5,1", want: []string{"More than one YAML document", "   5: ---"}},
		{name: "YAML: a key that is a number", file: "key_not_string.bad.yaml", at: "8,11", want: []string{"YAML key is not a string", `quote it ("8000")`, "   8:           8000: port"}},
		{name: "YAML: a key given twice", file: "duplicate_key.bad.yaml", at: "5,5", want: []string{`the key "registry" is already set at line 3`}},
		{name: "YAML: an alias inside its own anchor", file: "recursive_alias.bad.yaml", at: "5,13", want: []string{"Recursive YAML alias", "*api"}},
		{
			name: "YAML: a custom tag and an infinite number, both reported",
			file: "tags_and_infinity.bad.yaml",
			want: []string{
				"tags_and_infinity.bad.yaml:3,15:", "the tag !secret is not supported",
				"tags_and_infinity.bad.yaml:4,20:", ".inf is not a finite number",
			},
		},
		{
			name: "YAML: blocks with nothing after their key",
			file: "empty_block.bad.yaml",
			want: []string{
				"empty_block.bad.yaml:2,3:", `app "api" has nothing after its key`, "write api: {}",
				"empty_block.bad.yaml:6,7:", `runner "assets" has nothing after its key`, "write assets: {}",
			},
		},
		{
			name: "YAML: verify block mistakes at YAML positions",
			file: "verify.bad.yaml",
			want: []string{
				"verify.bad.yaml:5,7:", "Invalid minisign public key",
				"verify.bad.yaml:7,22:", "ssh_namespace without ssh_allowed_signers",
			},
		},
		{name: "JSON: unknown attribute", file: "unknown_attribute.bad.json", at: "5,7", want: []string{`Did you mean "interval"?`, `   5:       "intervall": "30s",`}},
		{name: "JSON: wrong type", file: "wrong_type.bad.json", at: "5,24", want: []string{"keep_releases must be a whole number"}},
		{name: "JSON: missing registry", file: "missing_registry.bad.json", at: "3,12", want: []string{`app "api" has no registry`}},
		{name: "JSON: syntax error", file: "trailing_comma.bad.json", at: "5,31", want: []string{"Trailing comma"}},
		{name: "JSON file holding YAML", file: "yaml_in_json.bad.json", at: "2,1", want: []string{"yaml_in_json.bad.json does not look like JSON", "looks like YAML", "   2: app:"}},
		{name: "hcl.json: a block that is not an object", file: "block_not_object.bad.hcl.json", at: "5,17", want: []string{"Incorrect JSON value type", "to specify kind labels for this block"}},
	}

	runBadFixtures(t, tests, syntaxFixtures(t, "bad"))
}

// TestSyntaxGoodFixtures checks that each good JSON and YAML fixture decodes to
// exactly what its HCL twin (the same name ending in .hcl) decodes to.
func TestSyntaxGoodFixtures(t *testing.T) {
	// env.good.* read these.
	t.Setenv("DEWY_TEST_ROOT", "/opt/dewy")
	t.Setenv("DEWY_TEST_LOG_LEVEL", "warn")
	t.Setenv("DEWY_TEST_OWNER", "octo-org")
	t.Setenv("DEWY_TEST_INTERVAL", "2m")
	unsetEnv(t, "DEWY_TEST_UNSET")

	files := syntaxFixtures(t, "good")
	if len(files) < 6 {
		t.Fatalf("found only %v", files)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			base := filepath.Base(path)
			twin := filepath.Join("testdata", base[:strings.Index(base, ".good.")]+".good.hcl")
			want, diags, out := render(t, twin)
			if len(diags) != 0 {
				t.Fatalf("twin %s: %s", twin, out)
			}
			got, diags, out := render(t, path)
			if len(diags) != 0 {
				t.Fatalf("want no diagnostics, got:\n%s", out)
			}
			if got.Path != path {
				t.Errorf("Path = %q, want %q", got.Path, path)
			}
			got.Path, want.Path = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded\n%#v\nwant (from %s)\n%#v", *got, twin, *want)
			}
		})
	}
}

// TestExamplesAgree checks that examples/multi-app in HCL, JSON and YAML is one
// configuration.
func TestExamplesAgree(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://db.internal/app")
	var files []*File
	for _, name := range []string{"multi-app.hcl", "multi-app.json", "multi-app.yaml"} {
		_, diags, out := render(t, filepath.Join("..", "examples", name))
		f, _ := Load(filepath.Join("..", "examples", name))
		if len(diags) != 0 || f == nil {
			t.Fatalf("%s: want no diagnostics, got:\n%s", name, out)
		}
		f.Path = ""
		files = append(files, f)
	}
	// A few values, so the three cannot agree by all being empty.
	api, ok := files[0].App("api")
	srv, isServer := api.Runner.(server.Config)
	if !ok || !isServer || srv.Env["DATABASE_URL"] != "postgres://db.internal/app" ||
		!slices.Equal(srv.Ports, []int{8000}) || api.Interval != time.Minute {
		t.Fatalf("multi-app.hcl decoded to an unexpected api app: %#v", api)
	}
	if len(files[0].Apps) != 3 || files[0].Apps[2].Registry.Scheme != "ghr" || files[0].Apps[1].Registry.Scheme != "file" {
		t.Fatalf("multi-app.hcl decoded to unexpected apps: %#v", files[0].Apps)
	}
	for i, name := range []string{"multi-app.json", "multi-app.yaml"} {
		if !reflect.DeepEqual(files[i+1], files[0]) {
			t.Errorf("%s decoded\n%#v\nwant (from multi-app.hcl)\n%#v", name, *files[i+1], *files[0])
		}
	}
}

func TestSyntaxOf(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		src      string
		want     Syntax
		wantName bool
	}{
		{name: "hcl", file: "/etc/dewy-agent/dewy.hcl", want: SyntaxHCL, wantName: true},
		{name: "json", file: "dewy.json", want: SyntaxJSON, wantName: true},
		{name: "hcl.json", file: "dewy.hcl.json", want: SyntaxJSON, wantName: true},
		{name: "yaml", file: "dewy.yaml", want: SyntaxYAML, wantName: true},
		{name: "yml, upper case", file: "DEWY.YML", want: SyntaxYAML, wantName: true},
		{name: "an example copy keeps its syntax", file: "dewy.hcl.example", want: SyntaxHCL, wantName: true},
		{name: "a template keeps its syntax", file: "templates/dewy.yaml.j2", want: SyntaxYAML, wantName: true},
		{name: "the name wins over the content", file: "dewy.hcl", src: "app:\n", want: SyntaxHCL, wantName: true},
		{name: "no extension, YAML content", file: "/tmp/ansible-tmp-1/source", src: "# managed by Ansible\napp:\n  api: {}\n", want: SyntaxYAML},
		{name: "no extension, JSON content", file: "source", src: "\n  {\"app\": {}}", want: SyntaxJSON},
		{name: "no extension, HCL content", file: "source", src: "// x\nagent {\n}\n", want: SyntaxHCL},
		{name: "unknown extension, HCL attribute", file: "dewy.conf", src: "app \"a\" {}\n", want: SyntaxHCL},
		{name: "unknown extension, unclear content", file: "dewy.conf", src: "???", want: SyntaxHCL},
		{name: "unknown extension, empty", file: "dewy.conf", want: SyntaxHCL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, byName := SyntaxOf(tt.file, []byte(tt.src))
			if got != tt.want || byName != tt.wantName {
				t.Errorf("SyntaxOf(%q) = %q, %v; want %q, %v", tt.file, got, byName, tt.want, tt.wantName)
			}
		})
	}
}

// TestSyntaxFromContent parses files whose name has no known extension: each
// is read in the syntax it looks like, with a warning saying so.
func TestSyntaxFromContent(t *testing.T) {
	const hclSrc = "app \"api\" {\n  registry = \"ghr://linyows/myapp\"\n  runner \"assets\" {}\n}\n"
	const yamlSrc = "app:\n  api:\n    registry: ghr://linyows/myapp\n    runner: {assets: {}}\n"
	const jsonSrc = `{"app": {"api": {"registry": "ghr://linyows/myapp", "runner": {"assets": {}}}}}`
	want, diags := Parse("dewy.hcl", []byte(hclSrc))
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	for _, tt := range []struct{ name, src, syntax string }{
		{"HCL", hclSrc, "HCL"},
		{"YAML", yamlSrc, "YAML"},
		{"JSON", jsonSrc, "JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, diags := Parse("source", []byte(tt.src))
			if diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning {
				t.Fatalf("want one warning, got %v", diags)
			}
			if !strings.Contains(diags[0].Detail, "read as "+tt.syntax) {
				t.Errorf("warning %q does not name %s", diags[0].Detail, tt.syntax)
			}
			if !reflect.DeepEqual(f.Apps, want.Apps) {
				t.Errorf("apps %#v, want %#v", f.Apps, want.Apps)
			}
		})
	}
}

// TestWrongSyntax gives files content of another syntax than their name says.
func TestWrongSyntax(t *testing.T) {
	tests := []struct {
		name string
		file string
		src  string
		want string // "" means: parses without error
	}{
		{name: "hcl file holding JSON", file: "dewy.hcl", src: "{\n  \"app\": {}\n}\n", want: "dewy.hcl:1,1: Error: dewy.hcl does not look like HCL"},
		{name: "hcl file holding YAML", file: "dewy.hcl", src: "# x\nagent:\n  admin: \"\"\n", want: "dewy.hcl:2,1: Error: dewy.hcl does not look like HCL"},
		{name: "json file holding HCL", file: "dewy.json", src: "agent {\n}\n", want: "dewy.json:1,1: Error: dewy.json does not look like JSON"},
		{name: "yaml file holding an HCL attribute", file: "d.yml", src: "x = 1\n", want: "d.yml:1,1: Error: d.yml does not look like YAML"},
		{name: "a broken HCL file is reported as HCL", file: "dewy.hcl", src: "agent {\n  admin = \n}\n", want: "dewy.hcl:2,11: Error: Invalid expression"},
		{name: "a broken YAML file is reported as YAML", file: "dewy.yaml", src: "agent:\n  admin: [\n", want: "Invalid YAML"},
		{name: "JSON is YAML", file: "dewy.yaml", src: `{"agent": {"admin": ""}, "app": {"a": {"registry": "ghr://o/r", "runner": {"assets": {}}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, diags := Parse(tt.file, []byte(tt.src))
			var buf bytes.Buffer
			if err := WriteDiagnostics(&buf, tt.file, []byte(tt.src), diags, false); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if diags.HasErrors() || f == nil || len(f.Apps) != 1 {
					t.Fatalf("want a good file; got:\n%s", buf.String())
				}
				return
			}
			if !strings.Contains(buf.String(), tt.want) {
				t.Errorf("want %q in:\n%s", tt.want, buf.String())
			}
		})
	}
}

// yamlAttrs parses src as YAML and returns the top-level attributes.
func yamlAttrs(t *testing.T, src string) hcl.Attributes {
	t.Helper()
	f, diags := parseYAML("t.yaml", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		t.Fatalf("attributes: %v", diags)
	}
	return attrs
}

// TestYAMLPositions checks that each value's range is the exact text of the
// value in the YAML file: line, column and byte, whatever its style, even where
// the JSON token is longer than the YAML text.
func TestYAMLPositions(t *testing.T) {
	const src = "plain: hello world   # a comment\n" +
		"dq: \"say \\\"hi\\\"\\t\"\n" +
		"sq: 'it''s'\n" +
		"n: 42\n" +
		"hex: 0x1F\n" +
		"x: &anchor !!str 12\n" +
		"alias: *anchor\n" +
		"block: |\n  line 1\n  line 2\n" +
		"flow: {k: v, l: [1, 2]}\n" +
		"list:\n  - a\n  - b\n" +
		"ünï: \"héllo\"\n" +
		"\"quoted key\": ~\n" +
		"empty:\n" +
		"tight: {a: b,c: d}\n"
	tests := []struct {
		name      string
		attr      string
		want      string // the source text the value's range covers
		line, col int
		nameText  string
	}{
		{name: "plain", attr: "plain", want: "hello world", line: 1, col: 8, nameText: "plain"},
		{name: "double quoted with escapes", attr: "dq", want: `"say \"hi\"\t"`, line: 2, col: 5, nameText: "dq"},
		{name: "single quoted", attr: "sq", want: `'it''s'`, line: 3, col: 5},
		{name: "number", attr: "n", want: "42", line: 4, col: 4},
		{name: "hex number", attr: "hex", want: "0x1F", line: 5, col: 6},
		{name: "anchor and tag skipped", attr: "x", want: "12", line: 6, col: 18},
		{name: "alias", attr: "alias", want: "*anchor", line: 7, col: 8},
		{name: "block scalar: its indicator", attr: "block", want: "|", line: 8, col: 8},
		{name: "flow mapping", attr: "flow", want: "{k: v, l: [1, 2]}", line: 11, col: 7},
		{name: "block list: from its key to the last item", attr: "list", want: "list:\n  - a\n  - b", line: 12, col: 1},
		{name: "non-ASCII: columns count characters", attr: "ünï", want: `"héllo"`, line: 15, col: 6, nameText: "ünï"},
		{name: "quoted key", attr: "quoted key", want: "~", line: 16, col: 15, nameText: `"quoted key"`},
		{name: "no room in the JSON: still exact", attr: "tight", want: "{a: b,c: d}", line: 18, col: 8},
	}
	attrs := yamlAttrs(t, src)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := attrs[tt.attr]
			if !ok {
				t.Fatalf("no attribute %q", tt.attr)
			}
			r := a.Expr.Range()
			if got := string(r.SliceBytes([]byte(src))); got != tt.want {
				t.Errorf("range covers %q, want %q (range %s)", got, tt.want, r)
			}
			if r.Start.Line != tt.line || r.Start.Column != tt.col {
				t.Errorf("starts at %d,%d, want %d,%d", r.Start.Line, r.Start.Column, tt.line, tt.col)
			}
			if r.Filename != "t.yaml" {
				t.Errorf("file %q, want t.yaml", r.Filename)
			}
			if tt.nameText != "" {
				if got := string(a.NameRange.SliceBytes([]byte(src))); got != tt.nameText {
					t.Errorf("name range covers %q, want %q", got, tt.nameText)
				}
			}
		})
	}
	if _, ok := attrs["empty"]; !ok {
		t.Error("a key with no value is missing")
	}
}

// TestYAMLLinesInJSON checks the layout of the JSON written for a YAML file:
// read without the position map, every key and value is on its YAML line.
func TestYAMLLinesInJSON(t *testing.T) {
	const src = "a: 1\n" +
		"b: \"a long \\\"escaped\\\" \\u00e9 string\"\n" +
		"c:\n" +
		"  d: [x, y]\n" +
		"\n" +
		"# comment\n" +
		"e: {f: g,h: i}\n" +
		"z: |\n  two\n  lines\n" +
		"last: true\n"
	text, _, diags := yamlToJSON("t.yaml", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	f, diags := hcljson.Parse(text, "t.json")
	if diags.HasErrors() {
		t.Fatalf("%v\n%s", diags, text)
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for name, line := range map[string]int{"a": 1, "b": 2, "c": 3, "e": 7, "z": 8, "last": 11} {
		if got := attrs[name].NameRange.Start.Line; got != line {
			t.Errorf("key %s on JSON line %d, want %d\n%s", name, got, line, text)
		}
	}
	if got := attrs["c"].Expr.Range().End.Line; got != 4 {
		t.Errorf("c's value ends on JSON line %d, want 4\n%s", got, text)
	}
}

// TestYAMLValues checks YAML's types as the config sees them.
func TestYAMLValues(t *testing.T) {
	const src = `
plain: hello
multiline: |
  one
  two
folded: >-
  one
  two
escapes: "tab\there \"quoted\" back\\slash \u00e9"
on: on
yes: yes
no: NO
date: 2024-01-02
version: "1.10"
float_version: 1.10
t: True
f: false
int: 8000
hex: 0x1F
octal: 0o17
under: 1_000
exp: 1e3
neg: -5
big: 123456789012345678901234567890
nothing: ~
none:
list: [a, 1, true]
map: {A: x, B: "y"}
base: &base {k: v, keep: 1}
merged:
  <<: *base
  keep: 2
literal_template: "$${not_a_template}"
`
	num := func(s string) cty.Value { v, _ := cty.ParseNumberVal(s); return v }
	tests := []struct {
		name string
		attr string
		want cty.Value
	}{
		{name: "plain string", attr: "plain", want: cty.StringVal("hello")},
		{name: "literal block keeps newlines", attr: "multiline", want: cty.StringVal("one\ntwo\n")},
		{name: "folded block, stripped", attr: "folded", want: cty.StringVal("one two")},
		{name: "escapes", attr: "escapes", want: cty.StringVal("tab\there \"quoted\" back\\slash é")},
		{name: "on is a string", attr: "on", want: cty.StringVal("on")},
		{name: "yes is a string", attr: "yes", want: cty.StringVal("yes")},
		{name: "NO is a string", attr: "no", want: cty.StringVal("NO")},
		{name: "a date stays text", attr: "date", want: cty.StringVal("2024-01-02")},
		{name: "quoted version stays text", attr: "version", want: cty.StringVal("1.10")},
		{name: "unquoted version is a number", attr: "float_version", want: num("1.10")},
		{name: "True", attr: "t", want: cty.True},
		{name: "false", attr: "f", want: cty.False},
		{name: "int", attr: "int", want: cty.NumberIntVal(8000)},
		{name: "hex", attr: "hex", want: cty.NumberIntVal(31)},
		{name: "octal", attr: "octal", want: cty.NumberIntVal(15)},
		{name: "underscores", attr: "under", want: cty.NumberIntVal(1000)},
		{name: "exponent", attr: "exp", want: cty.NumberIntVal(1000)},
		{name: "negative", attr: "neg", want: cty.NumberIntVal(-5)},
		{name: "big number kept exactly", attr: "big", want: num("123456789012345678901234567890")},
		{name: "null", attr: "nothing", want: cty.NullVal(cty.DynamicPseudoType)},
		{name: "empty value is null", attr: "none", want: cty.NullVal(cty.DynamicPseudoType)},
		{name: "flow list", attr: "list", want: cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1), cty.True})},
		{name: "flow map", attr: "map", want: cty.ObjectVal(map[string]cty.Value{"A": cty.StringVal("x"), "B": cty.StringVal("y")})},
		{name: "merge key: own keys win", attr: "merged", want: cty.ObjectVal(map[string]cty.Value{"k": cty.StringVal("v"), "keep": cty.NumberIntVal(2)})},
		{name: "$${ is a literal ${", attr: "literal_template", want: cty.StringVal("${not_a_template}")},
	}
	attrs := yamlAttrs(t, src)
	ctx := hclsettings.NewEvalContext(func(string) string { return "" })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := attrs[tt.attr]
			if !ok {
				t.Fatalf("no attribute %q", tt.attr)
			}
			got, diags := a.Expr.Value(ctx)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if !got.RawEquals(tt.want) {
				t.Errorf("= %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestYAMLEnvEquivalence checks env() in the three syntaxes.
func TestYAMLEnvEquivalence(t *testing.T) {
	t.Setenv("RELEASES", "/srv/releases")
	srcs := map[string]string{
		"dewy.hcl":  "app \"site\" {\n  registry = \"file://${env(\"RELEASES\")}/site\"\n  runner \"assets\" {}\n}\n",
		"dewy.json": `{"app": {"site": {"registry": "file://${env(\"RELEASES\")}/site", "runner": {"assets": {}}}}}`,
		"dewy.yaml": "app:\n  site:\n    registry: file://${env(\"RELEASES\")}/site\n    runner: {assets: {}}\n",
		"dewy.yml":  "app:\n  site:\n    registry: 'file://${env(\"RELEASES\")}/site'\n    runner: {assets: {}}\n",
	}
	for name, src := range srcs {
		f, diags := Parse(name, []byte(src))
		if len(diags) != 0 {
			t.Fatalf("%s: %v", name, diags)
		}
		if got := f.Apps[0].Registry.Settings; got != (file.Config{Path: "/srv/releases/site"}) {
			t.Errorf("%s: registry %+v, want /srv/releases/site", name, got)
		}
	}
}

// TestYAMLEmpty checks that a YAML file with no document is an empty config,
// as an empty HCL file is.
func TestYAMLEmpty(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		f, diags := Parse("dewy.yaml", []byte(src))
		if diags.HasErrors() || f == nil || len(f.Apps) != 0 {
			t.Errorf("%q: File %v, diagnostics %v", src, f, diags)
		}
	}
	_, diags := Parse("dewy.yaml", []byte("- a\n- b\n"))
	if !diags.HasErrors() || !strings.Contains(diags[0].Detail, "not a list") {
		t.Errorf("a list at the top: %v", diags)
	}
}

// TestYAMLAliasBomb checks that nested aliases cannot blow up the document.
func TestYAMLAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	// Expanded, the file holds 10^10 values: without the bound, Parse would
	// run until the test's timeout. No wall-clock limit here; it failed
	// under -race on a loaded machine without saying anything about the code.
	_, diags := Parse("bomb.yaml", []byte(b.String()))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "more than 100000 values") {
		t.Errorf("diagnostics %v", diags)
	}
}

// TestLoadYAML loads a YAML file from disk and prints its diagnostics with the
// source line read back from the file.
func TestLoadYAML(t *testing.T) {
	src := "agent:\n  state_dir: /srv/dewy\napp:\n  api:\n    registry: ghr://linyows/myapp\n    interval: soon\n    runner:\n      assets: {}\n"
	loadBad(t, "dewy.yml", src, "PATH:6,15:", `interval: "soon" is not a duration`, "   6:     interval: soon")
}

// FuzzYAMLToJSON feeds YAML to the converter: it never panics, what it accepts
// is valid HCL JSON, and every mapped position lies inside the YAML file with
// a line and column that agree with its byte offset.
func FuzzYAMLToJSON(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("? [a]\n: b\n"))
	f.Add([]byte("a: \"\\u2028\\x00\"\nb: 'é''ü'\n"))
	// Found by fuzzing: a number JSON allows but cty cannot hold, and a
	// "prepend" character that hcl/json's scanner joins with the closing quote.
	f.Add([]byte("A: 0e0000000000000000000000000000000000000000000400000000000000000000000"))
	f.Add([]byte("0L\u0600:"))
	f.Fuzz(func(t *testing.T, src []byte) {
		text, m, diags := yamlToJSON("f.yaml", src)
		for _, d := range diags {
			if d.Subject != nil {
				checkPos(t, src, d.Subject.Start)
				checkPos(t, src, d.Subject.End)
			}
		}
		if diags.HasErrors() {
			return
		}
		jf, jdiags := hcljson.Parse(text, "f.yaml")
		if jdiags.HasErrors() {
			t.Fatalf("the JSON written for\n%q\ndoes not parse: %v\n%s", src, jdiags, text)
		}
		attrs, _ := remapBody{body: jf.Body, m: m}.JustAttributes()
		for _, a := range attrs {
			for _, r := range []hcl.Range{a.NameRange, a.Expr.Range()} {
				checkPos(t, src, r.Start)
				checkPos(t, src, r.End)
			}
		}
	})
}

// checkPos fails when p is not a position in src.
func checkPos(t *testing.T, src []byte, p hcl.Pos) {
	t.Helper()
	if p.Byte < 0 || p.Byte > len(src) {
		t.Fatalf("byte %d outside the %d-byte file", p.Byte, len(src))
	}
	line := 1 + bytes.Count(src[:p.Byte], []byte("\n"))
	if p.Line != line {
		t.Fatalf("position %#v: byte %d is on line %d", p, p.Byte, line)
	}
}
