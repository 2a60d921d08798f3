// Package gs is the Google Cloud Storage source (scheme "gs"). Its words:
//
//   - URL: gs://<bucket>/<path-prefix>. The path prefix may be empty or several
//     levels deep.
//   - Folder: the name prefix "<path-prefix>/<version>/" of one release; its
//     name ("v1.2.4") is the release's tag.
//   - Artifact: an object directly inside a folder,
//     "<path-prefix>/<version>/<artifact>". Objects in deeper sub-folders are not
//     artifacts; that is where Report writes (".dewy-reports/").
//
// Layout, as in the seed:
//
//	myapp/v1.2.4/myapp_linux_amd64.tar.gz
//	myapp/v1.2.3/myapp_linux_amd64.tar.gz
//
// Credentials are Google's application default credentials:
// GOOGLE_APPLICATION_CREDENTIALS (a service account key or any ADC file), the
// file `gcloud auth application-default login` writes, then the metadata
// server's service account on Google Cloud (Workload Identity included). The
// token is added to requests sent through the agent's HTTP client
// (sources.Options.HTTPClient). STORAGE_EMULATOR_HOST ("host:port" or a URL)
// points the source at an emulator such as fake-gcs-server; then no
// credentials are used and objects are read through the JSON API.
//
// Objects are read as stored (ReadCompressed): an artifact uploaded with
// Content-Encoding: gzip is not decompressed on the way, so its checksum
// holds. (Not with an emulator: the library cannot combine that with JSON
// reads.) A failing request is tried at most 3 times.
//
// Cost of a poll: one objects.list with delimiter "/" per 1000 folders, then
// one per folder whose contents are not cached. A folder's listing is kept
// while the folder is quiet: its newest object was already an hour old when it
// was listed. Re-listed on every poll are new folders, folders that are not
// quiet yet, and the folders of the highest version and of the highest
// version without a pre-release part (a late upload to them decides what is
// deployed); every other folder is re-listed once a day. In the steady state
// a poll is 1 request plus 2, plus 1 per folder changed in the last hour. The
// cache lives in memory: the first poll after a start lists every version
// folder once. Folders whose names are not versions are listed as releases
// without assets and never opened.
package gs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
)

const (
	// maxAttempts bounds the storage library's retries, which are otherwise
	// endless until ctx ends.
	maxAttempts = 3
	userAgent   = "dewy-agent"
)

// ErrAccessDenied is wrapped by errors for requests GCS refused (HTTP 401 or
// 403), and when no application default credentials were found.
var ErrAccessDenied = errors.New("access denied")

// credentialsHint names the places application default credentials come from.
const credentialsHint = "GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the service account of the machine on Google Cloud"

// Config is where the registry is: the parts of gs://<bucket>/<prefix>.
type Config struct {
	// Bucket is the bucket name.
	Bucket string
	// Prefix is the path prefix, "" or "a/b" (slashes at either end are ignored).
	Prefix string
}

// GCS is the source for one Google Cloud Storage registry.
type GCS struct {
	// Source lists, opens and reports through the store; its Prefix is the
	// path prefix with a trailing slash, or "", and Where gs://bucket/prefix.
	folders.Source

	cfg Config
	log *slog.Logger
	hc  *http.Client
	// pageSize is the page size of every list; 0 leaves the service's
	// default (1000). Tests make it small to force paging.
	pageSize int
	// endpoint overrides the JSON API root when not using an emulator. Only
	// tests set it, to run the authenticated path against a fake.
	endpoint string

	mu       sync.Mutex
	client   *storage.Client
	emulator bool // the client talks to STORAGE_EMULATOR_HOST
}

// New returns the source for cfg. It validates cfg and does no I/O: the
// storage client (which looks for credentials) is made by the first call.
func New(cfg Config, opts sources.Options) (*GCS, error) {
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	where := "gs://" + path.Join(cfg.Bucket, cfg.Prefix)
	loc := folders.Location{Bucket: cfg.Bucket, Prefix: cfg.Prefix}
	if err := loc.Check("gs://<bucket>/<path-prefix>"); err != nil {
		return nil, fmt.Errorf("gs %s: %w", where, err)
	}
	opts = opts.WithDefaults()
	g := &GCS{cfg: cfg, log: opts.Logger, hc: opts.HTTPClient}
	g.Source = folders.Source{Kind: SchemeName, Where: where, Prefix: loc.KeyPrefix(), Now: opts.Now,
		Connect: func(ctx context.Context) (folders.Store, error) {
			c, err := g.gcsClient(ctx) // made on the first call
			return store{g, c}, err
		}}
	return g, nil
}

