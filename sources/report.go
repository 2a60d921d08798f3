package sources

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxReportError caps the error text a report carries.
const maxReportError = 4096

// ReportName is a file name for the report, unique per deploy and safe in any
// registry: "<UTC time>-<host>-<app>.txt".
func ReportName(r Report) string {
	return r.Time.UTC().Format("20060102T150405.000Z") + "-" + namePart(r.Host) + "-" + namePart(r.App) + ".txt"
}

// namePart makes s safe as part of a file or object name: letters, digits, '.',
// '_' and '-' are kept, anything else becomes '_'.
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

// ReportText is a report's content, the same for every registry: one
// "key: value" line each for the app, host, version, artifact, time and result
// (success, with what verified its signature when the app checks one, or
// failure and the error). Nothing else, so no secrets.
func ReportText(r Report) []byte {
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
		if r.Verified != "" {
			line("verified", r.Verified)
		}
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
