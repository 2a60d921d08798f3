package agent

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployErrorsDoNotStutter deploys releases that fail at different layers
// and checks the recorded error: the worker names the version once, each layer
// below adds its own context once.
func TestDeployErrorsDoNotStutter(t *testing.T) {
	cases := []struct {
		name   string
		runner string
		// break makes v1.0.0 fail.
		breakIt func(e *env)
		want    string // the whole error, when it is fixed
		cause   string // else a part it must end with
	}{
		{
			name:   "server exits before it is healthy",
			runner: "runner \"server\" {\n    command = [\"/bin/sh\", \"-c\", \"exit 3\"]\n  }",
			want:   "deploy v1.0.0: server: bad release: exited before it was healthy (exit status 3)",
		},
		{
			name:   "checksum mismatch",
			runner: "runner \"assets\" {}",
			breakIt: func(e *env) {
				os.WriteFile(filepath.Join(e.reg, "v1.0.0", "SHA256SUMS"), []byte(fmt.Sprintf("%x  site.tar.gz\n", sha256.Sum256([]byte("other")))), 0o644)
			},
			cause: "checksum mismatch",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if c.breakIt != nil {
				c.breakIt(e)
			}
			e.write(fmt.Sprintf("agent {\n  state_dir = %q\n  admin = \"\"\n}\napp \"site\" {\n  registry = \"file://%s\"\n  artifact = \"site.tar.gz\"\n  interval = \"1h\"\n  %s\n}\n", e.state, e.reg, c.runner))
			a := e.start(Options{})
			var msg string
			waitFor(t, "the deploy to fail", func() bool {
				w := a.worker("site")
				if w == nil {
					return false
				}
				st, _ := loadState(w.dir)
				msg = st.LastError
				return msg != "" && len(st.Bad) == 1
			})
			t.Logf("recorded error: %s", msg)
			if c.want != "" && msg != c.want {
				t.Errorf("error = %q\nwant    %q", msg, c.want)
			}
			if !strings.Contains(msg, c.cause) {
				t.Errorf("error = %q, want it to tell %q", msg, c.cause)
			}
			if n := strings.Count(msg, "v1.0.0"); n != 1 {
				t.Errorf("error = %q names the version %d times, want once", msg, n)
			}
			parts := strings.Split(strings.TrimPrefix(msg, "deploy v1.0.0: "), ": ")
			seen := map[string]bool{}
			for _, p := range parts {
				if seen[p] {
					t.Errorf("error = %q repeats %q", msg, p)
				}
				seen[p] = true
			}
			if p := strings.Fields(parts[0])[0]; strings.Contains(strings.Join(parts[1:], ": "), p+" ") {
				t.Errorf("error = %q: %q is said twice", msg, p)
			}
		})
	}
}
