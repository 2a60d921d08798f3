package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// posMap maps positions in the JSON text written for a YAML file back to the
// YAML file. JSON offsets inside a token map by their distance from the
// token's text; offsets between tokens (commas, closing brackets) map to the
// end of the token before them.
type posMap struct {
	filename string
	src      []byte    // the YAML file
	lines    []int     // where each of its lines starts
	segs     []segment // in JSON order
}

// pos maps one JSON position.
func (m *posMap) pos(p hcl.Pos) hcl.Pos {
	j := p.Byte
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].j > j }) - 1
	y := 0
	if i >= 0 {
		s := m.segs[i]
		switch {
		case j == s.j:
			y = s.y
		case j < s.jEnd:
			y = min(max(s.yText+(j-s.jText), s.y), s.yEnd)
		default:
			y = s.yEnd
		}
	}
	return posAt(m.src, m.lines, y)
}

// yamlWords rewrites hcl/json's messages in the words of YAML, since the
// user wrote no JSON; "Unsupported argument" is what the native syntax says.
var yamlWords = strings.NewReplacer(
	"Extraneous JSON object property", "Unsupported argument",
	"Incorrect JSON value type", "Incorrect value type",
	"JSON array of objects", "list of mappings",
	"a JSON object", "a mapping",
	"A JSON object", "A mapping",
	"a JSON array", "a list",
	"JSON array", "list",
	"JSON object", "mapping",
	"object property", "key",
)

// rng maps a range; ranges of other files are left alone.
func (m *posMap) rng(r hcl.Range) hcl.Range {
	if r.Filename != m.filename {
		return r
	}
	r.Start, r.End = m.pos(r.Start), m.pos(r.End)
	return r
}

func (m *posMap) rngPtr(r *hcl.Range) *hcl.Range {
	if r == nil {
		return nil
	}
	out := m.rng(*r)
	return &out
}

// diags maps every diagnostic's ranges (copies; the originals are untouched).
func (m *posMap) diags(diags hcl.Diagnostics) hcl.Diagnostics {
	if len(diags) == 0 {
		return diags
	}
	out := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		c.Summary, c.Detail = yamlWords.Replace(d.Summary), yamlWords.Replace(d.Detail)
		c.Subject = m.rngPtr(d.Subject)
		c.Context = m.rngPtr(d.Context)
		if d.Expression != nil {
			c.Expression = m.expr(d.Expression)
		}
		out[i] = &c
	}
	return out
}

// traversal maps the source ranges of a traversal's steps.
func (m *posMap) traversal(t hcl.Traversal) hcl.Traversal {
	out := make(hcl.Traversal, len(t))
	for i, step := range t {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			s.SrcRange = m.rng(s.SrcRange)
			out[i] = s
		case hcl.TraverseAttr:
			s.SrcRange = m.rng(s.SrcRange)
			out[i] = s
		case hcl.TraverseIndex:
			s.SrcRange = m.rng(s.SrcRange)
			out[i] = s
		case hcl.TraverseSplat:
			s.SrcRange = m.rng(s.SrcRange)
			out[i] = s
		default:
			out[i] = step
		}
	}
	return out
}

func (m *posMap) expr(e hcl.Expression) hcl.Expression {
	if e == nil {
		return nil
	}
	if r, ok := e.(remapExpr); ok && r.m == m {
		return e
	}
	return remapExpr{expr: e, m: m}
}

func (m *posMap) content(c *hcl.BodyContent) *hcl.BodyContent {
	if c == nil {
		return nil
	}
	out := &hcl.BodyContent{
		Attributes:       m.attributes(c.Attributes),
		MissingItemRange: m.rng(c.MissingItemRange),
	}
	for _, b := range c.Blocks {
		out.Blocks = append(out.Blocks, &hcl.Block{
			Type:        b.Type,
			Labels:      b.Labels,
			Body:        remapBody{body: b.Body, m: m},
			DefRange:    m.rng(b.DefRange),
			TypeRange:   m.rng(b.TypeRange),
			LabelRanges: each(b.LabelRanges, m.rng),
		})
	}
	return out
}

func (m *posMap) attributes(attrs hcl.Attributes) hcl.Attributes {
	if attrs == nil {
		return nil
	}
	out := make(hcl.Attributes, len(attrs))
	for name, a := range attrs {
		out[name] = &hcl.Attribute{
			Name:      a.Name,
			Expr:      m.expr(a.Expr),
			Range:     m.rng(a.Range),
			NameRange: m.rng(a.NameRange),
		}
	}
	return out
}

// remapBody is a body parsed from the JSON written for a YAML file; it hands
// out blocks, attributes, expressions and diagnostics with YAML positions.
type remapBody struct {
	body hcl.Body
	m    *posMap
}

// Content implements hcl.Body.
func (b remapBody) Content(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	c, diags := b.body.Content(schema)
	return b.m.content(c), append(b.m.diags(diags), b.nullBlocks(schema)...)
}

// PartialContent implements hcl.Body.
func (b remapBody) PartialContent(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	c, rest, diags := b.body.PartialContent(schema)
	if rest != nil {
		rest = remapBody{body: rest, m: b.m}
	}
	return b.m.content(c), rest, append(b.m.diags(diags), b.nullBlocks(schema)...)
}

