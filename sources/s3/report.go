package s3

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

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
func (s *S3) Report(ctx context.Context, r sources.Report) error {
	if r.Time.IsZero() {
		r.Time = s.now()
	}
	key, err := reportKey(s.prefix, r)
	if err != nil {
		return fmt.Errorf("s3 %s: report: %w", s.where, err)
	}
	c, err := s.s3Client(ctx)
	if err != nil {
		return err
	}
	body := reportText(r)
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

// reportKey is where the report for r goes.
func reportKey(prefix string, r sources.Report) (string, error) {
	tag := r.Release.Tag
	if tag == "" || tag == "." || tag == ".." || strings.Contains(tag, "/") {
		return "", fmt.Errorf("release tag %q is not a folder name", tag)
	}
	name := r.Time.UTC().Format("20060102T150405.000Z") + "-" + keyPart(r.Host) + "-" + keyPart(r.App) + ".txt"
	return prefix + tag + "/" + reportDir + "/" + name, nil
}

// keyPart makes s safe as part of an object name: letters, digits, '.', '_'
// and '-' are kept, anything else becomes '_'.
func keyPart(s string) string {
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
