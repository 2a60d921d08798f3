package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// badFixture is a file of testdata/ that must fail to parse, and the parts
// its rendered diagnostics must contain (file:line,col, message, source line).
type badFixture struct {
	name string
	file string
	// at is where an error is, as line,col; the diagnostics must hold
	// "file:at:". Fixtures with errors at several places list them in want.
	at   string
	want []string
}

// tableCoversDisk fails the test, when it ends, unless the fixtures the
// table names through the returned covers (file names in testdata/) are
// exactly those on disk, so none is left untested.
func tableCoversDisk(t *testing.T, what string, onDisk []string) (covers func(file string)) {
	t.Helper()
	var inTable []string
	t.Cleanup(func() {
		slices.Sort(inTable)
		if !slices.Equal(onDisk, inTable) {
			t.Errorf("%s fixtures on disk %v\ndo not match the table %v", what, onDisk, inTable)
		}
	})
	return func(file string) { inTable = append(inTable, filepath.Join("testdata", file)) }
}

// runBadFixtures checks that every fixture of tests is refused, with every
// error at a source range and each wanted part in the rendered diagnostics;
// onDisk is the list the table must match.
func runBadFixtures(t *testing.T, tests []badFixture, onDisk []string) {
	t.Helper()
	covers := tableCoversDisk(t, "bad", onDisk)
	for _, tt := range tests {
		covers(tt.file)
		t.Run(tt.name, func(t *testing.T) {
			f, diags, out := render(t, filepath.Join("testdata", tt.file))
			if !diags.HasErrors() {
				t.Fatalf("no error; diagnostics:\n%s", out)
			}
			if f != nil {
				t.Errorf("File = %+v, want nil with errors", f)
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError && d.Subject == nil {
					t.Errorf("error %q has no source range", d.Summary)
				}
			}
			want := tt.want
			if tt.at != "" {
				want = append([]string{tt.file + ":" + tt.at + ":"}, want...)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("diagnostics lack %q; got:\n%s", w, out)
				}
			}
		})
	}
}
