// Package folderstest is the contract every folder-per-version registry (file,
// s3, gs) must keep, as one test suite each registry's tests run against its
// own fake:
//
//	folderstest.Run(t, func(t *testing.T) folderstest.Registry { ... })
//
// The suite covers what a user sees the same way whatever the scheme: which
// folders and files are releases and artifacts, their sizes and times, opening
// an artifact, a vanished artifact, a cancelled poll, and deployment reports.
// What differs by scheme (URL options, credentials, paging, caching, error
// codes of the service) stays in each registry's own tests.
package folderstest

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Source is a registry's source: it lists, opens and takes reports.
type Source interface {
	sources.Source
	sources.Reporter
}

// Registry is one empty registry under test, on its own fake or folder.
type Registry struct {
	// Put stores an object at key (slash-separated, from the registry's root)
	// with its modification time at. A key ending in "/" is a folder marker
	// (an empty placeholder object, or an empty directory).
	Put func(t *testing.T, key string, content []byte, at time.Time)
	// Delete removes the object at key.
	Delete func(t *testing.T, key string)
	// Get reads the object at key; it fails the test when there is none.
	Get func(t *testing.T, key string) []byte
	// Source returns a new source for the registry's path prefix (no leading
	// or trailing slash needed; "" for the root), as configured by a user.
	Source func(t *testing.T, prefix string) Source
	// SetNow sets the time the registry's sources see; nil for a registry
	// that keeps no listings between polls.
	SetNow func(time.Time)
	// Requests counts the requests made to the registry so far; nil for a
	// registry that keeps no listings between polls. With SetNow, it runs the
	// poll cost part of the contract (the folders.Cache rules).
	Requests func() int64
	// SetPageSize makes src, a source of this registry, list at most n
	// entries a request; nil for a registry that lists without paging. With
	// Requests, it runs the paging part of the contract.
	SetPageSize func(src Source, n int)
	// OpensEveryFolder is true when a folder whose name is not a version is
	// listed with its files (file), false when it is listed empty because its
	// contents are never fetched (s3, gs).
	OpensEveryFolder bool
}

// T0 is the time the suite's objects are made at.
var T0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// Clock is a settable time for a fake registry and its sources, starting at
// T0; safe for concurrent use. It is a gofakes3 TimeSource.
type Clock struct {
	mu  sync.Mutex
	t   time.Time
	set bool
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.set {
		return T0
	}
	return c.t
}

// Since returns the time from t to Now.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t, c.set = t, true
	c.mu.Unlock()
}

// Run runs the contract; newRegistry makes a fresh, empty registry for each
// sub-test.
func Run(t *testing.T, newRegistry func(t *testing.T) Registry) {
	t.Run("Releases", func(t *testing.T) { testReleases(t, newRegistry) })
	t.Run("ReleaseFields", func(t *testing.T) { testReleaseFields(t, newRegistry(t)) })
	t.Run("Open", func(t *testing.T) { testOpen(t, newRegistry(t)) })
	t.Run("Cancelled", func(t *testing.T) { testCancelled(t, newRegistry(t)) })
	t.Run("Report", func(t *testing.T) { testReport(t, newRegistry) })
	t.Run("ReportRefusesBadTag", func(t *testing.T) { testReportBadTag(t, newRegistry(t)) })
	if reg := newRegistry(t); reg.Requests != nil && reg.SetNow != nil {
		t.Run("PollCost", func(t *testing.T) { testPollCost(t, reg) })
	}
	if reg := newRegistry(t); reg.Requests != nil && reg.SetPageSize != nil {
		t.Run("Paging", func(t *testing.T) { testPaging(t, reg) })
	}
}

// testPaging: folders and folder contents that take several pages are read
// from every page, each entry once.
func testPaging(t *testing.T, reg Registry) {
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0", "v1.5.0"} {
		reg.Put(t, "myapp/"+v+"/a_linux_amd64.tar.gz", []byte("x"), T0)
	}
	for _, k := range []string{"a_darwin_arm64.tar.gz", "a_linux_arm64.tar.gz", "a_windows_amd64.zip", "checksums.txt"} {
		reg.Put(t, "myapp/v1.0.0/"+k, []byte("x"), T0)
	}
	src := reg.Source(t, "myapp")
	reg.SetPageSize(src, 2)
	before := reg.Requests()
	rels, err := src.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"v1.0.0: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz a_linux_arm64.tar.gz a_windows_amd64.zip checksums.txt",
		"v1.1.0: a_linux_amd64.tar.gz",
		"v1.2.0: a_linux_amd64.tar.gz",
		"v1.3.0: a_linux_amd64.tar.gz",
		"v1.4.0: a_linux_amd64.tar.gz",
		"v1.5.0: a_linux_amd64.tar.gz",
	}
	if got := Summary(rels); !slices.Equal(got, want) {
		t.Errorf("releases:\n got %q\nwant %q", got, want)
	}
	// The folder names in one request or more (services differ in paging
	// them), v1.0.0's 5 objects in 3 pages, the other folders in 1 each.
	if n, min := reg.Requests()-before, int64(1+3+5); n < min {
		t.Errorf("%d requests, want at least %d (paging)", n, min)
	}
}