// nullBlocks reports labelled blocks written as a key with nothing after it
// (runner: {assets: }). That is null in YAML, and hcl/json reads a null
// block as no block at all, so without this the block would vanish or be
// reported missing with no word about why.
func (b remapBody) nullBlocks(schema *hcl.BodySchema) hcl.Diagnostics {
	var diags hcl.Diagnostics
	attrs, _ := b.body.JustAttributes() // every key, blocks included
	for _, bs := range schema.Blocks {
		if a, ok := attrs[bs.Type]; ok && len(bs.LabelNames) > 0 {
			diags = append(diags, b.nullLabels(bs.Type, a.Expr, len(bs.LabelNames))...)
		}
	}
	return diags
}

// nullLabels walks depth levels of labels under expr (objects, or lists of
// objects) and reports each block whose value is null.
func (b remapBody) nullLabels(path string, expr hcl.Expression, depth int) hcl.Diagnostics {
	if items, diags := hcl.ExprList(expr); !diags.HasErrors() {
		var out hcl.Diagnostics
		for _, item := range items {
			out = append(out, b.nullLabels(path, item, depth)...)
		}
		return out
	}
	pairs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		return nil // not a block's shape; hcl/json reports that
	}
	var out hcl.Diagnostics
	for _, p := range pairs {
		k, kd := p.Key.Value(nil)
		if kd.HasErrors() || !k.Type().Equals(cty.String) || k.IsNull() {
			continue
		}
		label := path + " " + strconv.Quote(k.AsString())
		if depth > 1 {
			out = append(out, b.nullLabels(label, p.Value, depth-1)...)
			continue
		}
		if v, vd := p.Value.Value(nil); vd.HasErrors() || !v.IsNull() {
			continue
		}
		rng := b.m.rng(p.Key.Range())
		out = append(out, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Empty YAML block",
			Detail: fmt.Sprintf("%s has nothing after its key, which YAML reads as null and the config as no block at all; write %s: {} for a block with no settings, or give it its settings.",
				label, k.AsString()),
			Subject: &rng,
		})
	}
	return out
}

// JustAttributes implements hcl.Body.
func (b remapBody) JustAttributes() (hcl.Attributes, hcl.Diagnostics) {
	attrs, diags := b.body.JustAttributes()
	return b.m.attributes(attrs), b.m.diags(diags)
}

// MissingItemRange implements hcl.Body.
func (b remapBody) MissingItemRange() hcl.Range {
	return b.m.rng(b.body.MissingItemRange())
}

// remapExpr is an expression of a YAML file's JSON; its ranges, diagnostics
// and the parts hcl's static analysis asks for (ExprList, ExprMap, ExprCall,
// AsTraversal) carry YAML positions.
type remapExpr struct {
	expr hcl.Expression
	m    *posMap
}

// Value implements hcl.Expression.
func (e remapExpr) Value(ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	v, diags := e.expr.Value(ctx)
	return v, e.m.diags(diags)
}

// Variables implements hcl.Expression.
func (e remapExpr) Variables() []hcl.Traversal {
	return each(e.expr.Variables(), e.m.traversal)
}

// Range implements hcl.Expression.
func (e remapExpr) Range() hcl.Range { return e.m.rng(e.expr.Range()) }

// StartRange implements hcl.Expression.
func (e remapExpr) StartRange() hcl.Range { return e.m.rng(e.expr.StartRange()) }

// UnwrapExpression lets hcl reach the JSON expression underneath.
func (e remapExpr) UnwrapExpression() hcl.Expression { return e.expr }

// ExprList is hcl.ExprList with YAML positions.
func (e remapExpr) ExprList() []hcl.Expression {
	list, diags := hcl.ExprList(e.expr)
	if diags.HasErrors() {
		return nil
	}
	return each(list, e.m.expr)
}

// ExprMap is hcl.ExprMap with YAML positions.
func (e remapExpr) ExprMap() []hcl.KeyValuePair {
	pairs, diags := hcl.ExprMap(e.expr)
	if diags.HasErrors() {
		return nil
	}
	return each(pairs, func(p hcl.KeyValuePair) hcl.KeyValuePair {
		return hcl.KeyValuePair{Key: e.m.expr(p.Key), Value: e.m.expr(p.Value)}
	})
}

// ExprCall is hcl.ExprCall with YAML positions.
func (e remapExpr) ExprCall() *hcl.StaticCall {
	call, diags := hcl.ExprCall(e.expr)
	if diags.HasErrors() || call == nil {
		return nil
	}
	return &hcl.StaticCall{
		Name:      call.Name,
		NameRange: e.m.rng(call.NameRange),
		ArgsRange: e.m.rng(call.ArgsRange),
		Arguments: each(call.Arguments, e.m.expr),
	}
}

// each is xs with f applied to every item.
func each[T any](xs []T, f func(T) T) []T {
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// AsTraversal is hcl.AbsTraversalForExpr with YAML positions.
func (e remapExpr) AsTraversal() hcl.Traversal {
	t, diags := hcl.AbsTraversalForExpr(e.expr)
	if diags.HasErrors() {
		return nil
	}
	return e.m.traversal(t)
}

// Interface guards.
var (
	_ hcl.Body       = remapBody{}
	_ hcl.Expression = remapExpr{}
)
