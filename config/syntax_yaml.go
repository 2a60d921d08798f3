package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apparentlymart/go-textseg/v15/textseg"
	"github.com/hashicorp/hcl/v2"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// maxYAMLNodes bounds the values a YAML file may expand to through aliases, so
// a file of nested aliases cannot make the agent build a huge document.
const maxYAMLNodes = 100_000

// parseYAML parses src, a YAML config file, by writing it as HCL's JSON syntax
// and parsing that with hcl/json. The returned file's Bytes are src and its
// body reports every range as a position in src.
func parseYAML(filename string, src []byte) (f *hcl.File, diags hcl.Diagnostics) {
	// A config file must never take the agent down: a panic in the YAML
	// library or in the conversion (a bug) is reported like a bad file.
	defer func() {
		if p := recover(); p != nil {
			f, diags = nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Cannot read YAML",
				Detail:   fmt.Sprintf("reading %s failed unexpectedly (%v); this is a bug in dewy-agent: please report it with the file, and use the HCL or JSON syntax meanwhile.", filepath.Base(filename), p),
				Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
			}}
		}
	}()
	text, m, diags := yamlToJSON(filename, src)
	if diags.HasErrors() {
		return nil, diags
	}
	jf, jdiags := hcljson.Parse(text, filename)
	diags = append(diags, m.diags(jdiags)...)
	if jf == nil || jdiags.HasErrors() {
		return nil, diags
	}
	return &hcl.File{Body: remapBody{body: jf.Body, m: m}, Bytes: src}, diags
}

// yamlToJSON returns the HCL JSON text that the YAML document src stands for,
// and the map from its positions back to src.
func yamlToJSON(filename string, src []byte) ([]byte, *posMap, hcl.Diagnostics) {
	c := newYAMLConverter(filename, src)
	text, diags := c.convert()
	return text, &posMap{filename: filename, src: src, lines: c.lines, segs: c.segs}, diags
}

// segment ties one token of the generated JSON, bytes [j, jEnd), to the YAML
// bytes [y, yEnd) it came from. Offsets inside the token map by distance from
// jText (where the JSON token's text starts, after an opening quote) to yText.
type segment struct {
	j, jText, jEnd int
	y, yText, yEnd int
}

// yrange is a span of the YAML source: bytes [start, end), and text where the
// value's characters begin (after an opening quote).
type yrange struct {
	start, text, end int
}

// yamlConverter writes a YAML node tree as JSON text. Every key and scalar is
// written on the YAML token's line (on its column too when the text before it
// leaves room), so even an unmapped JSON position has the right line; the
// segments give the exact YAML position of every token.
type yamlConverter struct {
	filename string
	src      []byte
	lines    []int // byte offset where each line starts

	out       bytes.Buffer
	line, col int // position of the next byte written to out (1-based)
	segs      []segment
	diags     hcl.Diagnostics

	lastEnd   int          // YAML end of the last token written
	nodes     int          // values written, bounded by maxYAMLNodes
	tooBig    bool         // maxYAMLNodes was passed (reported once)
	expanding []*yaml.Node // anchors whose alias is being expanded, to refuse cycles
}

func newYAMLConverter(filename string, src []byte) *yamlConverter {
	lines := []int{0}
	for i, b := range src {
		if b == '\n' {
			lines = append(lines, i+1)
		}
	}
	return &yamlConverter{filename: filename, src: src, lines: lines, line: 1, col: 1}
}

// yamlErrLine finds the line number in yaml.v3's error messages.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// convert parses the one YAML document in src and writes it as JSON.
func (c *yamlConverter) convert() ([]byte, hcl.Diagnostics) {
	dec := yaml.NewDecoder(bytes.NewReader(c.src))
	var doc yaml.Node
	err := dec.Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		// No document at all (empty, or only comments): an empty config.
		return []byte("{}"), nil
	case err != nil:
		c.yamlError(err)
		return nil, c.diags
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		c.fail(c.nodeRange(&next), "More than one YAML document",
			"%s holds more than one YAML document (another starts at line %d); a config file is one document, so remove the extra \"---\" and what follows it or merge them.",
			filepath.Base(c.filename), next.Line)
		return nil, c.diags
	case !errors.Is(err, io.EOF):
		c.yamlError(err)
		return nil, c.diags
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return []byte("{}"), nil // "---" alone, or "~"
	}
	if root.Kind != yaml.MappingNode {
		c.fail(c.nodeRange(root), "Config is not a YAML mapping",
			"the top of a YAML config file is a mapping of agent and app keys (agent:, app:), not a %s.", kindName(root))
		return nil, c.diags
	}
	c.value(root, nil, nil)
	if c.diags.HasErrors() {
		return nil, c.diags
	}
	c.out.WriteByte('\n')
	return c.out.Bytes(), c.diags
}

