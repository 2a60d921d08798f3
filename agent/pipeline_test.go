package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/container"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// pinSource is an image registry whose Pin answers with err, or with ref.
type pinSource struct {
	ref string
	err error
}

func (s pinSource) Releases(context.Context) ([]version.Release, error) { return nil, nil }
func (s pinSource) Open(context.Context, version.Release, version.Asset) (io.ReadCloser, error) {
	return nil, errors.New("images are not files")
}
func (s pinSource) Pin(context.Context, version.Release, string) (string, error) { return s.ref, s.err }

// TestImagePipelinePin: a release a source calls incompatible with this host
// is a bad release (recorded, not retried); other pin errors are not.
func TestImagePipelinePin(t *testing.T) {
	cand := &version.Candidate{Version: version.FromSemver(semver.MustParse("v1.2.0")), Release: version.Release{Tag: "v1.2.0"}}
	tests := []struct {
		name    string
		src     pinSource
		want    string // the pinned image
		wantBad bool
		wantErr bool
	}{
		{name: "pinned", src: pinSource{ref: "reg/app@sha256:abc"}, want: "reg/app@sha256:abc"},
		{name: "no image for this host", src: pinSource{err: fmt.Errorf("img reg/app: pin v1.2.0: %w", sources.ErrIncompatible)}, wantErr: true, wantBad: true},
		{name: "registry down", src: pinSource{err: errors.New("img reg/app: connection refused")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(runners.Image, tt.src, nil, nil, t.TempDir(), slog.New(slog.DiscardHandler))
			s, err := p.prepare(t.Context(), cand)
			if (err != nil) != tt.wantErr {
				t.Fatalf("prepare error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				var de *deployError
				if !errors.As(err, &de) || de.step != "pin" {
					t.Errorf("error %v is not a pin step's", err)
				}
				if got := errors.Is(err, runners.ErrBadRelease); got != tt.wantBad {
					t.Errorf("errors.Is(err, ErrBadRelease) = %v, want %v (%v)", got, tt.wantBad, err)
				}
				return
			}
			if s.d.Image != tt.want || s.d.Version != "v1.2.0" || s.d.Dir != "" {
				t.Errorf("deployment = %+v, want image %s", s.d, tt.want)
			}
		})
	}
}

// TestUpdateSavesOnlyChanges: update writes state.json when the state changed,
// not when a change leaves it as it was, and status follows the state.
func TestUpdateSavesOnlyChanges(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "apps", "site")
	w := &worker{app: config.App{Name: "site"}, dir: dir, logger: slog.New(slog.DiscardHandler), metrics: newMetrics(), now: time.Now}
	path := filepath.Join(dir, stateFile)

	w.update(func(st *State) { st.LastError = "" })
	if _, err := os.Stat(path); err == nil {
		t.Fatal("an update that changed nothing wrote state.json")
	}
	w.update(func(st *State) { st.Version, st.Deploys = "v1.0.0", 1 })
	st, err := loadState(dir)
	if err != nil || st.Version != "v1.0.0" || st.Deploys != 1 {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if s := w.snapshot(); s.Deployed != "v1.0.0" || s.Deploys != 1 {
		t.Fatalf("status = %+v, want it to follow the state", s)
	}
	os.Remove(path)
	w.update(func(st *State) { st.Version = "v1.0.0" })
	w.update(func(st *State) { st.Bad = append(st.Bad[:0:0], st.Bad...) })
	if _, err := os.Stat(path); err == nil {
		t.Fatal("updates that changed nothing wrote state.json again")
	}
	w.update(func(st *State) { st.Bad = append(st.Bad, BadVersion{Version: "v1.1.0", Reason: "bad release"}) })
	if st, _ := loadState(dir); len(st.Bad) != 1 || st.Version != "v1.0.0" {
		t.Fatalf("state = %+v, want v1.0.0 with v1.1.0 bad", st)
	}
}

// The container runner declares the capability the image pipeline asks for.
var _ runners.Platformer = (*container.Container)(nil)
