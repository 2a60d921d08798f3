package ghr

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/dewy-agent/dewy-agent/sources"
)

// ReportPrefix starts the name of every report asset. Report assets are .txt
// files, which the version engine never takes for an artifact.
const ReportPrefix = "dewy-report-"

// Report records a deployment as a small text asset uploaded to the release:
// "dewy-report-<UTC time>-<host>-<app>.txt" holding the app, host, version,
// artifact, time and result. The token needs write access to the repository's
// contents (releases).
func (g *GitHub) Report(ctx context.Context, r sources.Report) error {
	if r.Time.IsZero() {
		r.Time = g.now()
	}
	what := "report on " + r.Release.Tag
	rel, resp, err := g.client.Repositories.GetReleaseByTag(ctx, g.owner, g.repo, r.Release.Tag)
	if err != nil {
		return g.redact(g.apiError(ctx, what, "release not found", resp, err))
	}
	target, err := uploadURL(rel.GetUploadURL())
	if err != nil {
		return fmt.Errorf("ghr %s/%s: %s: %w", g.owner, g.repo, what, err)
	}
	q := target.Query()
	q.Set("name", ReportPrefix+sources.ReportName(r))
	target.RawQuery = q.Encode()

	body := sources.ReportText(r)
	req, err := g.client.NewUploadRequest(target.String(), bytes.NewReader(body), int64(len(body)), "text/plain; charset=utf-8")
	if err != nil {
		return fmt.Errorf("ghr %s/%s: %s: %w", g.owner, g.repo, what, err)
	}
	// The upload host (uploads.github.com) is not the API host, so the API
	// transport leaves it without the token; the URL came from the API itself.
	if g.token != "" && origin(target) != origin(g.apiURL) {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err = g.client.Do(ctx, req, new(github.ReleaseAsset))
	if err != nil {
		return g.redact(g.apiError(ctx, what, "release not found", resp, err))
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("ghr %s/%s: %s: upload answered %s", g.owner, g.repo, what, resp.Status)
	}
	return nil
}

// uploadURL turns a release's upload_url template ("...assets{?name,label}")
// into a URL.
func uploadURL(tmpl string) (*url.URL, error) {
	raw, _, _ := strings.Cut(tmpl, "{")
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("the release's upload_url %q is not a URL", raw)
	}
	return u, nil
}

var _ sources.Reporter = (*GitHub)(nil)
