package config

// The config file may be written in three syntaxes that share one schema:
//
//   - HCL's native syntax (*.hcl), parsed by hclsyntax;
//   - HCL's JSON syntax (*.json, *.hcl.json), parsed by hcl/json as Terraform
//     and Nomad accept it: blocks are objects, labels are object keys, and
//     string values are templates, so "${env(\"NAME\")}" works;
//   - YAML (*.yaml, *.yml), turned into the JSON syntax (yamlToJSON) and then
//     parsed by hcl/json, so every name, label, default and rule is the same
//     and there is one decoder. Positions are mapped back to the YAML file
//     (remapBody), so diagnostics carry the YAML file's line, column and byte.
//
// The syntax is chosen by the file name's extension (the last of .hcl, .json,
// .yaml and .yml in it: dewy.hcl.example is HCL). A file whose name has none
// of these extensions is read in the syntax its content looks like (HCL when it is not
// clearly JSON or YAML), with a warning; that is what lets a tool check a
// temporary copy such as Ansible's "validate: dewy-agent validate -config %s".

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
)

// Syntax is the language a config file is written in: SyntaxHCL, SyntaxJSON or
// SyntaxYAML. All three decode into the same File with the same rules.
type Syntax string

// The config file syntaxes.
const (
	SyntaxHCL  Syntax = "hcl"  // HCL's native syntax: *.hcl
	SyntaxJSON Syntax = "json" // HCL's JSON syntax: *.json, *.hcl.json
	SyntaxYAML Syntax = "yaml" // YAML, read as HCL's JSON syntax: *.yaml, *.yml
)

// syntaxHint is the sentence every wrong-syntax message ends with.
const syntaxHint = "the syntax is chosen by the file name: .hcl for HCL, .json or .hcl.json for JSON, .yaml or .yml for YAML"

// SyntaxOf returns the syntax of the config file filename, and whether its name
// decided it. A name with none of the known extensions gets the syntax its
// content src looks like, HCL when that is not clear, and byName false.
func SyntaxOf(filename string, src []byte) (s Syntax, byName bool) {
	if s, ok := syntaxByName(filename); ok {
		return s, true
	}
	if g, _ := guessSyntax(src); g != "" {
		return g, false
	}
	return SyntaxHCL, false
}

// syntaxByName maps the file name's extension to its syntax. When the last
// extension is not one of the config's, the ones before it are tried, so
// dewy.hcl.example and dewy.yaml.j2 are HCL and YAML.
func syntaxByName(filename string) (Syntax, bool) {
	name := filepath.Base(filename)
	for ext := filepath.Ext(name); ext != "" && ext != name; ext = filepath.Ext(name) {
		switch strings.ToLower(ext) {
		case ".hcl":
			return SyntaxHCL, true
		case ".json": // also *.hcl.json
			return SyntaxJSON, true
		case ".yaml", ".yml":
			return SyntaxYAML, true
		}
		name = strings.TrimSuffix(name, ext)
	}
	return "", false
}

// parseFile parses src, the text of the config file filename, in the syntax its
// name chooses (see SyntaxOf) into an hcl.File whose body every syntax decodes
// the same way. Every range in the file and in the diagnostics, including
// those found later while decoding its body, is a position in src.
func parseFile(filename string, src []byte) (*hcl.File, hcl.Diagnostics) {
	syntax, byName := SyntaxOf(filename, src)
	var diags hcl.Diagnostics
	if !byName {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Config syntax chosen by content",
			Detail: fmt.Sprintf("%s has no .hcl, .json, .hcl.json, .yaml or .yml extension, so it was read as %s because its content looks like it; "+
				"name the file with one of these extensions to choose the syntax.", filepath.Base(filename), syntaxName(syntax)),
		})
	}

	var f *hcl.File
	var more hcl.Diagnostics
	switch syntax {
	case SyntaxJSON:
		f, more = hcljson.Parse(src, filename)
	case SyntaxYAML:
		f, more = parseYAML(filename, src)
	default:
		f, more = hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	}
	if more.HasErrors() {
		if wrong := wrongSyntax(filename, src, syntax); wrong != nil {
			more = hcl.Diagnostics{wrong}
		}
	}
	return f, append(diags, more...)
}

// syntaxName is the syntax's name in messages.
func syntaxName(s Syntax) string {
	switch s {
	case SyntaxJSON:
		return "JSON"
	case SyntaxYAML:
		return "YAML"
	}
	return "HCL"
}

// The first meaningful line of a file, classified by these patterns, is all
// guessSyntax reads: it is a hint for a file that did not parse, or for one
// whose name says nothing, never a parser.
var (
	hclBlockLine = regexp.MustCompile(`^[A-Za-z_][\w-]*(\s+("[^"]*"|[A-Za-z_][\w-]*))*\s*\{`)
	hclAttrLine  = regexp.MustCompile(`^[A-Za-z_][\w-]*\s*=`)
	yamlKeyLine  = regexp.MustCompile(`^("[^"]*"|'[^']*'|[^\s"'{\[#:=-][^:#=]*?)\s*:(\s|$)`)
)

// guessSyntax says which syntax src looks like from its first line that is not
// blank or a comment, and returns that line's range ("" when unsure).
func guessSyntax(src []byte) (Syntax, hcl.Range) {
	start := 0
	for line := 1; start < len(src); line++ {
		end := bytes.IndexByte(src[start:], '\n')
		if end < 0 {
			end = len(src)
		} else {
			end += start
		}
		text := strings.TrimRight(string(src[start:end]), "\r")
		trimmed := strings.TrimSpace(strings.TrimPrefix(text, "\uFEFF"))
		rng := hcl.Range{
			Start: hcl.Pos{Line: line, Column: 1, Byte: start},
			End:   hcl.Pos{Line: line, Column: 1 + len([]rune(text)), Byte: start + len(text)},
		}
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "//") || strings.HasPrefix(trimmed, "/*"):
			start = end + 1
			continue
		case trimmed[0] == '{' || trimmed[0] == '[':
			return SyntaxJSON, rng
		case trimmed == "---" || strings.HasPrefix(trimmed, "--- ") || trimmed == "-" || strings.HasPrefix(trimmed, "- ") || strings.HasPrefix(trimmed, "%YAML"):
			return SyntaxYAML, rng
		case hclBlockLine.MatchString(trimmed) || hclAttrLine.MatchString(trimmed):
			return SyntaxHCL, rng
		case yamlKeyLine.MatchString(trimmed):
			return SyntaxYAML, rng
		}
		return "", rng
	}
	return "", hcl.Range{Start: hcl.InitialPos, End: hcl.InitialPos}
}

// wrongSyntax returns an error for a file that failed to parse as want when
// its content clearly is another syntax, and nil when it is not clear. A YAML
// file holding JSON is not wrong: JSON is YAML.
func wrongSyntax(filename string, src []byte, want Syntax) *hcl.Diagnostic {
	got, rng := guessSyntax(src)
	if got == "" || got == want || (want == SyntaxYAML && got == SyntaxJSON) {
		return nil
	}
	rng.Filename = filename
	base := filepath.Base(filename)
	line := strings.TrimSpace(string(rng.SliceBytes(src)))
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("%s does not look like %s", base, syntaxName(want)),
		Detail: fmt.Sprintf("%s is read as %s but it looks like %s (line %d: %s); %s. Rename the file or write it in %s.",
			base, syntaxName(want), syntaxName(got), rng.Start.Line, line, syntaxHint, syntaxName(want)),
		Subject: &rng,
	}
}
