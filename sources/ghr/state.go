package ghr

import (
	"encoding/json"
	"fmt"
)

// stateVersion is the format of SaveState's JSON.
const stateVersion = 1

// state is what SaveState writes: the cache, and whose cache it is.
type state struct {
	Version int `json:"version"`
	// API and Repo say which listing the pages belong to; LoadState ignores a
	// state saved for another repository or API root.
	API   string `json:"api"`
	Repo  string `json:"repo"`
	Pages []page `json:"pages"`
}

// SaveState returns the cache (each page's ETag and releases) as JSON. Before
// the first complete listing it holds no pages.
func (g *GitHub) SaveState() ([]byte, error) {
	g.mu.Lock()
	st := state{Version: stateVersion, API: g.apiURL.String(), Repo: g.owner + "/" + g.repo, Pages: g.pages}
	b, err := json.Marshal(st)
	g.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("ghr %s/%s: save state: %w", g.owner, g.repo, err)
	}
	return b, nil
}

// LoadState restores a cache SaveState wrote, so the next poll can be answered
// 304. Empty input is no state. A state saved for another repository or API
// root is ignored. Malformed input is an error and leaves the cache as it was.
func (g *GitHub) LoadState(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("ghr %s/%s: load state: %w", g.owner, g.repo, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("ghr %s/%s: load state: unsupported version %d (want %d)", g.owner, g.repo, st.Version, stateVersion)
	}
	if st.API != g.apiURL.String() || st.Repo != g.owner+"/"+g.repo {
		g.log.Debug("ignoring saved state of another repository", "saved_repo", st.Repo, "saved_api", st.API)
		return nil
	}
	// The pages must be one walk: page 1 first, each pointing at the one
	// after it, the last at none.
	for i, p := range st.Pages {
		want := 0
		if i+1 < len(st.Pages) {
			want = st.Pages[i+1].Number
		}
		if (i == 0 && p.Number != 1) || p.Number <= 0 || p.Next != want || (want != 0 && want <= p.Number) {
			return fmt.Errorf("ghr %s/%s: load state: page %d (next %d) at position %d of %d does not belong to one listing", g.owner, g.repo, p.Number, p.Next, i+1, len(st.Pages))
		}
	}
	g.mu.Lock()
	g.pages = st.Pages
	g.mu.Unlock()
	return nil
}
