// Package hclsettings holds the small helpers every settings decoder shares:
// config for the file, agent and app level, and each runner and source package
// for its own block or URL. It evaluates an attribute into a typed value that
// remembers its source range and whether it was written, provides env(), the
// only function a config file may call, and builds diagnostics.
//
// It is a leaf: it imports no other dewy-agent package, so runners and
// sources can use it without importing config.
package hclsettings

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Block is one block handed to the package that owns it: its body, not yet
// decoded, the range of its header for "missing attribute" messages, and the
// context its expressions are evaluated in. The tags let a gohcl schema
// struct hold nested blocks that are read with a Reader (Ctx is then nil:
// the Reader's Decoder has it):
//
//	Agents []hclsettings.Block `hcl:"agent,block"`
type Block struct {
	Body     hcl.Body  `hcl:",remain"`
	DefRange hcl.Range `hcl:",def_range"`
	Ctx      *hcl.EvalContext
}

// NewEvalContext is the only context expressions see: the env function and no
// variables, so a reference to a variable or another function is an error.
// Every value env() returns is marked (EnvMark), so messages never show it.
func NewEvalContext(getenv func(string) string) *hcl.EvalContext {
	ctx, _ := NewEvalContextSecrets(getenv)
	return ctx
}

// NewEvalContextSecrets is NewEvalContext that also returns the Secrets every
// env() call in the context remembers its value in, to scrub text built from
// decoded values (Secrets.Scrub) before it is shown.
func NewEvalContextSecrets(getenv func(string) string) (*hcl.EvalContext, *Secrets) {
	secrets := &Secrets{}
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env": envFunction(getenv, secrets),
		},
	}, secrets
}

// envFunction is env("NAME"): the agent's environment variable NAME, or "" when
// it is not set. The result is marked as a secret and remembered in secrets.
func envFunction(getenv func(string) string, secrets *Secrets) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable of the agent, or an empty string when it is not set.",
		Params: []function.Parameter{{
			Name: "name",
			Type: cty.String,
		}},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			v := getenv(name)
			secrets.add(name, v)
			return cty.StringVal(v).Mark(EnvMark{Name: name}), nil
		},
	})
}

// Setting is one attribute after evaluation.
type Setting[T any] struct {
	Val T
	// Set: the file gives the attribute a non-null value.
	Set bool
	// Bad: the expression could not be evaluated or converted; that is
	// already reported, and validation skips the setting.
	Bad bool
	// Range is the expression's range, or the enclosing block's when the
	// attribute is not written.
	Range hcl.Range
	// Sensitive: the value came (wholly or in part) from env() and is a
	// secret; messages name EnvNames instead of showing it (see Show).
	Sensitive bool
	EnvNames  []string
}

// OrDefault gives an unset setting its default value.
func (s *Setting[T]) OrDefault(v T) {
	if !s.Set {
		s.Val = v
	}
}

// Decoder evaluates expressions and collects diagnostics; it never stops at
// the first problem.
type Decoder struct {
	Ctx   *hcl.EvalContext
	Diags hcl.Diagnostics
}

// NewDecoder returns a Decoder that evaluates in ctx.
func NewDecoder(ctx *hcl.EvalContext) *Decoder { return &Decoder{Ctx: ctx} }

// Fail records an error at rng.
func (d *Decoder) Fail(rng hcl.Range, summary, detail string, args ...any) {
	d.Diags = append(d.Diags, Error(rng, summary, fmt.Sprintf(detail, args...)))
}

// Error is an error diagnostic at rng.
func Error(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}
}