// ReadAsset opens an asset and reads it to the end, failing the test on any
// error.
func ReadAsset(t *testing.T, src sources.Source, rel version.Release, asset version.Asset) []byte {
	t.Helper()
	r, err := src.Open(t.Context(), rel, asset)
	if err != nil {
		t.Fatalf("open %s: %v", asset.Name, err)
	}
	return readAll(t, r)
}

// readAll reads r to the end and closes it.
func readAll(t *testing.T, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Summary is "tag: asset asset" per release, sorted, for comparisons.
func Summary(rels []version.Release) []string {
	var out []string
	for _, r := range rels {
		var names []string
		for _, a := range r.Assets {
			names = append(names, a.Name)
		}
		slices.Sort(names)
		out = append(out, strings.TrimSpace(r.Tag+": "+strings.Join(names, " ")))
	}
	slices.Sort(out)
	return out
}

func testReleases(t *testing.T, newRegistry func(t *testing.T) Registry) {
	tests := []struct {
		name    string
		prefix  string
		objects []string
		want    []string
		// wantOpened replaces want for registries that open every folder.
		wantOpened []string
	}{
		{
			name:   "nested prefix",
			prefix: "team/apps/myapp",
			objects: []string{
				"team/apps/myapp/v1.2.4/myapp_linux_amd64.tar.gz",
				"team/apps/myapp/v1.2.4/myapp_darwin_arm64.tar.gz",
				"team/apps/myapp/v1.2.3/myapp_linux_amd64.tar.gz",
				"team/apps/other/v9.0.0/other_linux_amd64.tar.gz",
				"team/apps/myapp2/v9.0.0/myapp2_linux_amd64.tar.gz", // a sibling sharing the name's start
			},
			want: []string{
				"v1.2.3: myapp_linux_amd64.tar.gz",
				"v1.2.4: myapp_darwin_arm64.tar.gz myapp_linux_amd64.tar.gz",
			},
		},
		{
			name:    "slashes around the prefix are ignored",
			prefix:  "/myapp/",
			objects: []string{"myapp/v1.0.0/myapp_linux_amd64.tar.gz"},
			want:    []string{"v1.0.0: myapp_linux_amd64.tar.gz"},
		},
		{
			name: "empty prefix",
			objects: []string{
				"v1.0.0/a_linux_amd64.tar.gz",
				"1.1.0/a_linux_amd64.tar.gz",
				"README.md", // a file at the top is not a release
			},
			want: []string{
				"1.1.0: a_linux_amd64.tar.gz",
				"v1.0.0: a_linux_amd64.tar.gz",
			},
		},
		{
			name:   "pre-releases and non-version folders are listed for the engine",
			prefix: "myapp",
			objects: []string{
				"myapp/v1.0.0/a_linux_amd64.tar.gz",
				"myapp/v1.0.0/checksums.txt",
				"myapp/v1.1.0-rc.1/a_linux_amd64.tar.gz",
				"myapp/latest/a_linux_amd64.tar.gz",
			},
			want: []string{
				"latest:", // not opened: its contents are never listed
				"v1.0.0: a_linux_amd64.tar.gz checksums.txt",
				"v1.1.0-rc.1: a_linux_amd64.tar.gz",
			},
			wantOpened: []string{
				"latest: a_linux_amd64.tar.gz",
				"v1.0.0: a_linux_amd64.tar.gz checksums.txt",
				"v1.1.0-rc.1: a_linux_amd64.tar.gz",
			},
		},
		{
			name:   "folder markers, sub-folders and reports are not artifacts",
			prefix: "myapp",
			objects: []string{
				"myapp/v1.0.0/",
				"myapp/v1.0.0/a_linux_amd64.tar.gz",
				"myapp/v1.0.0/.dewy-reports/20250601T120000.000Z-web1-api.txt",
				"myapp/v1.0.0/docs/guide.md",
				"myapp/v2.0.0/.dewy-reports/20250601T120000.000Z-web1-api.txt",
			},
			want: []string{
				"v1.0.0: a_linux_amd64.tar.gz",
				"v2.0.0:",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t)
			for _, k := range tt.objects {
				content := []byte("content of " + k)
				if strings.HasSuffix(k, "/") {
					content = nil
				}
				reg.Put(t, k, content, T0)
			}
			rels, err := reg.Source(t, tt.prefix).Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if reg.OpensEveryFolder && tt.wantOpened != nil {
				want = tt.wantOpened
			}
			if got := Summary(rels); !slices.Equal(got, want) {
				t.Errorf("releases:\n got %q\nwant %q", got, want)
			}
		})
	}
	t.Run("nothing under the prefix", func(t *testing.T) {
		reg := newRegistry(t)
		reg.Put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", []byte("x"), T0)
		rels, err := reg.Source(t, "nothing-here").Releases(t.Context())
		if len(rels) != 0 || (err != nil && !errors.Is(err, sources.ErrNotFound)) {
			t.Errorf("Releases = %q, %v; want none, and no error other than ErrNotFound", Summary(rels), err)
		}
	})
}

