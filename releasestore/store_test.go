package releasestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// prepareAt prepares a small release of version at the given clock.
func prepareAt(t *testing.T, s *Store, version string, at time.Time) string {
	t.Helper()
	s.Now = func() time.Time { return at }
	data := gzipOf(t, tarOf(t, ent{name: "version", mode: 0o644, body: version}))
	p, err := s.Prepare(t.Context(), version, "app.tar.gz", int64(len(data)), sum(data), fromBytes(data))
	if err != nil {
		t.Fatalf("Prepare %s: %v", version, err)
	}
	return p.Dir
}

// twoReleases prepares the releases v1 and v2, a second apart, and returns
// their directories.
func twoReleases(t *testing.T, s *Store) (v1, v2 string) {
	t.Helper()
	return prepareAt(t, s, "v1", t0), prepareAt(t, s, "v2", t0.Add(time.Second))
}

func TestNewStoreDoesNoIO(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	s := NewStore(dir, 0, nil)
	if s.Keep != DefaultKeep || s.MaxBytes != DefaultMaxBytes || s.MaxEntries != DefaultMaxEntries {
		t.Errorf("defaults = keep %d, bytes %d, entries %d", s.Keep, s.MaxBytes, s.MaxEntries)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewStore made %s: %v", dir, err)
	}
	if cur, err := s.Current(); cur != "" || err != nil {
		t.Errorf("Current = %q, %v; want none", cur, err)
	}
}

func TestPrepareCancelled(t *testing.T) {
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	tests := []struct {
		name string
		// open returns the artifact stream; it calls cancel once a first part
		// of the artifact has been read.
		open func(t *testing.T, cancel context.CancelFunc, wg *sync.WaitGroup) func(context.Context) (io.ReadCloser, error)
	}{
		{
			name: "stalled body is closed",
			open: func(t *testing.T, cancel context.CancelFunc, wg *sync.WaitGroup) func(context.Context) (io.ReadCloser, error) {
				return func(context.Context) (io.ReadCloser, error) {
					r := &stallReader{first: chunk, blocked: make(chan struct{}), closed: make(chan struct{})}
					wg.Go(func() {
						// Cancel only once Prepare sits in a Read that nothing
						// but Close can end.
						<-r.blocked
						cancel()
					})
					return r, nil
				}
			},
		},
		{
			name: "endless body is checked on every read",
			open: func(t *testing.T, cancel context.CancelFunc, _ *sync.WaitGroup) func(context.Context) (io.ReadCloser, error) {
				return func(context.Context) (io.ReadCloser, error) {
					return &endless{after: 1 << 20, cancel: cancel}, nil
				}
			},
		},
		{
			name: "cancelled before the start",
			open: func(t *testing.T, cancel context.CancelFunc, _ *sync.WaitGroup) func(context.Context) (io.ReadCloser, error) {
				cancel()
				return func(context.Context) (io.ReadCloser, error) {
					t.Error("open called with a cancelled context")
					return nil, errors.New("unreachable")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newTestStore(t)
			before := snapshot(t, root)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var wg sync.WaitGroup
			_, err := s.Prepare(ctx, "v1", "app.tar.gz", 10<<20, "", tt.open(t, cancel, &wg))
			wg.Wait()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if errors.Is(err, ErrBadArtifact) {
				t.Errorf("cancellation counted as a bad artifact: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(s.AppDir, "tmp")); err == nil {
				mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
			}
			if es, _ := os.ReadDir(filepath.Join(s.AppDir, "releases")); len(es) != 0 {
				t.Errorf("releases/ holds %d entries, want none", len(es))
			}
			for p := range snapshot(t, root) {
				if _, ok := before[p]; !ok && p != "app" && p != "app/tmp" && p != "app/releases" {
					t.Errorf("left behind: %s", p)
				}
			}
		})
	}
}

// stallReader returns first, then blocks in Read until it is closed.
type stallReader struct {
	first     []byte
	blocked   chan struct{} // closed when a Read blocks
	closed    chan struct{} // closed by Close
	blockOnce sync.Once
	closeOnce sync.Once
}

func (r *stallReader) Read(p []byte) (int, error) {
	if len(r.first) > 0 {
		n := copy(p, r.first)
		r.first = r.first[n:]
		return n, nil
	}
	r.blockOnce.Do(func() { close(r.blocked) })
	<-r.closed
	return 0, io.ErrClosedPipe
}

func (r *stallReader) Close() error {
	r.closeOnce.Do(func() { close(r.closed) })
	return nil
}

// endless yields bytes forever and cancels after a number of them.
type endless struct {
	after  int
	read   int
	cancel context.CancelFunc
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'e'
	}
	e.read += len(p)
	if e.read >= e.after {
		e.cancel()
	}
	return len(p), nil
}

func (e *endless) Close() error { return nil }

func TestPrepareNamesAreUnique(t *testing.T) {
	s, _ := newTestStore(t)
	a := prepareAt(t, s, "v1.2.3", t0)
	b := prepareAt(t, s, "v1.2.3", t0)
	c := prepareAt(t, s, "v1.2.3+build/7", t0)
	want := []string{"v1.2.3-20261126T203015Z", "v1.2.3-20261126T203015Z-2", "v1.2.3+build_7-20261126T203015Z"}
	for i, got := range []string{a, b, c} {
		if filepath.Base(got) != want[i] || filepath.Dir(got) != filepath.Join(s.AppDir, "releases") {
			t.Errorf("release %d = %s, want releases/%s", i, got, want[i])
		}
	}
}

func TestSwitch(t *testing.T) {
	s, _ := newTestStore(t)
	a, b := twoReleases(t, s)
	versions := map[string]string{a: "v1", b: "v2"}
	for _, dir := range []string{a, b, a} {
		if err := s.Switch(dir); err != nil {
			t.Fatalf("Switch %s: %v", dir, err)
		}
		cur, err := s.Current()
		if err != nil || cur != dir {
			t.Fatalf("Current = %q, %v; want %q", cur, err, dir)
		}
		target, err := os.Readlink(filepath.Join(s.AppDir, "current"))
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join("releases", filepath.Base(dir)); target != want {
			t.Errorf("current -> %s, want the relative %s", target, want)
		}
		body, err := os.ReadFile(filepath.Join(s.AppDir, "current", "version"))
		if err != nil {
			t.Fatal(err)
		}
		if want := versions[dir]; string(body) != want {
			t.Errorf("current/version = %q, want %q", body, want)
		}
	}
}

func TestSwitchRefuses(t *testing.T) {
	s, root := newTestStore(t)
	good := prepareAt(t, s, "v1", t0)
	if err := os.WriteFile(filepath.Join(s.AppDir, "releases", "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(root, "elsewhere")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		wantErr string
	}{
		{name: "outside releases", dir: outside, wantErr: "is not a release directory"},
		{name: "releases itself", dir: filepath.Join(s.AppDir, "releases"), wantErr: "is not a release directory"},
		{name: "climbing out", dir: filepath.Join(s.AppDir, "releases", "..", "tmp"), wantErr: "is not a release directory"},
		{name: "nested", dir: filepath.Join(good, "sub"), wantErr: "is not a release directory"},
		{name: "missing", dir: filepath.Join(s.AppDir, "releases", "v9-20260101T000000Z"), wantErr: "no such file"},
		{name: "a file", dir: filepath.Join(s.AppDir, "releases", "file"), wantErr: "is a regular file, not a release directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Switch(tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Switch(%s) = %v, want an error containing %q", tt.dir, err, tt.wantErr)
			}
			if _, err := os.Lstat(filepath.Join(s.AppDir, "current")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("current was made: %v", err)
			}
		})
	}
}

