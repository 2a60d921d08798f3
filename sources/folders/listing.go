package folders

import (
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Names collects the version folder names of a delimiter listing of a
// registry's key prefix, page by page: each name once, in listing order.
type Names struct {
	keyPrefix string
	seen      map[string]bool
	// List is the names so far.
	List []string
}

// NewNames starts the names of a listing of keyPrefix (KeyPrefix: empty or
// ending in "/").
func NewNames(keyPrefix string) *Names {
	return &Names{keyPrefix: keyPrefix, seen: map[string]bool{}}
}

// Add takes one common prefix of the listing, "<keyPrefix><name>/".
func (n *Names) Add(commonPrefix string) {
	name := strings.TrimSuffix(strings.TrimPrefix(commonPrefix, n.keyPrefix), "/")
	if name == "" || strings.Contains(name, "/") || n.seen[name] {
		return
	}
	n.seen[name] = true
	n.List = append(n.List, name)
}

// Contents collects the artifacts of a delimiter listing of one version
// folder, page by page: the objects directly inside it, each once.
type Contents struct {
	dir  string
	seen map[string]bool
	// Listing is the folder's listing so far.
	Listing Listing
}

// NewContents starts the listing of the folder whose keys start with dir
// ("<keyPrefix><name>/"), made at now.
func NewContents(dir string, now time.Time) *Contents {
	return &Contents{dir: dir, seen: map[string]bool{}, Listing: Listing{Listed: now}}
}

// Add takes one object of the listing: its key, its size (-1 when unknown)
// and when it was created.
func (c *Contents) Add(key string, size int64, created time.Time) {
	base := strings.TrimPrefix(key, c.dir)
	if base == "" || strings.Contains(base, "/") || c.seen[key] {
		return // the folder's own marker object, or not inside it
	}
	c.seen[key] = true
	created = created.UTC()
	if created.After(c.Listing.Newest) {
		c.Listing.Newest = created
	}
	c.Listing.Assets = append(c.Listing.Assets, version.Asset{Name: base, Ref: key, Size: size, Created: created})
}
