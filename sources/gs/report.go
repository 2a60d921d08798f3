package gs

import (
	"context"
	"fmt"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
)

// Report records a deployment as one small text object in the release's
// folder:
//
//	<path-prefix>/<version>/.dewy-reports/<UTC time>-<host>-<app>.txt
//
// The sub-folder keeps it from being listed as an artifact. The text names
// the app, host, version, artifact, time and result (success, or failure and
// the error); nothing else, so no secrets.
func (g *GCS) Report(ctx context.Context, r sources.Report) error {
	name, text, err := folders.ReportObject(g.prefix, r, g.now)
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
	if _, err := w.Write(text); err != nil {
		return g.fail(ctx, "write report "+name, err)
	}
	if err := w.Close(); err != nil {
		return g.fail(ctx, "write report "+name, err)
	}
	return nil
}
