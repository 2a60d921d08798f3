package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestRepairAtStart leaves the app directory as a crash or a hand might, and
// starts the agent on it: it keeps the deployed version, points `current` at
// a complete release, rebuilds state.json and clears staging, alone.
func TestRepairAtStart(t *testing.T) {
	const (
		v100 = "releases/v1.0.0-20260101T000000Z"
		v110 = "releases/v1.1.0-20260102T000000Z" // newer, but never live (rolled back)
	)
	tests := []struct {
		name    string
		state   string // state.json; "" for none
		current func(t *testing.T, app string)
		// wantDamaged: state.json is moved aside.
		wantDamaged bool
		wantRelease string
	}{
		{
			name:        "damaged state.json keeps the deployed version",
			state:       `{"version": "v1.0.0", "rele`,
			current:     symlinkTo(v100),
			wantDamaged: true,
			wantRelease: v100,
		},
		{
			name:        "dangling current is pointed at the release state names",
			state:       `{"version": "v1.0.0", "release": "` + v100 + `"}`,
			current:     symlinkTo("releases/v0.9.0-20251201T000000Z"),
			wantRelease: v100,
		},
		{
			name:        "missing current",
			state:       `{"version": "v1.0.0", "release": "` + v100 + `"}`,
			current:     func(*testing.T, string) {},
			wantRelease: v100,
		},
		{
			name:  "current that is a directory, no state: the newest good release",
			state: `{"bad": [{"version": "v1.1.0", "reason": "health check failed", "at": "2026-01-02T00:00:00Z"}]}`,
			current: func(t *testing.T, app string) {
				if err := os.MkdirAll(filepath.Join(app, "current", "x"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantRelease: v100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.write(e.config("1h", "site"))
			app := filepath.Join(e.state, "apps", "site")
			for _, r := range []string{v100, v110} {
				testkit.WriteFile(t, filepath.Join(app, r, "index.html"), filepath.Base(r)+"\n")
			}
			testkit.WriteFile(t, filepath.Join(app, "tmp", "stage-123", "half.bin"), "half")
			testkit.WriteFile(t, filepath.Join(app, "tmp", "download-456"), "partial")
			if tt.state != "" {
				testkit.WriteFile(t, filepath.Join(app, stateFile), tt.state)
			}
			tt.current(t, app)

			_, w, _ := e.startPolled()

			target, err := os.Readlink(filepath.Join(app, "current"))
			if err != nil || target != tt.wantRelease {
				t.Fatalf("current -> %q (%v), want %s", target, err, tt.wantRelease)
			}
			st, err := loadState(app)
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != "v1.0.0" || st.Release != tt.wantRelease {
				t.Fatalf("state = %+v, want v1.0.0 in %s", st, tt.wantRelease)
			}
			if s := w.snapshot(); s.Deployed != "v1.0.0" {
				t.Fatalf("status = %+v, want v1.0.0 deployed", s)
			}
			if tmp, _ := os.ReadDir(filepath.Join(app, "tmp")); len(tmp) != 0 {
				t.Fatalf("staging left: %v", tmp)
			}
			_, err = os.Stat(filepath.Join(app, stateFile+".damaged"))
			if got := err == nil; got != tt.wantDamaged {
				t.Fatalf("state.json.damaged exists: %v, want %v", got, tt.wantDamaged)
			}
		})
	}
}

func symlinkTo(target string) func(t *testing.T, app string) {
	return func(t *testing.T, app string) {
		if err := os.Symlink(target, filepath.Join(app, "current")); err != nil {
			t.Fatal(err)
		}
	}
}
