package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// cmdFmt rewrites HCL config files in canonical form (hclwrite), or with
// -check only lists the files that are not, exiting 1, for CI.
func cmdFmt(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fmt", stderr)
	check := fs.Bool("check", false, "change nothing; list the files that are not formatted and exit 1 if there are any")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "dewy-agent fmt: name the HCL files to format, e.g. dewy-agent fmt /etc/dewy-agent/dewy.hcl")
		return exitUsage
	}
	code := exitOK
	for _, path := range fs.Args() {
		if ext := strings.ToLower(filepath.Ext(path)); ext != ".hcl" {
			fmt.Fprintf(stderr, "dewy-agent fmt: %s: only HCL files (.hcl) are formatted; JSON and YAML are left to their own tools\n", path)
			code = exitError
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "dewy-agent fmt: %v\n", err)
			code = exitError
			continue
		}
		// hclwrite formats what it cannot parse too; refuse a file with
		// syntax errors so a broken file is never rewritten.
		if _, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos); diags.HasErrors() {
			fmt.Fprintf(stderr, "dewy-agent fmt: %s: %s; fix it first (dewy-agent validate -config %s)\n", path, diags.Errs()[0], path)
			code = exitError
			continue
		}
		out := hclwrite.Format(src)
		if bytes.Equal(out, src) {
			continue
		}
		if *check {
			fmt.Fprintln(stdout, path)
			code = exitError
			continue
		}
		mode := os.FileMode(0o644)
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
		if err := atomicfile.WriteFile(path, out, mode); err != nil {
			fmt.Fprintf(stderr, "dewy-agent fmt: %v\n", err)
			code = exitError
			continue
		}
		fmt.Fprintln(stdout, path)
	}
	return code
}