// TestSwitchNeverMissing reads `current` in a loop while it is switched many
// times: every read must find a link to one of the two releases.
func TestSwitchNeverMissing(t *testing.T) {
	s, _ := newTestStore(t)
	a, b := twoReleases(t, s)
	if err := s.Switch(a); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(s.AppDir, "current")
	valid := map[string]bool{
		filepath.Join("releases", filepath.Base(a)): true,
		filepath.Join("releases", filepath.Base(b)): true,
	}
	var stop atomic.Bool
	var reads, misses atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			target, err := os.Readlink(link)
			reads.Add(1)
			if err != nil || !valid[target] {
				misses.Add(1)
				t.Errorf("readlink current = %q, %v", target, err)
			}
			if _, err := os.Stat(filepath.Join(link, "version")); err != nil {
				misses.Add(1)
				t.Errorf("stat current/version: %v", err)
			}
		}
	})
	for i := range 200 {
		dir := a
		if i%2 == 0 {
			dir = b
		}
		if err := s.Switch(dir); err != nil {
			t.Fatalf("Switch %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("the reader never ran")
	}
	t.Logf("%d reads during 200 switches, %d misses", reads.Load(), misses.Load())
	if cur, err := s.Current(); err != nil || cur != a {
		t.Errorf("Current = %q, %v; want %q", cur, err, a)
	}
	es, err := os.ReadDir(s.AppDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".current.tmp-") {
			t.Errorf("temporary link %s left behind", e.Name())
		}
	}
}