func testReleaseFields(t *testing.T, reg Registry) {
	later := T0.Add(10 * time.Minute)
	reg.Put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", []byte("12345"), T0)
	reg.Put(t, "myapp/v1.0.0/checksums.txt", []byte("abc"), later)
	rels, err := reg.Source(t, "myapp").Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 {
		t.Fatalf("got %d releases, want 1", len(rels))
	}
	r := rels[0]
	if !r.Created.Equal(later) {
		t.Errorf("Created = %v, want the newest object's time %v", r.Created, later)
	}
	want := []version.Asset{
		{Name: "a_linux_amd64.tar.gz", Size: 5, Created: T0},
		{Name: "checksums.txt", Size: 3, Created: later},
	}
	got := slices.Clone(r.Assets)
	slices.SortFunc(got, func(a, b version.Asset) int { return strings.Compare(a.Name, b.Name) })
	if len(got) != len(want) {
		t.Fatalf("assets = %+v, want %+v", got, want)
	}
	for i, a := range got {
		if a.Name != want[i].Name || a.Ref == "" || a.Size != want[i].Size || !a.Created.Equal(want[i].Created) {
			t.Errorf("asset %d = %+v, want %+v with a reference", i, a, want[i])
		}
	}
}

func testOpen(t *testing.T, reg Registry) {
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	reg.Put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", []byte(big), T0)
	reg.Put(t, "myapp/v1.0.0/gone.tar.gz", []byte("soon deleted"), T0)
	src := reg.Source(t, "myapp")
	rels, err := src.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 || len(rels[0].Assets) != 2 {
		t.Fatalf("releases = %q, want one with two assets", Summary(rels))
	}
	rel := rels[0]
	asset := func(name string) version.Asset {
		i := slices.IndexFunc(rel.Assets, func(a version.Asset) bool { return a.Name == name })
		if i < 0 {
			t.Fatalf("asset %s not listed", name)
		}
		return rel.Assets[i]
	}
	listed, gone := asset("a_linux_amd64.tar.gz"), asset("gone.tar.gz")
	reg.Delete(t, "myapp/v1.0.0/gone.tar.gz")

	tests := []struct {
		name    string
		asset   version.Asset
		want    string
		wantErr error  // errors.Is
		errText string // substring
	}{
		{name: "listed asset streams", asset: listed, want: big},
		{name: "deleted after listing", asset: gone, wantErr: sources.ErrNotFound},
		{name: "reference out of the folder", asset: version.Asset{Name: "x", Ref: "../x"}, errText: "outside the registry"},
		{name: "absolute reference", asset: version.Asset{Name: "x", Ref: "/etc/passwd"}, errText: "outside the registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := src.Open(t.Context(), rel, tt.asset)
			if tt.wantErr != nil || tt.errText != "" {
				if err == nil {
					r.Close()
					t.Fatal("Open succeeded, want an error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("err = %v, want it to contain %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, r); string(got) != tt.want {
				t.Errorf("read %d bytes, want %d bytes of the object", len(got), len(tt.want))
			}
		})
	}
}

func testCancelled(t *testing.T, reg Registry) {
	reg.Put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", []byte("x"), T0)
	src := reg.Source(t, "myapp")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	_, err := src.Releases(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %v", d)
	}
}

func testReport(t *testing.T, newRegistry func(t *testing.T) Registry) {
	tests := []struct {
		name     string
		err      error
		wantText []string
	}{
		{name: "success", wantText: []string{"result: success\n"}},
		{name: "failure", err: errors.New("health check failed:\nstatus 500"),
			wantText: []string{"result: failure\n", "error: health check failed: status 500\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t)
			reg.Put(t, "apps/myapp/v1.2.4/myapp_linux_amd64.tar.gz", []byte("x"), T0)
			src := reg.Source(t, "apps/myapp")
			rels, err := src.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			at := time.Date(2025, 6, 1, 12, 30, 5, 250e6, time.UTC)
			err = src.Report(t.Context(), sources.Report{
				App: "api", Host: "web 1/a", Release: rels[0], Artifact: rels[0].Assets[0], Time: at, Err: tt.err,
			})
			if err != nil {
				t.Fatal(err)
			}
			text := string(reg.Get(t, "apps/myapp/v1.2.4/"+folders.ReportDir+"/20250601T123005.250Z-web_1_a-api.txt"))
			for _, want := range append([]string{
				"app: api\n", "host: web 1/a\n", "version: v1.2.4\n",
				"artifact: myapp_linux_amd64.tar.gz\n", "time: 2025-06-01T12:30:05.250Z\n",
			}, tt.wantText...) {
				if !strings.Contains(text, want) {
					t.Errorf("report:\n%s\nwant it to contain %q", text, want)
				}
			}

			// A new source lists the folder afresh: the report is no artifact.
			rels, err = reg.Source(t, "apps/myapp").Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := Summary(rels), []string{"v1.2.4: myapp_linux_amd64.tar.gz"}; !slices.Equal(got, want) {
				t.Errorf("after the report, releases = %q, want %q", got, want)
			}
		})
	}
}

func testReportBadTag(t *testing.T, reg Registry) {
	reg.Put(t, "myapp/v1.0.0/a_linux_amd64.tar.gz", []byte("x"), T0)
	src := reg.Source(t, "myapp")
	for _, tag := range []string{"", "..", "../x", "a/b"} {
		err := src.Report(t.Context(), sources.Report{App: "api", Host: "h", Time: T0, Release: version.Release{Tag: tag}})
		if err == nil || !strings.Contains(err.Error(), "not a folder name") {
			t.Errorf("Report with tag %q = %v, want a refusal: not a folder name", tag, err)
		}
	}
}

// testPollCost checks what a steady poll costs under the folders.Cache rules:
// a listing is kept once its folder was quiet when listed, the highest version
// and the highest stable version are listed on every poll, and every listing
// is renewed after folders.MaxAge.
func testPollCost(t *testing.T, reg Registry) {
	now := T0
	reg.SetNow(now)
	put := func(key, content string) { reg.Put(t, key, []byte(content), now) }
	advance := func(d time.Duration) {
		now = now.Add(d)
		reg.SetNow(now)
	}
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v2.0.0-rc.1"} {
		put("myapp/"+v+"/a_linux_amd64.tar.gz", v)
	}
	put("myapp/latest/a_linux_amd64.tar.gz", "x")
	src := reg.Source(t, "myapp")

	poll := func(step string, want int64, wantSummary []string) {
		t.Helper()
		before := reg.Requests()
		rels, err := src.Releases(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := reg.Requests() - before; got != want {
			t.Errorf("%s: %d requests, want %d", step, got, want)
		}
		if wantSummary != nil {
			if got := Summary(rels); !slices.Equal(got, wantSummary) {
				t.Errorf("%s: releases = %q, want %q", step, got, wantSummary)
			}
		}
	}
	// Everything is new: 1 folder listing + 5 version folders ("latest" is not opened).
	poll("first poll", 6, nil)
	// Listed when fresh: not quiet, so all are listed again.
	poll("second poll, folders recent", 6, nil)

	advance(2 * folders.QuietAge)
	// Quiet now, but the cached listings were made while they were recent.
	poll("first poll after an hour", 6, nil)
	// Steady state: the folder listing, v2.0.0-rc.1 (highest) and v1.3.0 (highest release).
	poll("steady poll", 3, nil)

	// A late upload to an old, cached folder is not seen ...
	put("myapp/v1.0.0/a_darwin_arm64.tar.gz", "late")
	// ... but a new folder and a late upload to the highest version are.
	put("myapp/v1.4.0/a_linux_amd64.tar.gz", "new")
	put("myapp/v2.0.0-rc.1/a_darwin_arm64.tar.gz", "late")
	poll("new folder", 3, []string{
		"latest:",
		"v1.0.0: a_linux_amd64.tar.gz",
		"v1.1.0: a_linux_amd64.tar.gz",
		"v1.2.0: a_linux_amd64.tar.gz",
		"v1.3.0: a_linux_amd64.tar.gz",
		"v1.4.0: a_linux_amd64.tar.gz",
		"v2.0.0-rc.1: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz",
	})

	// A removed folder leaves the list.
	reg.Delete(t, "myapp/v1.1.0/a_linux_amd64.tar.gz")
	advance(folders.MaxAge + time.Hour)
	// A day later every folder is listed again, and the late upload shows.
	poll("a day later", 6, []string{
		"latest:",
		"v1.0.0: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz",
		"v1.2.0: a_linux_amd64.tar.gz",
		"v1.3.0: a_linux_amd64.tar.gz",
		"v1.4.0: a_linux_amd64.tar.gz",
		"v2.0.0-rc.1: a_darwin_arm64.tar.gz a_linux_amd64.tar.gz",
	})
	// The folder listing, v2.0.0-rc.1 and v1.4.0.
	poll("steady again", 3, nil)
}
