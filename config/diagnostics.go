package config

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diags for the config file path whose text is src,
// each headed by its position as "file:line,col: " and followed by the source
// line, as hcl.NewDiagnosticTextWriter renders it (colored when color is set).
// path must be the filename given to Parse or Load. When src is nil the file is
// read from path; if that fails the positions are still printed, without the
// source lines.
func WriteDiagnostics(w io.Writer, path string, src []byte, diags hcl.Diagnostics, color bool) error {
	if src == nil {
		src, _ = os.ReadFile(path) // best effort: the positions alone still help
	}
	files := map[string]*hcl.File{path: {Bytes: src}}
	var buf bytes.Buffer
	for _, diag := range diags {
		buf.Reset()
		if diag.Subject != nil {
			fmt.Fprintf(&buf, "%s:%d,%d: ", diag.Subject.Filename, diag.Subject.Start.Line, diag.Subject.Start.Column)
		} else {
			fmt.Fprintf(&buf, "%s: ", path)
		}
		// Width 0: no word wrapping, so each message stays on one line.
		if err := hcl.NewDiagnosticTextWriter(&buf, files, 0, color).WriteDiagnostic(diag); err != nil {
			return fmt.Errorf("render diagnostic: %w", err)
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	return nil
}
