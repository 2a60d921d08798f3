// Package s3 is the Amazon S3 source (scheme "s3"), for AWS and for
// S3-compatible object stores. Its words:
//
//   - URL: s3://<region>/<bucket>/<path-prefix>. The path prefix may be empty or
//     several levels deep. ?endpoint=https://host names an S3-compatible service.
//   - Folder: the key prefix "<path-prefix>/<version>/" of one release; its name
//     ("v1.2.4") is the release's tag.
//   - Artifact: an object directly inside a folder,
//     "<path-prefix>/<version>/<artifact>". Objects in deeper sub-folders are not
//     artifacts; that is where Report writes (".dewy-reports/").
//
// Layout, as in the seed:
//
//	my-releases/myapp/v1.2.4/myapp_linux_amd64.tar.gz
//	my-releases/myapp/v1.2.3/myapp_linux_amd64.tar.gz
//
// Credentials come from the AWS SDK's default chain: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), AWS_PROFILE and the shared
// files in ~/.aws, web identity, SSO, then the ECS or EC2 instance role. The
// endpoint is ?endpoint= when given, else the SDK's AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL or endpoint_url in the shared config, else AWS's own. With a
// custom endpoint the source uses path-style addressing and sends checksums
// only where S3 requires them (what S3-compatible services expect), unless the
// shared config or environment says otherwise. Registry traffic goes through
// the agent's HTTP client (sources.Options.HTTPClient), so AWS_CA_BUNDLE does
// not apply; add a private CA to the system trust store or SSL_CERT_FILE.
//
// Cost of a poll: one ListObjectsV2 with delimiter "/" per 1000 folders, then
// one ListObjectsV2 per folder whose contents are not cached. A folder's
// listing is kept while the folder is quiet: its newest object was already
// an hour old when it was listed. Re-listed on every poll are new folders,
// folders that are not quiet yet, and the folders of the highest version and
// of the highest version without a pre-release part (a late upload to them
// decides what is deployed); every other folder is re-listed once a day. In
// the steady state a poll is 1 request plus 2, plus 1 per folder changed in
// the last hour. The cache lives in memory: the first poll after a start lists
// every version folder once. Folders whose names are not versions are listed
// as releases without assets and never opened.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
)

// Config is where the registry is: the parts of s3://<region>/<bucket>/<prefix>.
type Config struct {
	// Region is the bucket's region, e.g. "ap-northeast-1".
	Region string
	// Bucket is the bucket name.
	Bucket string
	// Prefix is the path prefix, "" or "a/b" (slashes at either end are ignored).
	Prefix string
	// Endpoint is the ?endpoint= option: the base URL of an S3-compatible
	// service, e.g. "https://s3.isk01.sakurastorage.jp". "" means none.
	Endpoint string
}

// S3 is the source for one S3 registry.
type S3 struct {
	// Source lists, opens and reports through the store; its Prefix is the
	// path prefix with a trailing slash, or "", and Where
	// s3://region/bucket/prefix.
	folders.Source

	cfg Config
	log *slog.Logger
	hc  *http.Client
	// pageSize is MaxKeys for every list request; 0 leaves the service's
	// default (1000). Tests make it small to force paging.
	pageSize int32

	mu     sync.Mutex
	client *awss3.Client
}

// New returns the source for cfg. It validates cfg and does no I/O: the AWS
// configuration (which may read ~/.aws) is loaded by the first call.
func New(cfg Config, opts sources.Options) (*S3, error) {
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	where := "s3://" + path.Join(cfg.Region, cfg.Bucket, cfg.Prefix)
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("s3 %s: %w", where, err)
	}
	opts = opts.WithDefaults()
	s := &S3{cfg: cfg, log: opts.Logger, hc: opts.HTTPClient}
	s.Source = folders.Source{
		Kind:     SchemeName,
		Where:    where,
		Prefix:   folders.Location{Prefix: cfg.Prefix}.KeyPrefix(),
		CacheKey: where + "|" + cfg.Endpoint, // another endpoint is another registry
		Now:      opts.Now,
		Connect: func(ctx context.Context) (folders.Store, error) {
			c, err := s.s3Client(ctx) // made on the first call
			return store{s, c}, err
		},
	}
	return s, nil
}

