package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

// TestDiskFullIsNotABadVersion: a release that does not fit above the reserve
// is reported as disk_full (state, status, metric), not marked bad, and is
// deployed once there is room.
func TestDiskFullIsNotABadVersion(t *testing.T) {
	const total = 100 << 30
	disk := newFakeDisk(total, total>>10)
	disk.avail.Store(total / 2)
	disk.inodes.Store(total >> 11)
	_, w, clk := startOnDisk(t, disk, "99.99%")

	s := w.snapshot()
	if s.State != StateDiskFull || !strings.Contains(s.LastError, "disk full") || s.Deployed != "" {
		t.Fatalf("status = %+v, want state disk_full", s)
	}
	if st, _ := loadState(w.dir); len(st.Bad) != 0 {
		t.Fatalf("bad = %+v, want none: a full disk says nothing about the version", st.Bad)
	}
	if v := gauge(t, w); v != 1 {
		t.Fatalf("dewy_disk_full = %v, want 1", v)
	}
	if tmp, _ := os.ReadDir(filepath.Join(w.dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("staging left behind: %d entries", len(tmp))
	}

	// Space was freed: the next look at the disk tries again, and deploys.
	disk.avail.Store(total)
	disk.inodes.Store(total >> 10)
	waitFor(t, "the wait for room", func() bool { return clk.pending(diskFullRecheck) == 1 })
	polls := w.polled.Load()
	clk.Advance(diskFullRecheck)
	// The whole poll, not just the deploy: the gauge is reset after status
	// shows the new version.
	waitFor(t, "the poll after the recheck", func() bool { return w.polled.Load() > polls })
	if s := w.snapshot(); s.Deployed != "v1.0.0" {
		t.Fatalf("status = %+v, want v1.0.0 deployed once there is room", s)
	}
	if v := gauge(t, w); v != 0 {
		t.Fatalf("dewy_disk_full = %v, want 0", v)
	}
}

// TestBadMarkFollowsTheArtifact: a version marked bad is tried again once the
// registry offers another artifact for it.
func TestBadMarkFollowsTheArtifact(t *testing.T) {
	e := newEnv(t)
	_, w, clk := e.startSite()

	art := filepath.Join(e.reg, "v1.1.0", "site.tar.gz")
	writeTarGz(t, art, "../../escape.html", "x")
	old := time.Now().Add(-time.Hour)
	os.Chtimes(art, old, old)
	pollNow(t, clk, w)
	st, _ := loadState(w.dir)
	if len(st.Bad) != 1 || st.Bad[0].Version != "v1.1.0" || !strings.Contains(st.Bad[0].Artifact, "site.tar.gz size=") {
		t.Fatalf("bad = %+v, want v1.1.0 with its artifact's identity", st.Bad)
	}

	// Republished, fixed: another size and time.
	e.publish("v1.1.0")
	os.Chtimes(art, old.Add(time.Minute), old.Add(time.Minute))
	pollNow(t, clk, w)
	if s := w.snapshot(); s.Deployed != "v1.1.0" {
		t.Fatalf("status = %+v, want the republished v1.1.0 deployed", s)
	}
}

// TestTruncatedArtifactIsRetriedBeforeMarkedBad: an archive that ends early
// (a copy in progress, a cut connection) is retried with backoff; only the
// same artifact failing maxTransientTries times in a row marks it bad.
func TestTruncatedArtifactIsRetriedBeforeMarkedBad(t *testing.T) {
	e := newEnv(t)
	_, w, clk := e.startSite()

	full := site("v1.1.0")
	art := filepath.Join(e.reg, "v1.1.0", "site.tar.gz")
	os.MkdirAll(filepath.Dir(art), 0o755)
	os.WriteFile(art, full[:len(full)/2], 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(art, old, old)
	for i := 1; i < maxTransientTries; i++ {
		pollNow(t, clk, w)
		st, _ := loadState(w.dir)
		if len(st.Bad) != 0 || !strings.Contains(st.LastError, "truncated") {
			t.Fatalf("after %d tries: bad %+v, last error %q; want not bad yet", i, st.Bad, st.LastError)
		}
	}
	pollNow(t, clk, w)
	st, _ := loadState(w.dir)
	if len(st.Bad) != 1 || !strings.Contains(st.Bad[0].Reason, "failed 3 times in a row") {
		t.Fatalf("bad = %+v, want v1.1.0 marked bad after %d tries", st.Bad, maxTransientTries)
	}
	if st.Version != "v1.0.0" {
		t.Fatalf("deployed %s, want v1.0.0 still", st.Version)
	}
}

// TestOldBadMarksStillApply: state.json written before bad marks had an
// artifact identity is read, and its marks apply to any artifact.
func TestOldBadMarksStillApply(t *testing.T) {
	dir := t.TempDir()
	old := `{"version":"v1.0.0","bad":[{"version":"v1.1.0","reason":"checksum mismatch","at":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := st.isBad("v1.1.0", "site.tar.gz size=10"); !bad {
		t.Fatal("an old bad mark does not apply")
	}
	st.Bad = append(st.Bad, BadVersion{Version: "v1.2.0", Artifact: "a size=1"})
	if _, bad := st.isBad("v1.2.0", "a size=2"); bad {
		t.Fatal("a mark for another artifact applies")
	}
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"artifact":"a size=1"`) {
		t.Fatalf("saved %s", b)
	}
}

// gauge reads the app's dewy_disk_full.
func gauge(t *testing.T, w *worker) float64 {
	t.Helper()
	var m dto.Metric
	if err := w.metrics.diskFull.WithLabelValues(w.app.Name).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestArtifactIdentityNamesSignatures: with signature checks, a signature
// uploaded or replaced beside the artifact changes the identity, so a version
// refused for its signature is tried again; without them, nothing beside the
// artifact counts.
func TestArtifactIdentityNamesSignatures(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	art := version.Asset{Name: "site.tar.gz", Size: 100, Created: at}
	cand := func(assets ...version.Asset) *version.Candidate {
		return &version.Candidate{Release: version.Release{Tag: "v1", Assets: append([]version.Asset{art}, assets...)}, Artifact: art}
	}
	sig := version.Asset{Name: "site.tar.gz.minisig", Size: 300, Created: at}
	newer := sig
	newer.Created = at.Add(time.Minute)
	other := version.Asset{Name: "site.tar.gz.sigstore.json", Size: 5000, Created: at}
	suffixes := []string{".minisig", ".sig"}

	none := artifactIdentity(cand(), suffixes)
	signed := artifactIdentity(cand(sig), suffixes)
	resigned := artifactIdentity(cand(newer), suffixes)
	if none == signed || signed == resigned || none == resigned {
		t.Errorf("identities do not follow the signature: none %q, signed %q, re-signed %q", none, signed, resigned)
	}
	if got := artifactIdentity(cand(sig, other), suffixes); got != signed {
		t.Errorf("a file the app does not check changed the identity: %q, want %q", got, signed)
	}
	if got, want := artifactIdentity(cand(sig), nil), artifactIdentity(cand(), nil); got != want {
		t.Errorf("without a verify block a signature changed the identity: %q, want %q", got, want)
	}
	if !strings.Contains(none, ".minisig=none") || !strings.Contains(none, ".sig=none") {
		t.Errorf("identity %q does not say no signature is present", none)
	}
}
