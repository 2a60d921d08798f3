// Package hcltest helps test the settings decoders: it parses a block body
// from text, and checks that a decoder reported exactly the mistakes expected,
// each at its line.
package hcltest

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
)

// Block parses src as the body of a block of dewy.hcl whose header is at the
// file's start (line 1, where a missing attribute is reported). env() reads
// env.
func Block(t testing.TB, src string, env map[string]string) hclsettings.Block {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "dewy.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return hclsettings.Block{
		Body:     f.Body,
		DefRange: hcl.Range{Filename: "dewy.hcl", Start: hcl.InitialPos},
		Ctx:      hclsettings.NewEvalContext(func(k string) string { return env[k] }),
	}
}

// Diag is one expected diagnostic: its line, its column when Col is not 0,
// and a part of its detail.
type Diag struct {
	Line int
	Col  int
	Text string
}

// ExpectDiags fails t unless diags are exactly want: as many, and each of
// want found at its line (and column).
func ExpectDiags(t testing.TB, diags hcl.Diagnostics, want []Diag) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, d := range diags {
			if d.Subject != nil && d.Subject.Start.Line == w.Line && (w.Col == 0 || d.Subject.Start.Column == w.Col) &&
				strings.Contains(d.Detail, w.Text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no diagnostic %q at %d:%d in:\n%v", w.Text, w.Line, w.Col, diags)
		}
	}
	if len(diags) != len(want) {
		t.Errorf("%d diagnostics, want %d:\n%v", len(diags), len(want), diags)
	}
}