// yamlError reports a YAML syntax error at the line yaml.v3 names.
func (c *yamlConverter) yamlError(err error) {
	msg := err.Error()
	line := 1
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	line = min(max(line, 1), len(c.lines))
	start := c.lines[line-1]
	end := len(c.src)
	if line < len(c.lines) {
		end = c.lines[line] - 1
	}
	rng := c.hclRange(yrange{start: start, text: start, end: end})
	c.fail(rng, "Invalid YAML", "%s; check the indentation and quoting on this line or the one before it.", msg)
}

// fail records an error at rng.
func (c *yamlConverter) fail(rng hcl.Range, summary, detail string, args ...any) {
	c.diags = append(c.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  &rng,
	})
}

// value writes node n. owner is the key whose value n is (nil at the top or in
// a list); via, when set, is the alias that n is expanded from: every token of
// the expansion is placed at the alias.
func (c *yamlConverter) value(n *yaml.Node, owner, via *yrange) {
	if !c.grow(1, c.rangeOr(via, n)) {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		c.alias(n, owner, via)
	case yaml.MappingNode:
		c.mapping(n, owner, via)
	case yaml.SequenceNode:
		c.sequence(n, owner, via)
	case yaml.ScalarNode:
		c.scalar(n, via)
	default:
		c.fail(c.hclRange(c.rangeOr(via, n)), "Unsupported YAML value", "this YAML value (%s) cannot be read; use a string, number, true/false, null, a list or a mapping.", kindName(n))
		c.raw("null", c.rangeOr(via, n))
	}
}

// grow counts n more values and reports false (once with an error, at r)
// when the document has become too large.
func (c *yamlConverter) grow(n int, r yrange) bool {
	if c.tooBig {
		return false
	}
	c.nodes += n
	if c.nodes > maxYAMLNodes {
		c.tooBig = true
		c.fail(c.hclRange(r), "YAML too large",
			"the file expands to more than %d values through its aliases; write the repeated parts out or use fewer nested aliases.", maxYAMLNodes)
		return false
	}
	return true
}

// alias writes the node an alias refers to, with every position at the alias.
func (c *yamlConverter) alias(n *yaml.Node, owner, via *yrange) {
	r := c.rangeOr(via, n)
	if n.Alias == nil || c.isExpanding(n.Alias) {
		c.fail(c.hclRange(r), "Recursive YAML alias",
			"the alias *%s is used inside the value of its own anchor &%s, which would never end; refer to the anchor only from outside it.", n.Value, n.Value)
		c.raw("null", r)
		return
	}
	c.expanding = append(c.expanding, n.Alias)
	c.value(n.Alias, owner, &r)
	c.expanding = c.expanding[:len(c.expanding)-1]
}

func (c *yamlConverter) isExpanding(n *yaml.Node) bool {
	for _, e := range c.expanding {
		if e == n {
			return true
		}
	}
	return false
}

// yamlPair is one key and value of a mapping after merge keys are resolved.
type yamlPair struct {
	name     string
	key, val *yaml.Node
	via      *yrange // set for a pair merged in through an alias
}

// mapping writes a mapping as a JSON object.
func (c *yamlConverter) mapping(n *yaml.Node, owner, via *yrange) {
	if t := n.ShortTag(); t != "!!map" {
		c.badTag(n, via, t)
	}
	open := c.openRange(n, owner, via)
	c.punct('{', &open, n.Style&yaml.FlowStyle != 0 && via == nil)
	for i, p := range c.pairs(n, via) {
		if i > 0 {
			c.punct(',', nil, false)
		}
		kr := c.rangeOr(p.via, p.key)
		c.token(jsonString(p.name), kr, true)
		c.punct(':', nil, false)
		c.value(p.val, &kr, p.via)
	}
	c.closeBracket('}', n, via)
}

