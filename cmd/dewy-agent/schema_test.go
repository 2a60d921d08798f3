package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// compileSchema compiles what `dewy-agent schema` prints.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	code, stdout, stderr := runCLI("schema")
	if code != exitOK || stderr != "" {
		t.Fatalf("schema: exit %d %s", code, stderr)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("dewy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("dewy.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return s
}

// loadDoc reads a JSON or YAML config into the value a JSON Schema validator
// checks.
func loadDoc(t *testing.T, path string, src []byte) any {
	t.Helper()
	if strings.HasSuffix(path, ".json") {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	// Through JSON, so numbers and maps have the types the validator expects.
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsTheExamples: every JSON and YAML example and good fixture
// is valid against the generated schema, and files with an unknown attribute,
// a wrong type or two runners are not.
func TestSchemaAcceptsTheExamples(t *testing.T) {
	s := compileSchema(t)
	var good []string
	for _, pattern := range []string{"../../examples/*.json", "../../examples/*.yaml", "../../config/testdata/*.good.yaml", "../../config/testdata/*.good.yml", "../../config/testdata/*.good.hcl.json"} {
		f, _ := filepath.Glob(pattern)
		good = append(good, f...)
	}
	if len(good) < 5 {
		t.Fatalf("found %d examples", len(good))
	}
	for _, f := range good {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(loadDoc(t, f, src)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	bad := map[string]string{
		"unknown attribute": "app:\n  web:\n    registry: ghr://o/r\n    colour: red\n    runner:\n      assets: {}\n",
		"wrong type":        "app:\n  web:\n    registry: ghr://o/r\n    keep_releases: many\n    runner:\n      assets: {}\n",
		"two runners":       "app:\n  web:\n    registry: ghr://o/r\n    runner:\n      assets: {}\n      server: {command: [./x]}\n",
		"no runner":         "app:\n  web:\n    registry: ghr://o/r\n",
		"unknown runner":    "app:\n  web:\n    registry: ghr://o/r\n    runner:\n      lambda: {}\n",
		"server port list":  "app:\n  web:\n    registry: ghr://o/r\n    runner:\n      server: {command: [./x], ports: 8000}\n",
	}
	for name, text := range bad {
		if err := s.Validate(loadDoc(t, "x.yaml", []byte(text))); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
}
