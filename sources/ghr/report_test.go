package ghr_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// TestReport uploads success and failure reports as release assets, with the
// token required by the server, and checks that the next poll does not offer a
// report as an artifact.
func TestReport(t *testing.T) {
	srv := fakegithub.New(t)
	srv.RequireToken("ghp_report_token")
	srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.0.0", Assets: map[string][]byte{"app_linux_amd64.tar.gz": []byte("x")}})
	g := newSource(t, srv, setup{env: map[string]string{"GITHUB_TOKEN": "ghp_report_token"}})

	rel := version.Release{Tag: "v1.0.0"}
	ok := sources.Report{App: "api", Host: "web-1", Release: rel, Artifact: version.Asset{Name: "app_linux_amd64.tar.gz"}, Time: fixedNow}
	if err := g.Report(t.Context(), ok); err != nil {
		t.Fatalf("Report: %v", err)
	}
	bad := ok
	bad.Time = fixedNow.Add(time.Second)
	bad.Err = errors.New("health check failed:\nstatus 503")
	if err := g.Report(t.Context(), bad); err != nil {
		t.Fatalf("Report failure: %v", err)
	}

	var reports []string
	for _, n := range srv.AssetNames(owner, repo, "v1.0.0") {
		if strings.HasPrefix(n, ghr.ReportPrefix) {
			reports = append(reports, n)
		}
	}
	if len(reports) != 2 {
		t.Fatalf("report assets = %v, want 2", reports)
	}
	first, _ := srv.Asset(owner, repo, "v1.0.0", reports[0])
	second, _ := srv.Asset(owner, repo, "v1.0.0", reports[1])
	for _, want := range []string{"app: api", "host: web-1", "version: v1.0.0", "artifact: app_linux_amd64.tar.gz", "result: success"} {
		if !strings.Contains(string(first), want) {
			t.Errorf("success report lacks %q:\n%s", want, first)
		}
	}
	if !strings.Contains(string(second), "result: failure") || !strings.Contains(string(second), "error: health check failed: status 503") {
		t.Errorf("failure report:\n%s", second)
	}
	if strings.Contains(string(first)+string(second), "ghp_report_token") {
		t.Fatal("the token is in a report")
	}

	// The reports are listed as assets, and never picked as the artifact.
	rels, err := g.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sel, err := version.Select(rels, version.Policy{OS: "linux", Arch: "amd64"}, fixedNow)
	if err != nil || sel.Candidate.Artifact.Name != "app_linux_amd64.tar.gz" {
		t.Fatalf("selection after reports: %+v %v", sel.Candidate, err)
	}
}

func TestReportUnknownTag(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddRelease(owner, repo, fakegithub.Release{Tag: "v1.0.0"})
	g := newSource(t, srv, setup{})
	err := g.Report(t.Context(), sources.Report{App: "api", Release: version.Release{Tag: "v9.9.9"}, Time: fixedNow})
	if !errors.Is(err, sources.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}
