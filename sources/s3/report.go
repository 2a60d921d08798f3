package s3

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

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
func (s *S3) Report(ctx context.Context, r sources.Report) error {
	key, body, err := folders.ReportObject(s.prefix, r, s.now)
	if err != nil {
		return fmt.Errorf("s3 %s: report: %w", s.where, err)
	}
	c, err := s.s3Client(ctx)
	if err != nil {
		return err
	}
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body), // seekable: plain-HTTP endpoints need it for signing
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("text/plain; charset=utf-8"),
	})
	if err != nil {
		return s.fail(ctx, "write report "+key, err)
	}
	return nil
}