// pairs lists the mapping's keys and values in order, with the pairs of any
// merge key (<<: *defaults) in its place, except keys the mapping sets itself.
// Keys must be strings and unique.
func (c *yamlConverter) pairs(n *yaml.Node, via *yrange) []yamlPair {
	if !c.grow(len(n.Content)/2, c.rangeOr(via, n)) {
		return nil
	}
	names := make([]string, len(n.Content)/2)
	usable := make([]bool, len(names))
	explicit := map[string]*yaml.Node{}
	for i := range names {
		k := n.Content[2*i]
		if isMergeKey(k) {
			continue
		}
		name, ok := c.keyName(k, via)
		if !ok {
			continue
		}
		if first, dup := explicit[name]; dup {
			c.fail(c.hclRange(c.rangeOr(via, k)), "Duplicate YAML key",
				"the key %q is already set at line %d of this mapping; a YAML mapping has each key once, so remove one of them.", name, first.Line)
			continue
		}
		explicit[name] = k
		names[i], usable[i] = name, true
	}

	var out []yamlPair
	seen := map[string]bool{}
	for i := range names {
		k, v := n.Content[2*i], n.Content[2*i+1]
		if isMergeKey(k) {
			for _, p := range c.merged(v, via) {
				if explicit[p.name] != nil || seen[p.name] {
					continue // the mapping's own key, or an earlier merge, wins
				}
				seen[p.name] = true
				out = append(out, p)
			}
			continue
		}
		if usable[i] {
			seen[names[i]] = true
			out = append(out, yamlPair{name: names[i], key: k, val: v, via: via})
		}
	}
	return out
}

