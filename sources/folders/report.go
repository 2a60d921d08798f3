package folders

import (
	"fmt"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
)

// ReportDir is the sub-folder of a version folder that holds deployment
// reports. Registries list a version folder without descending into it, so a
// report is never taken for an artifact.
const ReportDir = ".dewy-reports"

// ReportKey is the slash-separated key of the report for r under prefix (which
// is empty or ends in "/"):
//
//	<prefix><version>/.dewy-reports/<UTC time>-<host>-<app>.txt
//
// It fails when the release tag cannot be a single folder name.
func ReportKey(prefix string, r sources.Report) (string, error) {
	tag := r.Release.Tag
	if tag == "" || tag == "." || tag == ".." || strings.ContainsAny(tag, `/\`) {
		return "", fmt.Errorf("release tag %q is not a folder name", tag)
	}
	return prefix + tag + "/" + ReportDir + "/" + sources.ReportName(r), nil
}

// ReportObject is the object a folder registry writes for r: its key under
// keyPrefix (see ReportKey) and its text (sources.ReportText), with r's time
// set to now() when r has none.
func ReportObject(keyPrefix string, r sources.Report, now func() time.Time) (key string, text []byte, err error) {
	if r.Time.IsZero() {
		r.Time = now()
	}
	if key, err = ReportKey(keyPrefix, r); err != nil {
		return "", nil, err
	}
	return key, sources.ReportText(r), nil
}