func TestCurrentErrors(t *testing.T) {
	tests := []struct {
		name    string
		make    func(t *testing.T, current string)
		wantErr string
	}{
		{
			name:    "a directory",
			make:    func(t *testing.T, current string) { mustMkdir(t, current) },
			wantErr: "is a directory, not a symlink",
		},
		{
			name: "dangling",
			make: func(t *testing.T, current string) {
				if err := os.Symlink("releases/gone", current); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "releases/gone: no such file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			mustMkdir(t, s.AppDir)
			tt.make(t, filepath.Join(s.AppDir, "current"))
			cur, err := s.Current()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || cur != "" {
				t.Errorf("Current = %q, %v; want an error containing %q", cur, err, tt.wantErr)
			}
		})
	}
}

func TestActivation(t *testing.T) {
	t.Run("rollback restores the previous release", func(t *testing.T) {
		s, _ := newTestStore(t)
		a := prepareAt(t, s, "v1", t0)
		b := prepareAt(t, s, "v2", t0.Add(time.Second))
		if err := s.Switch(a); err != nil {
			t.Fatal(err)
		}
		activate, rollback, err := s.Activation(b)
		if err != nil {
			t.Fatal(err)
		}
		mustCurrent(t, s, a) // Activation alone switches nothing
		if err := activate(); err != nil {
			t.Fatal(err)
		}
		mustCurrent(t, s, b)
		if err := rollback(); err != nil {
			t.Fatal(err)
		}
		mustCurrent(t, s, a)
	})
	t.Run("rollback restores a dangling current", func(t *testing.T) {
		s, _ := newTestStore(t)
		a := prepareAt(t, s, "v1", t0)
		mustMkdir(t, s.AppDir)
		link := filepath.Join(s.AppDir, "current")
		if err := os.Symlink("releases/removed-by-hand", link); err != nil {
			t.Fatal(err)
		}
		activateThenRollBack(t, s, a)
		if got, err := os.Readlink(link); err != nil || got != "releases/removed-by-hand" {
			t.Errorf("current -> %q, %v; want the old target back", got, err)
		}
	})
	t.Run("a directory at current is refused", func(t *testing.T) {
		s, _ := newTestStore(t)
		a := prepareAt(t, s, "v1", t0)
		mustMkdir(t, filepath.Join(s.AppDir, "current"))
		if _, _, err := s.Activation(a); err == nil || !strings.Contains(err.Error(), "is a directory, not a symlink") {
			t.Errorf("Activation = %v, want a refusal", err)
		}
	})
	t.Run("rollback of the first release removes current", func(t *testing.T) {
		s, _ := newTestStore(t)
		a := prepareAt(t, s, "v1", t0)
		activateThenRollBack(t, s, a)
		mustCurrent(t, s, "")
	})
}

