package folders

import (
	"context"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Store is a folder registry's object store: what differs between S3 and GCS.
// The errors it returns already name the registry.
type Store interface {
	Registry
	// Get streams the object key; what names the request in errors.
	Get(ctx context.Context, key, what string) (io.ReadCloser, error)
	// Put writes key, a small text object; what names the request in errors.
	Put(ctx context.Context, key string, text []byte, what string) error
}

// Source is what a folder registry's source does the same whatever the store:
// releases from cached folder listings, the cache kept in the app's state,
// opening an artifact and writing a deployment report. A source type embeds it
// and sets its fields in its constructor.
type Source struct {
	// Kind is the URL scheme, for messages ("s3").
	Kind string
	// Where is the registry's URL, for messages.
	Where string
	// Prefix is the key prefix of the registry's objects (Location.KeyPrefix).
	Prefix string
	// CacheKey names the registry in its saved state; Where when "".
	CacheKey string
	// Now is the clock reports are dated with.
	Now func() time.Time
	// Connect returns the store, making its client on the first call.
	Connect func(context.Context) (Store, error)

	cache Cache // version folder listings kept between polls
}

// Releases lists one release per folder under the prefix; see the package doc
// for what is cached.
func (s *Source) Releases(ctx context.Context) ([]version.Release, error) {
	st, err := s.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return s.cache.Releases(ctx, st, s.Now)
}

// SaveState keeps the folder listings in the app's state.json.
func (s *Source) SaveState() ([]byte, error) { return s.cache.Save(s.cacheKey()) }

// LoadState restores listings saved by SaveState for this same registry.
func (s *Source) LoadState(b []byte) error { return s.cache.Load(s.cacheKey(), b) }

func (s *Source) cacheKey() string {
	if s.CacheKey != "" {
		return s.CacheKey
	}
	return s.Where
}

// Open streams an asset listed by Releases; the caller closes the reader.
// Keys outside the registry's prefix are refused.
func (s *Source) Open(ctx context.Context, rel version.Release, asset version.Asset) (io.ReadCloser, error) {
	what := fmt.Sprintf("download %s of %s", asset.Name, rel.Tag)
	if !Holds(s.Prefix, asset.Ref) {
		return nil, fmt.Errorf("%s %s: %s: object key %q is outside the registry", s.Kind, s.Where, what, asset.Ref)
	}
	st, err := s.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return st.Get(ctx, asset.Ref, what)
}

// OpenKey streams the object key, for an artifact URL that names it outside
// any release.
func (s *Source) OpenKey(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.Open(ctx, version.Release{}, version.Asset{Name: path.Base(key), Ref: key, Size: -1})
}

// Report records a deployment as one small text object in the release's
// folder:
//
//	<path-prefix>/<version>/.dewy-reports/<UTC time>-<host>-<app>.txt
//
// The sub-folder keeps it from being listed as an artifact. The text names
// the app, host, version, artifact, time and result (success, or failure and
// the error); nothing else, so no secrets.
func (s *Source) Report(ctx context.Context, r sources.Report) error {
	key, text, err := ReportObject(s.Prefix, r, s.Now)
	if err != nil {
		return fmt.Errorf("%s %s: report: %w", s.Kind, s.Where, err)
	}
	st, err := s.Connect(ctx)
	if err != nil {
		return err
	}
	return st.Put(ctx, key, text, "write report "+key)
}

var (
	_ sources.Source   = (*Source)(nil)
	_ sources.Reporter = (*Source)(nil)
	_ sources.Stateful = (*Source)(nil)
)
