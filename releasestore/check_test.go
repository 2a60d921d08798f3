package releasestore

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestPrepareChecked: the check sees exactly the downloaded bytes, after the
// checksum and before extraction; a refusal leaves no release and no
// temporary file behind, and its error stays matchable.
func TestPrepareChecked(t *testing.T) {
	archiveData := gzipOf(t, tarOf(t, ent{name: "version", mode: 0o644, body: "v1"}))
	binary := []byte("#!/bin/sh\necho hi\n")
	errRefused := errors.New("refused by the check")
	tests := []struct {
		name   string
		file   string
		data   []byte
		sum    string
		refuse bool
		// checked: whether the check must run at all.
		checked bool
	}{
		{name: "archive passes", file: "app.tar.gz", data: archiveData, checked: true},
		{name: "bare executable passes", file: "app", data: binary, checked: true},
		{name: "archive refused", file: "app.tar.gz", data: archiveData, refuse: true, checked: true},
		{name: "bare executable refused", file: "app", data: binary, refuse: true, checked: true},
		{name: "checksum mismatch is found first", file: "app", data: binary, sum: sum([]byte("other")), checked: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "app")
			s := NewStore(dir, 3, nil)
			want := tt.sum
			if want == "" {
				want = sum(tt.data)
			}
			var seen []byte
			ran := false
			check := func(r io.ReaderAt, size int64) error {
				ran = true
				seen = make([]byte, size)
				if _, err := r.ReadAt(seen, 0); err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("ReadAt: %v", err)
				}
				// Nothing is extracted yet.
				if ents, _ := os.ReadDir(filepath.Join(dir, releasesName)); len(ents) != 0 {
					t.Errorf("a release exists while the check runs: %v", ents)
				}
				if tt.refuse {
					return errRefused
				}
				return nil
			}
			p, err := s.PrepareChecked(t.Context(), "v1.0.0", tt.file, int64(len(tt.data)), want, fromBytes(tt.data), check)
			if ran != tt.checked {
				t.Fatalf("check ran = %v, want %v (err %v)", ran, tt.checked, err)
			}
			if ran && string(seen) != string(tt.data) {
				t.Errorf("check saw %d bytes that differ from the artifact's %d", len(seen), len(tt.data))
			}
			if tt.refuse || !tt.checked {
				if err == nil {
					t.Fatal("PrepareChecked passed")
				}
				if tt.refuse && !errors.Is(err, errRefused) {
					t.Errorf("err = %v, want it to wrap the check's", err)
				}
				ents, _ := os.ReadDir(filepath.Join(dir, releasesName))
				tmp, _ := os.ReadDir(filepath.Join(dir, tmpName))
				if len(ents)+len(tmp) != 0 {
					t.Errorf("left behind: releases %v, tmp %v", ents, tmp)
				}
				return
			}
			if err != nil {
				t.Fatalf("PrepareChecked: %v", err)
			}
			if _, err := os.Stat(p.Dir); err != nil {
				t.Errorf("release dir: %v", err)
			}
		})
	}
}
