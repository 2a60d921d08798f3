// Package sourcestest holds the test helpers every registry scheme's tests
// share: one table runner for a scheme's URL decoding.
package sourcestest

import (
	"io"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
)

// DecodeCase is a registry URL and what a scheme's Decode must make of it:
// Want when WantErr is empty, else exactly one error at the registry's range
// whose summary and detail ("summary: detail") contain WantErr.
type DecodeCase struct {
	URL     string
	Options map[string]string
	Want    sources.Settings
	WantErr string
}

// Range is the registry attribute's range the cases are decoded at.
var Range = hcl.Range{Filename: "dewy.hcl", Start: hcl.Pos{Line: 2, Column: 14}, End: hcl.Pos{Line: 2, Column: 40}}

// Decode runs each case as a subtest named by its URL. A good case must also
// build its source (New does no I/O). A diagnostic must never repeat a part
// of the URL or its options that holds the word "secret".
func Decode(t *testing.T, scheme sources.Scheme, cases []DecodeCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.URL, func(t *testing.T) {
			u, err := url.Parse(tt.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, diags := scheme.Decode(u, tt.Options, Range)
			if tt.WantErr == "" {
				if diags.HasErrors() || !reflect.DeepEqual(got, tt.Want) {
					t.Fatalf("Decode = %#v, %v; want %#v", got, diags, tt.Want)
				}
				src, err := got.New(sources.Options{})
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c, ok := src.(io.Closer); ok {
					c.Close()
				}
				return
			}
			if got != nil || len(diags) != 1 || diags[0].Subject == nil || *diags[0].Subject != Range ||
				!strings.Contains(diags[0].Summary+": "+diags[0].Detail, tt.WantErr) {
				t.Fatalf("Decode = %#v, %v; want one error at the registry saying %q", got, diags, tt.WantErr)
			}
			if strings.Contains(diags[0].Summary+diags[0].Detail, "secret") {
				t.Errorf("the diagnostic repeats a secret: %s: %s", diags[0].Summary, diags[0].Detail)
			}
		})
	}
}