// merged returns the pairs a merge key's value brings in: a mapping, an alias
// of one, or a list of those.
func (c *yamlConverter) merged(v *yaml.Node, via *yrange) []yamlPair {
	switch {
	case v.Kind == yaml.MappingNode:
		return c.pairs(v, via)
	case v.Kind == yaml.AliasNode && v.Alias != nil && v.Alias.Kind == yaml.MappingNode:
		r := c.rangeOr(via, v)
		if c.isExpanding(v.Alias) {
			c.fail(c.hclRange(r), "Recursive YAML alias",
				"the alias *%s is merged inside the value of its own anchor &%s, which would never end; refer to the anchor only from outside it.", v.Value, v.Value)
			return nil
		}
		c.expanding = append(c.expanding, v.Alias)
		defer func() { c.expanding = c.expanding[:len(c.expanding)-1] }()
		return c.pairs(v.Alias, &r)
	case v.Kind == yaml.SequenceNode && allMappings(v.Content):
		var out []yamlPair
		seen := map[string]bool{}
		for _, item := range v.Content {
			for _, p := range c.merged(item, via) {
				if !seen[p.name] { // an earlier mapping in the list wins
					seen[p.name] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	c.fail(c.hclRange(c.rangeOr(via, v)), "Invalid YAML merge key",
		"the merge key << takes a mapping, an alias of a mapping (<<: *defaults) or a list of them.")
	return nil
}

func allMappings(nodes []*yaml.Node) bool {
	for _, n := range nodes {
		if n.Kind != yaml.MappingNode && (n.Kind != yaml.AliasNode || n.Alias == nil || n.Alias.Kind != yaml.MappingNode) {
			return false
		}
	}
	return true
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// keyName returns a mapping key's text, reporting keys that are not strings.
func (c *yamlConverter) keyName(k *yaml.Node, via *yrange) (string, bool) {
	if k.Kind == yaml.ScalarNode {
		switch k.ShortTag() {
		case "!!str", "!!timestamp":
			return k.Value, true
		case "!!int", "!!float", "!!bool", "!!null":
			c.fail(c.hclRange(c.rangeOr(via, k)), "YAML key is not a string",
				"the key %s is a YAML %s, and keys are names; quote it (%q) if it is meant as a name.", k.Value, kindName(k), k.Value)
			return "", false
		}
	}
	c.fail(c.hclRange(c.rangeOr(via, k)), "YAML key is not a string",
		"this key is a %s; keys of a config file are plain names such as app: or registry:.", kindName(k))
	return "", false
}

// sequence writes a list as a JSON array.
func (c *yamlConverter) sequence(n *yaml.Node, owner, via *yrange) {
	if t := n.ShortTag(); t != "!!seq" {
		c.badTag(n, via, t)
	}
	open := c.openRange(n, owner, via)
	c.punct('[', &open, n.Style&yaml.FlowStyle != 0 && via == nil)
	for i, item := range n.Content {
		if i > 0 {
			c.punct(',', nil, false)
		}
		c.value(item, nil, via)
	}
	c.closeBracket(']', n, via)
}

// closeBracket writes the closing bracket of a collection. In flow style it
// maps to the bracket in the YAML text, the first b after the last token
// (past spaces, commas and comments); otherwise, like every other gap, to the
// end of the token before it.
func (c *yamlConverter) closeBracket(b byte, n *yaml.Node, via *yrange) {
	if via != nil || n.Style&yaml.FlowStyle == 0 {
		c.punct(b, nil, false)
		return
	}
	i := max(c.lastEnd, c.offset(n.Line, n.Column)+1)
	for i < len(c.src) && c.src[i] != b {
		switch c.src[i] {
		case ' ', '\t', '\n', '\r', ',':
			i++
		case '#':
			for i < len(c.src) && c.src[i] != '\n' {
				i++
			}
		default:
			c.punct(b, nil, false) // not found where expected: map it like a gap
			return
		}
	}
	if i >= len(c.src) {
		c.punct(b, nil, false)
		return
	}
	r := yrange{start: i, text: i, end: i + 1}
	c.punct(b, &r, true)
	c.lastEnd = max(c.lastEnd, r.end)
}

// jsonNumber is a number JSON (and so HCL) reads as written.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// scalar writes a string, number, boolean or null. Types are YAML 1.2's core
// schema as yaml.v3 resolves them: on, yes and off are strings; 0x1f, 0o17 and
// 1_000 are numbers; a date is kept as the string it is written as.
func (c *yamlConverter) scalar(n *yaml.Node, via *yrange) {
	r := c.rangeOr(via, n)
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp":
		c.token(jsonString(n.Value), r, true)
	case "!!null":
		c.token("null", r, false)
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			c.fail(c.hclRange(r), "Invalid YAML value", "%q is not true or false: %v.", n.Value, err)
			b = false
		}
		c.token(strconv.FormatBool(b), r, false)
	case "!!int", "!!float":
		if jsonNumber.MatchString(n.Value) {
			if _, err := cty.ParseNumberVal(n.Value); err == nil {
				c.token(n.Value, r, false) // exactly as written
				return
			}
		}
		var v any
		if err := n.Decode(&v); err != nil {
			c.fail(c.hclRange(r), "Invalid YAML number", "%q is not a number: %v.", n.Value, err)
			c.token("null", r, false)
			return
		}
		text := ""
		switch x := v.(type) {
		case int:
			text = strconv.Itoa(x)
		case int64:
			text = strconv.FormatInt(x, 10)
		case uint64:
			text = strconv.FormatUint(x, 10)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				c.fail(c.hclRange(r), "Invalid YAML number",
					"%s is not a finite number, which a config value cannot be; quote it (%q) for the text.", n.Value, n.Value)
				c.token("null", r, false)
				return
			}
			text = strconv.FormatFloat(x, 'g', -1, 64)
		default:
			text = jsonString(n.Value)
		}
		c.token(text, r, false)
	default:
		c.badTag(n, via, tag)
		c.token("null", r, false)
	}
}

// badTag reports a YAML tag the config has no use for.
func (c *yamlConverter) badTag(n *yaml.Node, via *yrange, tag string) {
	r := c.rangeOr(via, n)
	if via == nil {
		r.start = c.offset(n.Line, n.Column) // from the tag (or anchor) on
	}
	c.fail(c.hclRange(r), "Unsupported YAML tag",
		"the tag %s is not supported: a config file holds strings, numbers, true/false, null, lists and mappings; remove the tag.", tag)
}

// kindName names what a node is, for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return "number"
		case "!!float":
			return "number"
		case "!!bool":
			return "boolean"
		case "!!null":
			return "null"
		}
		return "string"
	}
	return "document"
}

