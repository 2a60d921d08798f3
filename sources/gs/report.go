package gs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dewy-agent/dewy-agent/sources"
)

// maxReportError caps the error text a report carries.
const maxReportError = 4096

// Report records a deployment as one small text object in the release's
// folder:
//
//	<path-prefix>/<version>/.dewy-reports/<UTC time>-<host>-<app>.txt
//
// The sub-folder keeps it from being listed as an artifact. The text names
// the app, host, version, artifact, time and result (success, or failure and
// the error); nothing else, so no secrets.
func (g *GCS) Report(ctx context.Context, r sources.Report) error {
	if r.Time.IsZero() {
		r.Time = g.now()
	}
	name, err := reportName(g.prefix, r)
	if err != nil {
		return fmt.Errorf("gs %s: report: %w", g.where, err)
	}
	c, err := g.gcsClient(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel() // abandons the upload if it did not complete
	w := c.Bucket(g.cfg.Bucket).Object(name).NewWriter(wctx)
	w.ContentType = "text/plain; charset=utf-8"
	w.ChunkSize = 0 // one request: the object is small
	if _, err := w.Write(reportText(r)); err != nil {
		return g.fail(ctx, "write report "+name, err)
	}
	if err := w.Close(); err != nil {
		return g.fail(ctx, "write report "+name, err)
	}
	return nil
}

// reportName is the object name of the report for r.
func reportName(prefix string, r sources.Report) (string, error) {
	tag := r.Release.Tag
	if tag == "" || tag == "." || tag == ".." || strings.Contains(tag, "/") {
		return "", fmt.Errorf("release tag %q is not a folder name", tag)
	}
	name := r.Time.UTC().Format("20060102T150405.000Z") + "-" + namePart(r.Host) + "-" + namePart(r.App) + ".txt"
	return prefix + tag + "/" + reportDir + "/" + name, nil
}

// namePart makes s safe as part of an object name: letters, digits, '.', '_'
// and '-' are kept, anything else becomes '_'.
func namePart(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// reportText is the report's content: one "key: value" per line.
func reportText(r sources.Report) []byte {
	var b bytes.Buffer
	line := func(k, v string) {
		v = strings.Join(strings.Fields(v), " ") // one line, whatever the value holds
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	line("app", r.App)
	line("host", r.Host)
	line("version", r.Release.Tag)
	line("artifact", r.Artifact.Name)
	line("time", r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	if r.Err == nil {
		line("result", "success")
	} else {
		msg := r.Err.Error()
		if len(msg) > maxReportError {
			n := maxReportError
			for n > 0 && !utf8.RuneStart(msg[n]) {
				n--
			}
			msg = msg[:n] + "..."
		}
		line("result", "failure")
		line("error", msg)
	}
	return b.Bytes()
}