// gcsClient returns the client, making it on the first call. A failure is not
// remembered: the next call tries again.
func (g *GCS) gcsClient(ctx context.Context) (*storage.Client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.client != nil {
		return g.client, nil
	}
	// The client outlives this call: what it keeps (the token source) must
	// not end with this poll's ctx.
	ctx = context.WithoutCancel(ctx)
	var opts []option.ClientOption
	emulator := os.Getenv("STORAGE_EMULATOR_HOST") != ""
	if emulator {
		// The library points itself at the emulator and sends no credentials.
		// Emulators serve the JSON API more faithfully than the XML one.
		opts = append(opts, option.WithHTTPClient(g.hc), storage.WithJSONReads())
	} else {
		// option.WithHTTPClient alone would send requests unauthenticated:
		// put the credentials on top of the agent's transport instead.
		base := g.hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		tr, err := htransport.NewTransport(ctx, base,
			option.WithScopes(storage.ScopeReadWrite),
			option.WithUserAgent(userAgent),
		)
		if err != nil {
			return nil, fmt.Errorf("gs %s: %w: no usable Google application default credentials (looked in %s; for an emulator set STORAGE_EMULATOR_HOST): %w",
				g.Where, ErrAccessDenied, credentialsHint, err)
		}
		hc := *g.hc
		hc.Transport = tr
		opts = append(opts, option.WithHTTPClient(&hc))
		if g.endpoint != "" {
			opts = append(opts, option.WithEndpoint(g.endpoint))
		}
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gs %s: storage client: %w", g.Where, err)
	}
	c.SetRetry(storage.WithMaxAttempts(maxAttempts))
	g.client, g.emulator = c, emulator
	return c, nil
}

// isEmulator reports whether the client talks to STORAGE_EMULATOR_HOST.
func (g *GCS) isEmulator() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.emulator
}

// store is the bucket as package folders sees it.
type store struct {
	g *GCS
	c *storage.Client
}

// query is a delimiter listing of prefix asking only for what a release needs.
func (g *GCS) query(prefix string) *storage.Query {
	q := &storage.Query{Prefix: prefix, Delimiter: "/"}
	// The names are valid attributes; SetAttrSelection cannot fail on them.
	_ = q.SetAttrSelection([]string{"Name", "Size", "Created", "Updated"})
	return q
}

// list calls fn with each entry of a delimiter listing of prefix, from every
// page; what names the listing in errors.
func (g *GCS) list(ctx context.Context, c *storage.Client, prefix, what string, fn func(*storage.ObjectAttrs)) error {
	it := c.Bucket(g.cfg.Bucket).Objects(ctx, g.query(prefix))
	if g.pageSize > 0 {
		it.PageInfo().MaxSize = g.pageSize
	}
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return g.fail(ctx, what, err)
		}
		fn(attrs)
	}
}

// Folders returns the folder names under the prefix, in listing order,
// each once, from every page of a delimiter listing.
func (st store) Folders(ctx context.Context) ([]string, error) {
	g, c := st.g, st.c
	names := folders.NewNames(g.Prefix)
	err := g.list(ctx, c, g.Prefix, "list version folders", func(attrs *storage.ObjectAttrs) {
		if attrs.Prefix != "" { // an object at the top is not a release
			names.Add(attrs.Prefix)
		}
	})
	if err != nil {
		return nil, err
	}
	return names.List, nil
}

// Folder lists the artifacts directly inside one folder, from every page.
func (st store) Folder(ctx context.Context, name string, now time.Time) (folders.Listing, error) {
	g, c := st.g, st.c
	dir := g.Prefix + name + "/"
	f := folders.NewContents(dir, now)
	// A delimiter listing: sub-folders (reports) come as prefixes, not artifacts.
	err := g.list(ctx, c, dir, "list folder "+name, func(attrs *storage.ObjectAttrs) {
		if attrs.Prefix != "" {
			return
		}
		created := attrs.Created
		if created.IsZero() {
			created = attrs.Updated
		}
		f.Add(attrs.Name, attrs.Size, created)
	})
	if err != nil {
		return folders.Listing{}, err
	}
	return f.Listing, nil
}

// Get streams an object as stored.
func (st store) Get(ctx context.Context, key, what string) (io.ReadCloser, error) {
	obj := st.c.Bucket(st.g.cfg.Bucket).Object(key)
	if !st.g.isEmulator() {
		// Bytes as stored. The library refuses this with JSON reads, which
		// the emulator mode uses.
		obj = obj.ReadCompressed(true)
	}
	r, err := obj.NewReader(ctx)
	if err != nil {
		return nil, st.g.fail(ctx, what, err)
	}
	return r, nil
}

// Put writes a small text object in one request.
func (st store) Put(ctx context.Context, key string, text []byte, what string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel() // abandons the upload if it did not complete
	w := st.c.Bucket(st.g.cfg.Bucket).Object(key).NewWriter(wctx)
	w.ContentType = "text/plain; charset=utf-8"
	w.ChunkSize = 0 // one request: the object is small
	if _, err := w.Write(text); err != nil {
		return st.g.fail(ctx, what, err)
	}
	if err := w.Close(); err != nil {
		return st.g.fail(ctx, what, err)
	}
	return nil
}

var (
	_ sources.Source   = (*GCS)(nil)
	_ sources.Reporter = (*GCS)(nil)
	_ sources.Stateful = (*GCS)(nil)
	_ folders.Store    = store{}
)
