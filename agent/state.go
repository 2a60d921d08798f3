package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// State is one app's state.json: what is deployed and what the agent remembers
// between restarts. It is written atomically (temp file, fsync, rename).
type State struct {
	// Version is the deployed tag ("v1.2.3"); empty before the first deploy.
	Version string `json:"version,omitempty"`
	// Image is the deployed image, pinned by digest (container runner).
	Image string `json:"image,omitempty"`
	// Artifact is the deployed artifact's name and SHA256 its digest.
	Artifact string `json:"artifact,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	// Verified is what the deployed artifact's signature check found
	// (signing.Verified's String); "" without a verify block.
	Verified string `json:"verified,omitempty"`
	// Release is the deployed release directory, relative to the app directory.
	Release string `json:"release,omitempty"`
	// DeployedAt is when Version was made current.
	DeployedAt time.Time `json:"deployed_at,omitzero"`
	// Deploys counts successful deploys over the app's life.
	Deploys int `json:"deploys,omitempty"`
	// LastError is the last poll or deploy error, cleared by a good poll.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError first happened (a repeat keeps it).
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Bad lists versions whose deploy failed in a way a retry cannot fix (a
	// checksum mismatch, an unsafe archive, a release that failed its health
	// check). They are not tried again until a newer version appears or the
	// operator clears them (dewy-agent retry).
	Bad []BadVersion `json:"bad,omitempty"`
	// Deploying is the deploy in flight, recorded before `current` switches
	// (see inflight.go); nil when none is.
	Deploying *DeployInFlight `json:"deploying,omitempty"`
	// Source is the registry source's own persisted state (ETags and the list
	// they validate), opaque to the agent.
	Source json.RawMessage `json:"source,omitempty"`
}

// BadVersion is one version that will not be deployed again, as long as the
// registry offers the same artifact for it.
type BadVersion struct {
	Version string `json:"version"`
	// Artifact is the identity of what failed (see artifactIdentity): a
	// version republished with another artifact is tried again. Empty in
	// state written before it existed, which marks every artifact of the
	// version bad.
	Artifact string    `json:"artifact,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// isBad reports whether version, offered as the artifact ident, is recorded
// as bad. ident "" matches any record of the version.
func (st *State) isBad(version string, ident ...string) (BadVersion, bool) {
	for _, b := range st.Bad {
		if b.Version != version {
			continue
		}
		if b.Artifact == "" || len(ident) == 0 || ident[0] == "" || b.Artifact == ident[0] {
			return b, true
		}
	}
	return BadVersion{}, false
}

const stateFile = "state.json"

// loadState reads the state in dir. A missing file is the zero State.
func loadState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("read state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

// save writes the state in dir atomically.
func (st State) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, stateFile), append(b, '\n'), 0o600)
}
