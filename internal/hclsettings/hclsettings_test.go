package hclsettings

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// decode parses src as a block's body and starts reading it.
func decode(t *testing.T, src string, getenv func(string) string) (*Decoder, *Reader, hcl.Range) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	d := NewDecoder(NewEvalContext(getenv))
	blk := f.Body.(*hclsyntax.Body).SrcRange
	return d, d.Read(f.Body, blk), blk
}

func TestEval(t *testing.T) {
	d, r, blk := decode(t, "name = env(\"WHO\")\nports = [80, \"x\"]\ntimeout = \"soon\"\nmode = \"loud\"\n",
		func(k string) string { return map[string]string{"WHO": "web"}[k] })

	name := Get[string](r, "name", "a string")
	if !name.Set || name.Bad || name.Val != "web" || name.Range.Start.Line != 1 {
		t.Errorf("name = %+v, want web set at line 1", name)
	}
	ports := Get[[]int](r, "ports", "a list of port numbers")
	if !ports.Bad || ports.Set || ports.Range.Start.Line != 2 {
		t.Errorf("ports = %+v, want bad at line 2", ports)
	}
	missing := Get[string](r, "missing", "a string")
	if missing.Set || missing.Bad || missing.Range != blk {
		t.Errorf("missing = %+v, want unset with the block's range", missing)
	}
	missing.OrDefault("dflt")
	if missing.Val != "dflt" {
		t.Errorf("OrDefault gave %q", missing.Val)
	}

	timeout := Get[string](r, "timeout", "a duration")
	if got := d.Duration(timeout, "timeout", time.Second); got != 0 {
		t.Errorf("Duration = %v, want 0 for a bad duration", got)
	}
	d.Enum(Get[string](r, "mode", "a string"), "mode", []string{"quiet", "normal"})
	r.Close() // every attribute was asked for: nothing to add

	expectDiags(t, d.Diags, []wantDiag{
		{2, "ports must be a list of port numbers."},
		{3, `timeout: "soon" is not a duration`},
		{4, `mode "loud" is not one of "quiet", "normal"`},
	})
}

// wantDiag is an expected diagnostic: its line and a part of its detail.
type wantDiag struct {
	line int
	text string
}

// expectDiags fails t unless diags are want, in order. (hcltest.ExpectDiags
// does this for the decoders' tests; it imports this package.)
func expectDiags(t *testing.T, diags hcl.Diagnostics, want []wantDiag) {
	t.Helper()
	if len(diags) != len(want) {
		t.Fatalf("diagnostics: %v, want %d", diags, len(want))
	}
	for i, w := range want {
		got := diags[i]
		if got.Subject == nil || got.Subject.Start.Line != w.line || !strings.Contains(got.Detail, w.text) {
			t.Errorf("diagnostic %d = %q at %v, want %q at line %d", i, got.Detail, got.Subject, w.text, w.line)
		}
	}
}

// TestReaderStrict: the attributes and blocks a decoder asks for are its
// block's schema; Close reports the rest at their lines as gohcl would, with
// a suggestion for a near miss, and nested blocks come back in file order.
func TestReaderStrict(t *testing.T) {
	d, r, _ := decode(t, `name = "web"
mdoe = "loud"
etcd {
  prefix = "/a"
}
etcd {}
etc {}
`, nil)
	if name := Get[string](r, "name", "a string"); name.Val != "web" {
		t.Errorf("name = %+v, want web", name)
	}
	Get[string](r, "mode", "a string")
	if e := r.Expr("missing"); e != nil {
		t.Errorf("Expr(missing) = %v, want nil", e)
	}
	blocks := r.Blocks("etcd")
	if len(blocks) != 2 || blocks[0].DefRange.Start.Line != 3 || blocks[1].DefRange.Start.Line != 6 {
		t.Fatalf("Blocks(etcd) = %+v, want the blocks at lines 3 and 6", blocks)
	}
	inner := d.Read(blocks[0].Body, blocks[0].DefRange)
	if p := Get[string](inner, "prefix", "a string"); p.Val != "/a" || p.Range.Start.Line != 4 {
		t.Errorf("prefix = %+v, want /a at line 4", p)
	}
	inner.Close()
	if len(d.Diags) != 0 {
		t.Fatalf("diagnostics before Close: %v", d.Diags)
	}
	r.Close()
	expectDiags(t, d.Diags, []wantDiag{
		{2, `Did you mean "mode"?`},
		{7, `Blocks of type "etc" are not expected here. Did you mean "etcd"?`},
	})
}

func TestDurationMinimum(t *testing.T) {
	d := NewDecoder(NewEvalContext(func(string) string { return "" }))
	s := Setting[string]{Val: "500ms", Set: true, Range: hcl.Range{Filename: "t.hcl"}}
	if got := d.Duration(s, "health_timeout", time.Second); got != 500*time.Millisecond {
		t.Errorf("Duration = %v", got)
	}
	if len(d.Diags) != 1 || !strings.Contains(d.Diags[0].Detail, `shorter than "1s"`) {
		t.Errorf("diagnostics = %v, want one about the minimum", d.Diags)
	}
}

func TestProblems(t *testing.T) {
	blk := hcl.Range{Filename: "t.hcl", Start: hcl.Pos{Line: 1}}
	ports := hcl.Range{Filename: "t.hcl", Start: hcl.Pos{Line: 5}}
	probs := []Problem{
		{Attr: "ports", Summary: "Invalid port", Detail: "port 0 is not a number from 1 to 65535."},
		{Attr: "volumes", Summary: "Refused volume", Detail: "binding / is refused."},
	}
	diags := Problems(probs, map[string]hcl.Range{"ports": ports}, blk)
	if len(diags) != 2 || diags[0].Subject.Start.Line != 5 || diags[1].Subject.Start.Line != 1 {
		t.Errorf("diagnostics at %v and %v, want lines 5 and 1 (the block for an attribute without a range)", diags[0].Subject, diags[1].Subject)
	}
	if err := Err(nil); err != nil {
		t.Errorf("Err(nil) = %v", err)
	}
	if err := Err(probs); err == nil || err.Error() != "port 0 is not a number from 1 to 65535\nbinding / is refused" {
		t.Errorf("Err = %q", err)
	}
}

func TestValidPort(t *testing.T) {
	for n, want := range map[int]bool{0: false, 1: true, 65535: true, 65536: false, -1: false} {
		if ValidPort(n) != want {
			t.Errorf("ValidPort(%d) = %v", n, !want)
		}
	}
}
