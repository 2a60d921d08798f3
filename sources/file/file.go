// Package file is the local-folder source, `file:///path/prefix`. The folder has
// the same layout as an S3 registry in the seed: one sub-folder per version, each
// holding that version's artifacts:
//
//	/srv/releases/myapp/v1.2.4/myapp_linux_amd64.tar.gz
//	/srv/releases/myapp/v1.2.3/myapp_linux_amd64.tar.gz
//
// It serves air-gapped hosts, shared mounts, the demo and tests. Files whose names
// start with "." or end in ".tmp" or ".part" are taken to be still being written
// and are ignored; publishers should write under such a name and rename.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Folder is a local-folder registry.
type Folder struct {
	root string
	// MinAge is how old an artifact's last change must be before it is read
	// (DefaultMinAge): a file copied straight into a version folder, without
	// a temporary name and a rename, is read only once it stopped changing.
	MinAge time.Duration
	// Now is the clock MinAge is measured with.
	Now func() time.Time
	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// DefaultMinAge is Folder.MinAge when New makes a Folder.
const DefaultMinAge = time.Second

// ErrChanging is wrapped by Open's error for an artifact that changed while
// it was looked at: it is still being written and is tried again later,
// never marked bad.
var ErrChanging = errors.New("still being written")

// New returns the source for the folder root (an absolute path). It does no I/O.
func New(root string, _ sources.Options) (*Folder, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file registry: %q is not an absolute path", root)
	}
	return &Folder{root: filepath.Clean(root), MinAge: DefaultMinAge, Now: time.Now, sleep: sleepCtx}, nil
}

// Releases lists one release per sub-folder of the root. A release's time is the
// newest modification time among its folder and files, so a folder that is still
// receiving artifacts counts as new for the grace period.
func (f *Folder) Releases(ctx context.Context) ([]version.Release, error) {
	entries, err := os.ReadDir(f.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file registry %s: %w", f.root, sources.ErrNotFound)
		}
		return nil, fmt.Errorf("file registry %s: %w", f.root, err)
	}
	var rels []version.Release
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || hidden(e.Name()) {
			continue
		}
		rel, err := f.release(e)
		if err != nil {
			return nil, err
		}
		rels = append(rels, rel)
	}
	return rels, nil
}

func (f *Folder) release(dir fs.DirEntry) (version.Release, error) {
	rel := version.Release{Tag: dir.Name()}
	info, err := dir.Info()
	if err != nil {
		return rel, fmt.Errorf("file registry %s: %w", f.root, err)
	}
	rel.Created = info.ModTime()
	files, err := os.ReadDir(filepath.Join(f.root, dir.Name()))
	if err != nil {
		return rel, fmt.Errorf("file registry %s: %w", f.root, err)
	}
	for _, fe := range files {
		if !fe.Type().IsRegular() || hidden(fe.Name()) {
			continue
		}
		fi, err := fe.Info()
		if err != nil {
			continue // removed while listing
		}
		if fi.ModTime().After(rel.Created) {
			rel.Created = fi.ModTime()
		}
		rel.Assets = append(rel.Assets, version.Asset{
			Name:    fe.Name(),
			Ref:     filepath.Join(dir.Name(), fe.Name()),
			Size:    fi.Size(),
			Created: fi.ModTime(),
		})
	}
	return rel, nil
}

// Open opens an asset listed by Releases. The reference is resolved inside the
// root; anything pointing elsewhere is refused.
func (f *Folder) Open(ctx context.Context, _ version.Release, asset version.Asset) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !filepath.IsLocal(asset.Ref) {
		return nil, fmt.Errorf("file registry %s: asset %q is outside the registry", f.root, asset.Ref)
	}
	r, err := os.Open(filepath.Join(f.root, asset.Ref))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file registry %s: asset %s: %w", f.root, asset.Ref, sources.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("file registry %s: %w", f.root, err)
	}
	if err := f.settled(ctx, r, asset); err != nil {
		r.Close()
		return nil, fmt.Errorf("file registry %s: asset %s: %w", f.root, asset.Ref, err)
	}
	return r, nil
}

// settled checks that the open file r is the one the listing saw (same size
// and modification time) and waits until its last change is MinAge old,
// looking again after the wait: a file that changed is still being written.
func (f *Folder) settled(ctx context.Context, r *os.File, asset version.Asset) error {
	fi, err := r.Stat()
	if err != nil {
		return err
	}
	same := func(fi fs.FileInfo) bool {
		return (asset.Size < 0 || fi.Size() == asset.Size) && (asset.Created.IsZero() || fi.ModTime().Equal(asset.Created))
	}
	if !same(fi) {
		return fmt.Errorf("%w: changed since it was listed", ErrChanging)
	}
	age := f.Now().Sub(fi.ModTime())
	if age >= f.MinAge {
		return nil
	}
	if err := f.sleep(ctx, f.MinAge-age); err != nil {
		return err
	}
	fi, err = r.Stat()
	if err != nil {
		return err
	}
	if !same(fi) {
		return fmt.Errorf("%w: changed within %s", ErrChanging, f.MinAge)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// hidden reports names that are skipped: dot files and files still being written.
func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part")
}

var _ sources.Source = (*Folder)(nil)

// Report records a deployment as a small text file in the release's folder,
// <root>/<version>/.dewy-reports/<time>-<host>-<app>.txt, as the S3 and GCS
// sources do; the dot folder is never listed as an artifact. The file is
// written atomically.
func (f *Folder) Report(_ context.Context, r sources.Report) error {
	key, err := folders.ReportKey("", r)
	if err != nil {
		return fmt.Errorf("file registry %s: report: %w", f.root, err)
	}
	name := filepath.Join(f.root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("file registry %s: report: %w", f.root, err)
	}
	if err := atomicfile.WriteFile(name, sources.ReportText(r), 0o644); err != nil {
		return fmt.Errorf("file registry %s: report: %w", f.root, err)
	}
	return nil
}

var _ sources.Reporter = (*Folder)(nil)