func TestRemove(t *testing.T) {
	s, root := newTestStore(t)
	a, b := twoReleases(t, s)
	if err := s.Switch(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(a); err == nil || !strings.Contains(err.Error(), "is current") {
		t.Errorf("Remove(current) = %v, want a refusal", err)
	}
	if err := s.Remove(root); err == nil || !strings.Contains(err.Error(), "is not a release directory") {
		t.Errorf("Remove(%s) = %v, want a refusal", root, err)
	}
	if err := s.Remove(b); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Lstat(b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still there: %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(a, "version")); err != nil {
		t.Errorf("current release damaged: %v", err)
	}
	mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name string
		keep int
		// current is the index of the release `current` points at.
		current int
		// want are the indexes of the switched-to releases kept.
		want []int
	}{
		{name: "keep 3 with the oldest current", keep: 3, current: 0, want: []int{0, 3, 4}},
		{name: "keep 3 with the newest current", keep: 3, current: 4, want: []int{2, 3, 4}},
		{name: "keep 1 never removes current", keep: 1, current: 1, want: []int{1}},
		{name: "keep 0 counts as 1", keep: 0, current: 2, want: []int{2}},
		{name: "keep more than there are", keep: 10, current: 4, want: []int{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			var dirs []string
			for i := range 5 {
				// Out of order on purpose: names, not creation order, decide.
				at := t0.Add(time.Duration([]int{0, 2, 1, 3, 4}[i]) * time.Minute)
				dirs = append(dirs, prepareAt(t, s, "v1."+itoa(i), at))
			}
			dirs[1], dirs[2] = dirs[2], dirs[1]
			for _, d := range dirs {
				if err := s.Switch(d); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Switch(dirs[tt.current]); err != nil {
				t.Fatal(err)
			}
			// A hand-made directory without a timestamp, oldest by mtime.
			handmade := filepath.Join(s.AppDir, "releases", "handmade")
			mustMkdir(t, handmade)
			if err := os.Chtimes(handmade, t0.Add(-time.Hour), t0.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			// Prepared, not switched to yet: left alone.
			pending := prepareAt(t, s, "v9", t0.Add(-time.Hour))
			// What a crash leaves in tmp/.
			mustMkdir(t, filepath.Join(s.AppDir, "tmp", "stage-crashed", "bin"))
			if err := os.WriteFile(filepath.Join(s.AppDir, "tmp", "download-123"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}

			s.Keep = tt.keep
			if err := s.Prune(); err != nil {
				t.Fatalf("Prune: %v", err)
			}
			want := map[string]bool{filepath.Base(pending): true}
			for _, i := range tt.want {
				want[filepath.Base(dirs[i])] = true
			}
			if tt.keep >= 7 {
				want["handmade"] = true
			}
			es, err := os.ReadDir(filepath.Join(s.AppDir, "releases"))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, e := range es {
				got[e.Name()] = true
				if !want[e.Name()] {
					t.Errorf("kept %s", e.Name())
				}
			}
			for name := range want {
				if !got[name] {
					t.Errorf("removed %s", name)
				}
			}
			mustCurrent(t, s, dirs[tt.current])
			mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
		})
	}
}

func TestAtomicSymlink(t *testing.T) {
	tests := []struct {
		name    string
		before  func(t *testing.T, link string)
		wantErr string
	}{
		{name: "new link", before: func(*testing.T, string) {}},
		{
			name: "replaces a link",
			before: func(t *testing.T, link string) {
				if err := os.Symlink("old", link); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "replaces a dangling link",
			before: func(t *testing.T, link string) {
				if err := os.Symlink("/nonexistent/dewy", link); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "refuses a directory",
			before: func(t *testing.T, link string) {
				mustMkdir(t, link)
				if err := os.WriteFile(filepath.Join(link, "index.html"), []byte("user data"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "is a directory, not a symlink; move it away",
		},
		{
			name: "refuses a file",
			before: func(t *testing.T, link string) {
				if err := os.WriteFile(link, []byte("user data"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "is a regular file, not a symlink",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "target")
			mustMkdir(t, target)
			link := filepath.Join(dir, "html")
			tt.before(t, link)
			before := snapshot(t, dir)
			err := atomicfile.Symlink(target, link)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("atomicfile.Symlink = %v, want an error containing %q", err, tt.wantErr)
				}
				after := snapshot(t, dir)
				if len(after) != len(before) {
					t.Errorf("the refused call changed %s: %v -> %v", dir, before, after)
				}
				for p, n := range before {
					if after[p] != n {
						t.Errorf("%s changed: %+v -> %+v", p, n, after[p])
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("atomicfile.Symlink: %v", err)
			}
			got, err := os.Readlink(link)
			if err != nil || got != target {
				t.Errorf("link -> %q, %v; want %q", got, err, target)
			}
			es, _ := os.ReadDir(dir)
			if len(es) != 2 {
				t.Errorf("%s holds %d entries, want the target and the link", dir, len(es))
			}
		})
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustCurrent(t *testing.T, s *Store, want string) {
	t.Helper()
	cur, err := s.Current()
	if err != nil || cur != want {
		t.Errorf("Current = %q, %v; want %q", cur, err, want)
	}
}

// TestConcurrentUse prepares releases at the same instant from several
// goroutines while another prunes: every release gets its own directory and
// Prune removes none of them (they are prepared, not switched to yet), nor their
// files in progress in tmp/.
func TestConcurrentUse(t *testing.T) {
	s, _ := newTestStore(t)
	s.Keep = 1
	data := gzipOf(t, tarOf(t, ent{name: "app", mode: 0o755, body: strings.Repeat("x", 256<<10)}))
	const n = 4
	dirs := make([]string, n)
	var stop atomic.Bool
	var wg, pruner sync.WaitGroup
	pruner.Go(func() {
		for !stop.Load() {
			if err := s.Prune(); err != nil {
				t.Errorf("Prune: %v", err)
			}
		}
	})
	for i := range n {
		wg.Go(func() {
			p, err := s.Prepare(t.Context(), "v1", "app.tar.gz", int64(len(data)), sum(data), fromBytes(data))
			if err != nil {
				t.Errorf("Prepare %d: %v", i, err)
				return
			}
			dirs[i] = p.Dir
		})
	}
	wg.Wait()
	stop.Store(true)
	pruner.Wait()
	seen := map[string]bool{}
	for i, d := range dirs {
		if seen[d] {
			t.Errorf("release %d reuses %s", i, d)
		}
		seen[d] = true
		if _, err := os.Stat(filepath.Join(d, "app")); err != nil {
			t.Errorf("release %d: %v", i, err)
		}
	}
}

// activateThenRollBack switches current to the release dir, checks it, and
// rolls the switch back.
func activateThenRollBack(t *testing.T, s *Store, dir string) {
	t.Helper()
	activate, rollback, err := s.Activation(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := activate(); err != nil {
		t.Fatal(err)
	}
	mustCurrent(t, s, dir)
	if err := rollback(); err != nil {
		t.Fatal(err)
	}
}
