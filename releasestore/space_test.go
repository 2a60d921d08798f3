package releasestore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSpace is a probe that reports a fixed file system.
func fakeSpace(sp Space) func(string) (Space, error) {
	return func(string) (Space, error) { return sp, nil }
}

const mib = 1 << 20

func TestPrepareKeepsTheReserve(t *testing.T) {
	zeros := func(t *testing.T) []byte {
		return gzipOf(t, tarOf(t, ent{name: "zeros", body: strings.Repeat("\x00", 12*mib)}))
	}
	var many []ent
	for i := range 300 {
		many = append(many, ent{name: "f/" + itoa(i), body: "x"})
	}
	manyFiles := func(t *testing.T) []byte { return gzipOf(t, tarOf(t, many...)) }
	small := func(t *testing.T) []byte { return gzipOf(t, tarOf(t, ent{name: "a", body: "hello"})) }

	tests := []struct {
		name    string
		space   Space
		reserve Reserve
		data    func(t *testing.T) []byte
		wantErr string // "" for success
	}{
		{
			name:  "download larger than the space above the reserve",
			space: Space{AvailBytes: 10 * mib, TotalBytes: 100 * mib, AvailInodes: 1000, TotalInodes: 1000, BlockSize: 4096},
			// The artifact is ~12 KiB; 10 MiB free minus a 9.99 MiB reserve leaves less.
			reserve: Reserve{Bytes: 10*mib - 1000},
			data:    zeros, wantErr: "bytes free, the artifact needs",
		},
		{
			name:    "bomb stopped while extracting",
			space:   Space{AvailBytes: 10 * mib, TotalBytes: 100 * mib, AvailInodes: 1000, TotalInodes: 1000, BlockSize: 4096},
			reserve: Reserve{Bytes: 2 * mib},
			data:    zeros, wantErr: "extracting would leave less than the reserve",
		},
		{
			name:    "percent reserve",
			space:   Space{AvailBytes: 15 * mib, TotalBytes: 100 * mib, AvailInodes: 1000, TotalInodes: 1000, BlockSize: 4096},
			reserve: Reserve{Percent: 10},
			data:    zeros, wantErr: "extracting would leave less than the reserve",
		},
		{
			name:    "inodes",
			space:   Space{AvailBytes: 90 * mib, TotalBytes: 100 * mib, AvailInodes: 200, TotalInodes: 1000, BlockSize: 4096},
			reserve: Reserve{Bytes: mib},
			data:    manyFiles, wantErr: "fewer free inodes than the reserve",
		},
		{
			name:    "no inodes left at all",
			space:   Space{AvailBytes: 90 * mib, TotalBytes: 100 * mib, AvailInodes: 5, TotalInodes: 1000, BlockSize: 4096},
			reserve: Reserve{Bytes: mib},
			data:    small, wantErr: "inodes free",
		},
		{
			name:    "enough space",
			space:   Space{AvailBytes: 90 * mib, TotalBytes: 100 * mib, AvailInodes: 1000, TotalInodes: 1000, BlockSize: 4096},
			reserve: Reserve{Percent: 5},
			data:    zeros,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			s.Probe = fakeSpace(tt.space)
			s.Reserve = tt.reserve
			data := tt.data(t)
			p, err := s.Prepare(t.Context(), "v1.0.0", "a.tar.gz", int64(len(data)), "", fromBytes(data))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Prepare: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Prepare made %s, want a disk-full error", p.Dir)
			}
			if !errors.Is(err, ErrDiskFull) || errors.Is(err, ErrBadArtifact) {
				t.Errorf("err = %v: want ErrDiskFull and not ErrBadArtifact", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantErr)
			}
			mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
			mustEmptyDir(t, filepath.Join(s.AppDir, "releases"))
		})
	}
}

func TestDefaultReserveOnSmallDisks(t *testing.T) {
	if got := DefaultReserve.bytes(512 * mib); got != 512*mib/20 {
		t.Errorf("default reserve on 512 MiB = %d, want 5%%", got)
	}
	if got := DefaultReserve.bytes(1 << 40); got != 1<<30 {
		t.Errorf("default reserve on 1 TiB = %d, want 1 GiB", got)
	}
	if got := (Reserve{Bytes: 600 * mib}).bytes(512 * mib); got != 600*mib {
		t.Errorf("an explicit reserve = %d, want it kept", got)
	}
}

// TestPrepareOnASmallFileSystem fills a real 16 MiB tmpfs with a bomb: the
// extraction stops before the reserve and leaves the file system as it was.
func TestPrepareOnASmallFileSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a file system")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,nr_inodes=4000", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	before, err := StatFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(filepath.Join(dir, "app"), 3, nil)
	s.Reserve = Reserve{Bytes: 4 * mib}
	data := gzipOf(t, tarOf(t, ent{name: "zeros", body: strings.Repeat("\x00", 64*mib)}))
	_, err = s.Prepare(t.Context(), "v1.0.0", "bomb.tar.gz", int64(len(data)), "", fromBytes(data))
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("err = %v, want ErrDiskFull", err)
	}
	mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
	after, err := StatFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The app's two empty directories stay; the bomb's bytes are gone.
	if after.AvailBytes+64*1024 < before.AvailBytes {
		t.Errorf("free space %d after, %d before: staging left behind", after.AvailBytes, before.AvailBytes)
	}
	// A normal release still fits.
	ok := gzipOf(t, tarOf(t, ent{name: "app", body: "hi"}))
	if _, err := s.Prepare(t.Context(), "v1.0.1", "ok.tar.gz", int64(len(ok)), "", fromBytes(ok)); err != nil {
		t.Fatalf("Prepare after the refusal: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.AppDir, "releases")); err != nil {
		t.Fatal(err)
	}
}