// Eval evaluates expr, the attribute name of the block at block, into a T.
// want says in words what T is, for the message when the value does not fit.
// A missing attribute and an explicit null are both "not set".
func Eval[T any](d *Decoder, expr hcl.Expression, name, want string, block hcl.Range) Setting[T] {
	record[T](d, name, want, block)
	s := Setting[T]{Range: block}
	if expr == nil {
		return s
	}
	val, diags := expr.Value(d.Ctx)
	d.Diags = append(d.Diags, diags...)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		s.Bad = true
		s.Range = expr.Range()
		return s
	}
	val, marks := val.UnmarkDeep()
	if names := envNames(marks); len(names) > 0 {
		s.Sensitive, s.EnvNames = true, names
	}
	if val.IsNull() {
		// Not written (gohcl's stand-in is a null), or written as null.
		return s
	}
	s.Range = expr.Range()
	ty, err := gocty.ImpliedType(&s.Val)
	if err != nil {
		panic(fmt.Sprintf("hclsettings: no cty type for %T: %v", s.Val, err)) // a bug in the caller
	}
	conv, err := convert.Convert(val, ty)
	if err == nil {
		err = gocty.FromCtyValue(conv, &s.Val)
	}
	if err != nil {
		s.Bad = true
		d.Fail(s.Range, "Invalid "+name, "%s must be %s.", name, want)
		return s
	}
	s.Set = true
	return s
}

// Written reports whether expr is present and not null, without reporting
// anything: for settings that are refused whatever their value.
func (d *Decoder) Written(expr hcl.Expression) bool {
	if expr == nil {
		return false
	}
	v, _ := expr.Value(d.Ctx)
	v, _ = v.UnmarkDeep()
	return !v.IsNull()
}

// Duration parses a duration setting that must be at least min. A bad or
// unparsable setting gives 0 (and, when unparsable, a diagnostic).
func (d *Decoder) Duration(s Setting[string], name string, min time.Duration) time.Duration {
	if s.Bad {
		return 0
	}
	v, err := time.ParseDuration(s.Val)
	if err != nil {
		d.Fail(s.Range, "Invalid "+name, `%s: %s is not a duration; use e.g. "30s", "5m".`, name, s.Show())
		return 0
	}
	if v < min {
		d.Fail(s.Range, "Invalid "+name, `%s: %s is shorter than %q.`, name, s.Show(), min)
	}
	return v
}

// Enum reports a setting whose value is not one of allowed.
func (d *Decoder) Enum(s Setting[string], name string, allowed []string) {
	if s.Bad {
		return
	}
	for _, a := range allowed {
		if a == s.Val {
			return
		}
	}
	d.Fail(s.Range, "Invalid "+name, "%s %s is not one of %s; use one of them.", name, s.Show(), QuoteList(allowed))
}

// ValidPort reports whether n is a port a config file may name: 1 to 65535.
// Port 0 ("any free port") is for programs that embed a runner, not for files.
func ValidPort(n int) bool { return n >= 1 && n <= 65535 }

// Problem is one thing wrong with a settings value, found by a check that
// works on the decoded value (so a program building the value directly gets
// the same rules as a file). Attr names the attribute it belongs to, which
// gives the diagnostic its range; Summary and Detail are its text.
type Problem struct {
	Attr, Summary, Detail string
}

// Problems turns problems into diagnostics at the ranges of their attributes
// (ranges maps attribute names to ranges; a missing name falls back to block).
func Problems(probs []Problem, ranges map[string]hcl.Range, block hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range probs {
		rng, ok := ranges[p.Attr]
		if !ok {
			rng = block
		}
		diags = append(diags, Error(rng, p.Summary, p.Detail))
	}
	return diags
}

// Err joins problems into one error, one line each, for programs that build
// a value directly; nil when there are none.
func Err(probs []Problem) error {
	if len(probs) == 0 {
		return nil
	}
	errs := make([]error, len(probs))
	for i, p := range probs {
		errs[i] = errors.New(strings.TrimSuffix(p.Detail, "."))
	}
	return errors.Join(errs...)
}

// QuoteList renders ["a", "b"] as `"a", "b"`.
func QuoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// JoinList renders ["a", "b"] as "a, b".
func JoinList(items []string) string { return strings.Join(items, ", ") }

// PortList is a list whose items are port numbers or "first-last" ranges,
// written as numbers or strings (numbers convert to strings). The schema
// describes it as an array of integers and strings.
type PortList []string
