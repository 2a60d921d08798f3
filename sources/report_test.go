package sources_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// TestReportTextVerified: a successful deploy's report says what verified
// its signature; a failure's does not.
func TestReportTextVerified(t *testing.T) {
	const by = "minisign key 1A2B3C4D5E6F7A8B (trusted comment: release v1 by ci)"
	r := sources.Report{App: "api", Host: "h", Release: version.Release{Tag: "v1"}, Time: time.Unix(0, 0), Verified: by}
	if text := string(sources.ReportText(r)); !strings.Contains(text, "result: success\nverified: "+by+"\n") {
		t.Errorf("report lacks what verified it:\n%s", text)
	}
	r.Err = errors.New("health check failed")
	if text := string(sources.ReportText(r)); strings.Contains(text, "verified:") {
		t.Errorf("a failure's report says verified:\n%s", text)
	}
	r.Err, r.Verified = nil, ""
	if text := string(sources.ReportText(r)); strings.Contains(text, "verified:") {
		t.Errorf("a report without a check says verified:\n%s", text)
	}
}