// jsonString quotes s as a JSON string, leaving <, > and & as they are. A
// character that would join the byte after it into one grapheme cluster (a
// Unicode "prepend" character such as U+0600) is written as a \u escape:
// hcl/json's scanner reads strings by grapheme cluster and would otherwise
// take the closing quote or a backslash for part of that character.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(fmt.Sprintf("config: encode string: %v", err)) // a string always encodes
	}
	out := strings.TrimSuffix(b.String(), "\n")
	if isASCII(out) {
		return out
	}
	var esc strings.Builder
	for _, r := range out {
		if r >= utf8.RuneSelf && joinsNext(r) {
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&esc, "\\u%04x", u)
			}
			continue
		}
		esc.WriteRune(r)
	}
	return esc.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// joinsNext reports whether r and a following quote make one grapheme cluster.
func joinsNext(r rune) bool {
	buf := append(utf8.AppendRune(nil, r), '"')
	n, _, _ := textseg.ScanGraphemeClusters(buf, true)
	return n > utf8.RuneLen(r)
}

// openRange is where an object's or array's opening bracket points: the
// bracket itself in flow style ({...} or [...]), otherwise the key that owns
// the value, otherwise the value's first token.
func (c *yamlConverter) openRange(n *yaml.Node, owner, via *yrange) yrange {
	switch {
	case via != nil:
		return *via
	case n.Style&yaml.FlowStyle != 0:
		s := c.offset(n.Line, n.Column)
		return yrange{start: s, text: s, end: min(s+1, len(c.src))}
	case owner != nil:
		return *owner
	case len(n.Content) > 0 && n.Content[0].Kind == yaml.ScalarNode:
		return c.nodeYRange(n.Content[0])
	}
	s := c.offset(n.Line, n.Column)
	return yrange{start: s, text: s, end: s}
}

// rangeOr is via when set, or the node's own range.
func (c *yamlConverter) rangeOr(via *yrange, n *yaml.Node) yrange {
	if via != nil {
		return *via
	}
	return c.nodeYRange(n)
}

// nodeRange is the node's range as an hcl.Range.
func (c *yamlConverter) nodeRange(n *yaml.Node) hcl.Range {
	return c.hclRange(c.nodeYRange(n))
}

// nodeYRange finds the source text of a scalar or alias, or the first
// character of a collection. yaml.v3 gives a node's line and column (in
// characters); the end is found by reading the source.
func (c *yamlConverter) nodeYRange(n *yaml.Node) yrange {
	s := c.offset(n.Line, n.Column)
	src := c.src
	// Skip an anchor (&name) and a tag (!!str) in front of the value.
	for s < len(src) && (src[s] == '&' || src[s] == '!') {
		for s < len(src) && !isYAMLSpace(src[s]) {
			s++
		}
		for s < len(src) && isYAMLSpace(src[s]) {
			s++
		}
	}
	r := yrange{start: s, text: s, end: s}
	if s >= len(src) {
		return r
	}
	switch {
	case n.Kind == yaml.AliasNode:
		r.end = min(s+1+len(n.Value), len(src))
	case n.Kind != yaml.ScalarNode:
		r.end = s + 1
	case n.Style&yaml.DoubleQuotedStyle != 0:
		r.text = s + 1
		r.end = closingQuote(src, s, '"')
	case n.Style&yaml.SingleQuotedStyle != 0:
		r.text = s + 1
		r.end = closingQuote(src, s, '\'')
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// The indicator (| or >, with its chomping and indentation marks).
		r.end = s + 1
		for r.end < len(src) && strings.IndexByte("+-0123456789", src[r.end]) >= 0 {
			r.end++
		}
	case bytes.HasPrefix(src[s:], []byte(n.Value)):
		r.end = s + len(n.Value)
	default:
		// A plain scalar over several lines: its first line.
		e := s
		for e < len(src) && src[e] != '\n' && src[e] != '\r' && !(src[e] == '#' && e > s && isYAMLSpace(src[e-1])) {
			e++
		}
		for e > s && isYAMLSpace(src[e-1]) {
			e--
		}
		r.end = e
	}
	return r
}

func isYAMLSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// closingQuote returns the offset just past the quote that closes the quoted
// scalar starting at s (escapes are \" in double quotes and ” in single).
func closingQuote(src []byte, s int, q byte) int {
	for i := s + 1; i < len(src); i++ {
		switch {
		case q == '"' && src[i] == '\\':
			i++
		case src[i] == q && q == '\'' && i+1 < len(src) && src[i+1] == '\'':
			i++
		case src[i] == q:
			return i + 1
		}
	}
	return len(src)
}

// offset turns yaml.v3's 1-based line and character column into a byte offset.
func (c *yamlConverter) offset(line, col int) int {
	if line < 1 {
		return 0
	}
	if line > len(c.lines) {
		return len(c.src)
	}
	i := c.lines[line-1]
	for ; col > 1 && i < len(c.src) && c.src[i] != '\n'; col-- {
		_, size := utf8.DecodeRune(c.src[i:])
		i += size
	}
	return i
}

// hclRange turns a YAML byte span into an hcl.Range of the YAML file.
func (c *yamlConverter) hclRange(r yrange) hcl.Range {
	return hcl.Range{Filename: c.filename, Start: posAt(c.src, c.lines, r.start), End: posAt(c.src, c.lines, r.end)}
}

// posAt is the hcl.Pos of byte offset b in src, whose lines start at lines.
// Columns count characters, as hclsyntax and yaml.v3 do.
func posAt(src []byte, lines []int, b int) hcl.Pos {
	b = min(max(b, 0), len(src))
	lo, hi := 0, len(lines)-1
	for lo < hi { // the last line starting at or before b
		mid := (lo + hi + 1) / 2
		if lines[mid] <= b {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return hcl.Pos{Line: lo + 1, Column: 1 + utf8.RuneCount(src[lines[lo]:b]), Byte: b}
}

// moveTo places the next byte written on YAML byte offset y's line and, when
// the JSON written so far leaves room, its column. Lines never go back: a
// token of an expanded alias stays on the line the writer is on.
func (c *yamlConverter) moveTo(y int) {
	p := posAt(c.src, c.lines, y)
	if c.line < p.Line {
		c.out.WriteString(strings.Repeat("\n", p.Line-c.line))
		c.line, c.col = p.Line, 1
	}
	if c.line == p.Line && c.col < p.Column {
		c.out.WriteString(strings.Repeat(" ", p.Column-c.col))
		c.col = p.Column
	}
}

// token writes one JSON token for the YAML text at r. quoted says the token
// starts with a quote, so its text begins one byte in.
func (c *yamlConverter) token(text string, r yrange, quoted bool) {
	c.moveTo(r.start)
	j := c.out.Len()
	jText := j
	if quoted {
		jText++
	}
	c.out.WriteString(text)
	c.col += len(text)
	c.segs = append(c.segs, segment{j: j, jText: jText, jEnd: c.out.Len(), y: r.start, yText: r.text, yEnd: r.end})
	c.lastEnd = max(c.lastEnd, r.end)
}

// raw writes a keyword token (used after an error, so the JSON stays whole).
func (c *yamlConverter) raw(text string, r yrange) { c.token(text, r, false) }

// punct writes one JSON punctuation byte. When r is set the byte maps to it
// (opening brackets point at their key); place moves it to r's position first.
func (c *yamlConverter) punct(b byte, r *yrange, place bool) {
	if r != nil && place {
		c.moveTo(r.start)
	}
	j := c.out.Len()
	c.out.WriteByte(b)
	c.col++
	if r != nil {
		c.segs = append(c.segs, segment{j: j, jText: j, jEnd: j + 1, y: r.start, yText: r.start, yEnd: r.end})
	}
}
