package hclsettings

import (
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// Reader reads one block's attributes and nested blocks by name, so a
// decoder names each attribute once, where it evaluates it, instead of in a
// schema struct as well. Close reports whatever the block holds that no call
// asked for, exactly as gohcl does for a struct naming the same attributes
// and blocks ("Unsupported argument", with a "Did you mean" suggestion).
type Reader struct {
	// Decoder is the one the attributes are evaluated with and problems
	// reported to.
	*Decoder
	body   hcl.Body
	schema hcl.BodySchema
	// Range is the block's header range: where a missing attribute is
	// reported.
	Range hcl.Range
}

// Read starts reading body, the body of the block whose header is at
// defRange. Call Close once every attribute and block has been asked for;
// ask for each one whatever the others hold, or a file that writes it gets
// "Unsupported argument".
func (d *Decoder) Read(body hcl.Body, defRange hcl.Range) *Reader {
	return &Reader{Decoder: d, body: body, Range: defRange}
}

// Expr returns the expression of attribute name, or nil when the block does
// not have it, and makes name part of the block's schema. Eval takes nil for
// an attribute that is not written.
func (r *Reader) Expr(name string) hcl.Expression {
	if !slices.ContainsFunc(r.schema.Attributes, func(a hcl.AttributeSchema) bool { return a.Name == name }) {
		r.schema.Attributes = append(r.schema.Attributes, hcl.AttributeSchema{Name: name})
	}
	// Problems with the body are reported once, by Close.
	content, _, _ := r.body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: name}}})
	if a, ok := content.Attributes[name]; ok {
		return a.Expr
	}
	return nil
}

// Get evaluates attribute name of r's block into a T (see Eval).
func Get[T any](r *Reader, name, want string) Setting[T] {
	return Eval[T](r.Decoder, r.Expr(name), name, want, r.Range)
}

// Blocks returns the nested blocks of type typ (blocks without labels), in
// the order the file gives them, and makes typ part of the block's schema.
func (r *Reader) Blocks(typ string) []Block {
	if !slices.ContainsFunc(r.schema.Blocks, func(b hcl.BlockHeaderSchema) bool { return b.Type == typ }) {
		r.schema.Blocks = append(r.schema.Blocks, hcl.BlockHeaderSchema{Type: typ})
	}
	content, _, _ := r.body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: typ}}})
	var blocks []Block
	for _, b := range content.Blocks {
		blocks = append(blocks, Block{Body: b.Body, DefRange: b.DefRange, Ctx: r.Ctx})
	}
	return blocks
}

// Close reports every attribute and block of the body that was not asked
// for, and every problem the body's syntax has with the ones that were.
func (r *Reader) Close() {
	_, diags := r.body.Content(&r.schema)
	r.Diags = append(r.Diags, diags...)
}
