package folders

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestTopVersions(t *testing.T) {
	cases := []struct {
		name  string
		names []string
		want  []string
	}{
		{name: "empty", names: nil, want: nil},
		{name: "stable newest", names: []string{"v1.0.0", "v1.2.0", "v1.1.0"}, want: []string{"v1.2.0"}},
		{name: "pre-release newest", names: []string{"v1.0.0", "v2.0.0-rc.1"}, want: []string{"v1.0.0", "v2.0.0-rc.1"}},
		{name: "rc.10 beats rc.2", names: []string{"v2.0.0-rc.2", "v2.0.0-rc.10"}, want: []string{"v2.0.0-rc.10"}},
		{name: "non-versions ignored", names: []string{"latest", "v0.1.0", "tmp"}, want: []string{"v0.1.0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := slices.Sorted(maps.Keys(topVersions(c.names)))
			if !slices.Equal(got, c.want) {
				t.Fatalf("topVersions(%v) = %v, want %v", c.names, got, c.want)
			}
		})
	}
}

// registry is an in-memory folder registry that counts folder listings.
type registry struct {
	folders map[string]time.Time // folder -> its newest object's time
	listed  []string
	fail    string // a folder whose listing fails
}

func (r *registry) Folders(context.Context) ([]string, error) {
	return slices.Sorted(maps.Keys(r.folders)), nil
}

func (r *registry) Folder(_ context.Context, name string, now time.Time) (Listing, error) {
	r.listed = append(r.listed, name)
	if name == r.fail {
		return Listing{}, errors.New("listing failed")
	}
	return Listing{Assets: []version.Asset{{Name: "a.tar.gz", Ref: name + "/a.tar.gz"}}, Newest: r.folders[name], Listed: now}, nil
}

// start is the time the cache tests begin at.
var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// quietFolders returns registry folders whose newest objects were two days
// old at start.
func quietFolders(names ...string) map[string]time.Time {
	m := make(map[string]time.Time, len(names))
	for _, n := range names {
		m[n] = start.Add(-48 * time.Hour)
	}
	return m
}

// TestCacheRelistsOnlyWhatMayChange: quiet folders are listed once; the top
// versions, recent folders and folders past MaxAge are listed again; a failed
// poll keeps what it listed.
func TestCacheRelistsOnlyWhatMayChange(t *testing.T) {
	now := start
	clock := func() time.Time { return now }
	r := &registry{folders: quietFolders("v1.0.0", "v1.1.0", "v2.0.0", "v3.0.0-rc.1")}
	r.folders["v1.2.0"] = now.Add(-time.Minute) // not quiet yet
	r.folders["latest"] = now
	var c Cache
	poll := func() []string {
		r.listed = nil
		rels, err := c.Releases(t.Context(), r, clock)
		if err != nil {
			t.Fatal(err)
		}
		if len(rels) != len(r.folders) {
			t.Fatalf("%d releases, want %d", len(rels), len(r.folders))
		}
		return slices.Sorted(slices.Values(r.listed))
	}
	if got := poll(); len(got) != 5 {
		t.Fatalf("first poll listed %v, want every version folder", got)
	}
	if got, want := poll(), []string{"v1.2.0", "v2.0.0", "v3.0.0-rc.1"}; !slices.Equal(got, want) {
		t.Fatalf("second poll listed %v, want %v", got, want)
	}
	now = now.Add(MaxAge)
	if got := poll(); len(got) != 5 {
		t.Fatalf("after MaxAge listed %v, want every version folder", got)
	}

	// A failure keeps what the poll listed (v0.9.0), so the retry lists only
	// what it did not get to.
	r.folders["v0.9.0"] = now.Add(-48 * time.Hour)
	r.folders["v4.0.0"] = now.Add(-48 * time.Hour)
	r.fail = "v4.0.0"
	if _, err := c.Releases(t.Context(), r, clock); err == nil {
		t.Fatal("a failed listing did not fail the poll")
	}
	r.fail = ""
	if got, want := poll(), []string{"v4.0.0"}; !slices.Equal(got, want) {
		t.Fatalf("after a failed poll listed %v, want %v", got, want)
	}
}

// TestCacheSaveLoad: a cache saved and loaded (an agent restart) makes the first
// poll as cheap as a steady one; a cache saved for another registry is ignored.
func TestCacheSaveLoad(t *testing.T) {
	now := start
	clock := func() time.Time { return now }
	r := &registry{folders: quietFolders("v1.0.0", "v1.1.0", "v2.0.0")}
	var c Cache
	if _, err := c.Releases(t.Context(), r, clock); err != nil {
		t.Fatal(err)
	}
	b, err := c.Save("s3://a/b")
	if err != nil {
		t.Fatal(err)
	}

	var restarted Cache
	if err := restarted.Load("s3://a/b", b); err != nil {
		t.Fatal(err)
	}
	r.listed = nil
	rels, err := restarted.Releases(t.Context(), r, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.listed, []string{"v2.0.0"}) || len(rels) != 3 || len(rels[0].Assets) != 1 {
		t.Fatalf("first poll after a restart listed %v, releases %+v", r.listed, rels)
	}

	// Steady polls leave the saved cache byte for byte as it was.
	now = now.Add(time.Minute)
	if _, err := restarted.Releases(t.Context(), r, clock); err != nil {
		t.Fatal(err)
	}
	if again, _ := restarted.Save("s3://a/b"); string(again) != string(b) {
		t.Fatalf("a steady poll changed the saved cache:\n%s\n%s", b, again)
	}

	var other Cache
	if err := other.Load("s3://a/other", b); err != nil {
		t.Fatal(err)
	}
	r.listed = nil
	if _, err := other.Releases(t.Context(), r, clock); err != nil {
		t.Fatal(err)
	}
	if len(r.listed) != 3 {
		t.Fatalf("a cache of another registry was used: listed %v", r.listed)
	}
	if err := other.Load("s3://a/b", []byte("{")); err == nil {
		t.Fatal("a malformed cache loaded")
	}
}
