package agent

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/archive"
)

// TestBadReleasesNeverReplaceAGoodOne publishes releases that must be refused (a
// checksum mismatch, an archive escaping its folder) after a good one: each leaves
// the good release current, is recorded as bad and is not retried until asked.
func TestBadReleasesNeverReplaceAGoodOne(t *testing.T) {
	cases := []struct {
		name    string
		publish func(e *env, v string)
		reason  string
	}{
		{"checksum mismatch", func(e *env, v string) {
			e.publish(v)
			os.WriteFile(filepath.Join(e.reg, v, "SHA256SUMS"), []byte(fmt.Sprintf("%x  site.tar.gz\n", sha256.Sum256([]byte("other")))), 0o644)
		}, "checksum mismatch"},
		{"zip-slip archive", func(e *env, v string) {
			writeTarGz(t, filepath.Join(e.reg, v, "site.tar.gz"), "../../../../evil.html", "owned")
		}, ".."},
		{"absolute path archive", func(e *env, v string) {
			writeTarGz(t, filepath.Join(e.reg, v, "site.tar.gz"), filepath.Join(e.dir, "abs-evil.html"), "owned")
		}, "absolute"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			a, w, clk := e.startSite()
			c.publish(e, "v1.1.0")

			pollNow(t, clk, w)
			st, _ := loadState(w.dir)
			if _, bad := st.isBad("v1.1.0"); !bad {
				t.Fatalf("v1.1.0 is not marked bad after a poll: %+v", st)
			}
			if st.Version != "v1.0.0" || !strings.Contains(st.Bad[0].Reason, c.reason) {
				t.Fatalf("state = %+v, want v1.0.0 deployed and a reason with %q", st, c.reason)
			}
			body, _ := os.ReadFile(filepath.Join(w.dir, "current", "index.html"))
			if string(body) != "v1.0.0\n" {
				t.Fatalf("current serves %q", body)
			}
			entries, _ := os.ReadDir(filepath.Join(w.dir, "releases"))
			tmp, _ := os.ReadDir(filepath.Join(w.dir, "tmp"))
			if len(entries) != 1 || len(tmp) != 0 {
				t.Fatalf("releases %d, tmp %d: want 1 and 0", len(entries), len(tmp))
			}
			for _, p := range []string{filepath.Join(e.dir, "evil.html"), filepath.Join(e.dir, "abs-evil.html"), "/evil.html"} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("%s was written", p)
				}
			}

			// Not retried: polls go on, no new attempt is recorded.
			for range 2 {
				pollNow(t, clk, w)
			}
			if now, _ := loadState(w.dir); len(now.Bad) != 1 || !now.Bad[0].At.Equal(st.Bad[0].At) {
				t.Fatalf("bad version retried: %+v, want only %+v", now.Bad, st.Bad)
			}
			if n := w.polls.Load(); n != 4 {
				t.Fatalf("%d polls, want 4 (the first, the failed deploy and two more)", n)
			}
			if s := w.snapshot(); !strings.Contains(s.LastError, "marked bad") || s.Deployed != "v1.0.0" {
				t.Fatalf("status = %+v", s)
			}

			// A retry forgets it and tries again (and fails again).
			before := w.polls.Load()
			if err := a.Retry("site"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a retry", func() bool {
				st, _ := loadState(w.dir)
				return w.polls.Load() > before && len(st.Bad) == 1 && st.Bad[0].At.After(st.DeployedAt.Add(time.Second))
			})

			// A newer good release is deployed at the next poll.
			e.publish("v1.2.0")
			pollNow(t, clk, w)
			if got := w.snapshot().Deployed; got != "v1.2.0" {
				t.Fatalf("deployed %s after a poll, want v1.2.0", got)
			}
		})
	}
}

func writeTarGz(t *testing.T, path, name, body string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := archive.WriteFile(path, archive.TarGz, archive.File{Name: "index.html", Body: []byte("ok\n")}, archive.File{Name: name, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
}