// validate checks the parts of the URL and the endpoint option.
func validate(cfg Config) error {
	switch {
	case cfg.Region == "":
		return errors.New("region is empty: want s3://<region>/<bucket>/<path-prefix>")
	case strings.ContainsFunc(cfg.Region, folders.BadNameRune):
		return fmt.Errorf("region %q is not a region name", cfg.Region)
	}
	if err := (folders.Location{Bucket: cfg.Bucket, Prefix: cfg.Prefix}).Check("s3://<region>/<bucket>/<path-prefix>"); err != nil {
		return err
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return fmt.Errorf("endpoint option: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoint option %q: want an http or https URL such as https://s3.example.com", u.Redacted())
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("endpoint option %q: want a URL without user info, query or fragment; credentials come from the AWS chain", u.Redacted())
		}
	}
	return nil
}

// s3Client returns the client, loading the AWS configuration on the first
// call. A failed load is not remembered: the next call tries again.
func (s *S3) s3Client(ctx context.Context) (*awss3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	logger := sdkLogger{log: s.log}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(s.cfg.Region),
		awsconfig.WithLogger(logger),
	)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: load the AWS configuration: %w", s.Where, err)
	}
	s.client = awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		// Set here, not with config.WithHTTPClient: AWS_CA_BUNDLE makes the
		// config loader refuse a plain *http.Client.
		o.HTTPClient = s.hc
		o.Logger = logger
		if s.cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.cfg.Endpoint)
		}
		if o.BaseEndpoint != nil { // ?endpoint= or the SDK's AWS_ENDPOINT_URL*
			o.UsePathStyle = true
			if o.RequestChecksumCalculation == aws.RequestChecksumCalculationUnset {
				o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			}
			if o.ResponseChecksumValidation == aws.ResponseChecksumValidationUnset {
				o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			}
		}
	})
	return s.client, nil
}

// store is the bucket as package folders sees it.
type store struct {
	s *S3
	c *awss3.Client
}

// Folders returns the folder names under the prefix, in listing order,
// each once, from every page of a delimiter listing.
func (st store) Folders(ctx context.Context) ([]string, error) {
	s, c := st.s, st.c
	in := &awss3.ListObjectsV2Input{
		Bucket:    aws.String(s.cfg.Bucket),
		Delimiter: aws.String("/"),
	}
	if s.Prefix != "" {
		in.Prefix = aws.String(s.Prefix)
	}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	names := folders.NewNames(s.Prefix)
	for p := awss3.NewListObjectsV2Paginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail(ctx, "list version folders", err)
		}
		for _, cp := range out.CommonPrefixes {
			names.Add(aws.ToString(cp.Prefix))
		}
	}
	return names.List, nil
}

// Folder lists the artifacts directly inside one folder, from every page.
func (st store) Folder(ctx context.Context, name string, now time.Time) (folders.Listing, error) {
	s, c := st.s, st.c
	dir := s.Prefix + name + "/"
	in := &awss3.ListObjectsV2Input{
		Bucket:    aws.String(s.cfg.Bucket),
		Prefix:    aws.String(dir),
		Delimiter: aws.String("/"), // sub-folders (reports) are not artifacts
	}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	f := folders.NewContents(dir, now)
	for p := awss3.NewListObjectsV2Paginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return folders.Listing{}, s.fail(ctx, "list folder "+name, err)
		}
		for _, o := range out.Contents {
			size := int64(-1)
			if o.Size != nil {
				size = *o.Size
			}
			f.Add(aws.ToString(o.Key), size, aws.ToTime(o.LastModified))
		}
	}
	return f.Listing, nil
}

// Get streams an object with one GetObject.
func (st store) Get(ctx context.Context, key, what string) (io.ReadCloser, error) {
	out, err := st.c.GetObject(ctx, &awss3.GetObjectInput{
		Bucket: aws.String(st.s.cfg.Bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		return nil, st.s.fail(ctx, what, err)
	}
	return out.Body, nil
}

// Put writes a small text object with one PutObject.
func (st store) Put(ctx context.Context, key string, text []byte, what string) error {
	_, err := st.c.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(st.s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(text), // seekable: plain-HTTP endpoints need it for signing
		ContentLength: aws.Int64(int64(len(text))),
		ContentType:   aws.String("text/plain; charset=utf-8"),
	})
	if err != nil {
		return st.s.fail(ctx, what, err)
	}
	return nil
}

// sdkLogger sends the SDK's own log lines to the app's logger at debug level.
// Its warnings ("falling back to IMDSv1" on any host without instance
// metadata) are chatter: what fails reaches the agent as an error and is
// logged and shown there.
type sdkLogger struct {
	log *slog.Logger
}

// Logf implements logging.Logger.
func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	l.log.Debug("aws sdk: "+fmt.Sprintf(format, v...), "class", string(c))
}

var (
	_ sources.Source   = (*S3)(nil)
	_ sources.Reporter = (*S3)(nil)
	_ sources.Stateful = (*S3)(nil)
	_ folders.Store    = store{}
)
