package hclsettings

import (
	"reflect"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Recorder collects the attributes every decoder evaluates: which block they
// belong to, their name, their Go type and what they must be in words. It is
// how `dewy-agent schema` learns the file's schema from the decoders
// themselves, so the JSON Schema can never drift from what the agent reads.
type Recorder struct {
	Attrs []Attr
}

// Attr is one attribute a decoder evaluated.
type Attr struct {
	// Block is the header range of the block the attribute belongs to.
	Block hcl.Range
	Name  string
	// Want says in words what the value must be ("a duration string such as
	// \"30s\"").
	Want string
	Type reflect.Type
}

const recorderVar = "__dewy_schema_recorder"

var recorderType = cty.Capsule("hclsettings.Recorder", reflect.TypeFor[Recorder]())

// Recording returns ctx with r attached: every Eval in a decoder built on the
// returned context records its attribute in r.
func Recording(ctx *hcl.EvalContext, r *Recorder) *hcl.EvalContext {
	child := ctx.NewChild()
	child.Variables = map[string]cty.Value{recorderVar: cty.CapsuleVal(recorderType, r)}
	return child
}

// recorderOf returns the Recorder attached to ctx, or nil.
func recorderOf(ctx *hcl.EvalContext) *Recorder {
	for c := ctx; c != nil; c = c.Parent() {
		if v, ok := c.Variables[recorderVar]; ok {
			return v.EncapsulatedValue().(*Recorder)
		}
	}
	return nil
}

func record[T any](d *Decoder, name, want string, block hcl.Range) {
	if d.Ctx == nil {
		return
	}
	if r := recorderOf(d.Ctx); r != nil {
		r.Attrs = append(r.Attrs, Attr{Block: block, Name: name, Want: want, Type: reflect.TypeFor[T]()})
	}
}
