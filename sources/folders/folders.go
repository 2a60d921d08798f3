// Package folders is the poll logic shared by registries laid out as one folder
// per version, "<prefix>/<version>/<artifact>" (S3 and GCS). Its words:
//
//   - Listing: what one listing of a version folder found: its assets and the
//     newest object time among them.
//   - Cache: the listings kept between polls, so that a steady poll lists only
//     the folder names and the folders that may still change.
//
// A listing is cached when the folder's newest object was already QuietAge old
// when it was listed, and used for at most MaxAge. The folders of the highest
// version and of the highest stable version are listed on every poll anyway,
// so an artifact uploaded late to the release that matters is seen at once.
package folders

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

const (
	// QuietAge is how old a folder's newest object must be, when the folder is
	// listed, for the listing to be cached.
	QuietAge = time.Hour
	// MaxAge is how long a cached listing is used at most.
	MaxAge = 24 * time.Hour
)

// Listing is one listing of a version folder.
type Listing struct {
	Assets []version.Asset `json:"assets,omitempty"`
	// Newest is the newest object time among the assets; zero when none.
	Newest time.Time `json:"newest,omitzero"`
	// Listed is when the listing was made.
	Listed time.Time `json:"listed"`
}

// reusable reports whether a cached listing may stand in for a new one.
func (l Listing) reusable(now time.Time) bool {
	return l.Listed.Sub(l.Newest) >= QuietAge && now.Sub(l.Listed) < MaxAge
}

// Registry is what a folder-per-version registry can do.
type Registry interface {
	// Folders returns the folder names under the prefix, each once.
	Folders(ctx context.Context) ([]string, error)
	// Folder lists one version folder; now is the listing's time.
	Folder(ctx context.Context, name string, now time.Time) (Listing, error)
}

// Cache holds one source's listings between polls. The zero value is empty and
// ready; it is safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	listings map[string]Listing
}

// Releases lists one release per folder, using cached listings where they may
// stand in. A release's Created is the newest object time in its folder, so a
// folder still receiving artifacts counts as new for the grace period. Folders
// whose names are not versions are returned without assets and never listed.
func (c *Cache) Releases(ctx context.Context, r Registry, now func() time.Time) ([]version.Release, error) {
	names, err := r.Folders(ctx)
	if err != nil {
		return nil, err
	}
	top := topVersions(names)

	c.mu.Lock()
	cache := c.listings
	c.mu.Unlock()
	next := make(map[string]Listing, len(names))
	rels := make([]version.Release, 0, len(names))
	for _, name := range names {
		rel := version.Release{Tag: name}
		if _, ok := version.Parse(name); !ok && !version.MaybeCalVer(name) {
			rels = append(rels, rel) // listed for the engine's messages, never opened
			continue
		}
		t := now()
		prev, ok := cache[name]
		l := prev
		if !ok || top[name] || !l.reusable(t) {
			if l, err = r.Folder(ctx, name, t); err != nil {
				c.keep(next, cache)
				return nil, err
			}
			if ok && top[name] && prev.reusable(t) && sameContents(prev, l) {
				// Unchanged: keep the listing as it was, so a steady poll
				// leaves the saved cache (and state.json) byte for byte alone.
				l = prev
			}
		}
		next[name] = l
		rel.Created = l.Newest
		rel.Assets = slices.Clone(l.Assets) // callers may not edit the cache
		rels = append(rels, rel)
	}
	c.mu.Lock()
	c.listings = next // folders that are gone leave the cache
	c.mu.Unlock()
	return rels, nil
}

// sameContents reports whether two listings of a folder found the same objects.
func sameContents(a, b Listing) bool {
	return a.Newest.Equal(b.Newest) && slices.EqualFunc(a.Assets, b.Assets, func(x, y version.Asset) bool {
		return x.Name == y.Name && x.Ref == y.Ref && x.Size == y.Size && x.Created.Equal(y.Created)
	})
}

// keep stores the listings a failed poll made, with the cached ones it did not
// get to, so that the next poll does not list them again.
func (c *Cache) keep(done, cache map[string]Listing) {
	merged := make(map[string]Listing, len(cache)+len(done))
	for k, v := range cache {
		merged[k] = v
	}
	for k, v := range done {
		merged[k] = v
	}
	c.mu.Lock()
	c.listings = merged
	c.mu.Unlock()
}

// saved is a Cache as kept in the app's state.json.
type saved struct {
	// Where names the registry the listings are of; a cache saved for another
	// one is not loaded.
	Where    string             `json:"where"`
	Listings map[string]Listing `json:"listings,omitempty"`
}

// Save returns the cached listings of the registry where, for a later Load.
func (c *Cache) Save(where string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return json.Marshal(saved{Where: where, Listings: c.listings})
}

// Load restores listings saved for the registry where, so that the first poll
// after an agent restart costs what a steady poll does. Listings saved for
// another registry are ignored.
func (c *Cache) Load(where string, b []byte) error {
	var sv saved
	if err := json.Unmarshal(b, &sv); err != nil {
		return fmt.Errorf("folder cache: %w", err)
	}
	if sv.Where != where {
		return nil
	}
	c.mu.Lock()
	c.listings = sv.Listings
	c.mu.Unlock()
	return nil
}

// topVersions returns the folder names always listed again: the highest
// version, and the highest version without a pre-release part.
func topVersions(names []string) map[string]bool {
	top := map[string]bool{}
	var best, bestStable *semver.Version
	var bestName, bestStableName string
	for _, name := range names {
		v, ok := version.Parse(name)
		if !ok {
			continue
		}
		if best == nil || version.Compare(v, best) > 0 {
			best, bestName = v, name
		}
		if v.Prerelease() == "" && (bestStable == nil || version.Compare(v, bestStable) > 0) {
			bestStable, bestStableName = v, name
		}
	}
	if best != nil {
		top[bestName] = true
	}
	if bestStable != nil {
		top[bestStableName] = true
	}
	return top
}
