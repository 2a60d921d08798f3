package hooks

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// TestRunCleanEnvAndScrubbedOutput runs a hook that prints its whole
// environment and then every secret the agent knows: it sees only the
// allowed variables, and neither the log nor Result.Output holds a secret.
func TestRunCleanEnvAndScrubbedOutput(t *testing.T) {
	agentSecrets := map[string]string{
		"GITHUB_TOKEN":          "ghp_agentGithubToken0001",
		"GH_TOKEN":              "gho_agentGhToken0002",
		"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN":     "FwoGZXIvYXdzEXAMPLESESSION",
		"SLACK_TOKEN":           "xoxb-agent-slack-token",
		"DB_PASSWORD":           "hunter2-db-password",
		"VENDOR_API_SECRET":     "vendor-secret-value",
	}
	for k, v := range agentSecrets {
		t.Setenv(k, v)
	}
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("HOME", "/home/agent")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "UTC")
	t.Setenv("USER", "dewy")
	t.Setenv("UNRELATED", "not-for-hooks")
	t.Setenv("DEWY_ADMIN_TOKEN", "agent-admin-token-1")

	configSecret := "from-config-env-secret" // a value env() gave in the config
	notifier := "slack://hooks.slack.com/services/T000/B000/XXXXwebhooksecretXXXX"
	environ := []string{}
	for k, v := range agentSecrets {
		environ = append(environ, k+"="+v)
	}
	environ = append(environ, "DEWY_ADMIN_TOKEN=agent-admin-token-1", "UNRELATED=not-for-hooks")
	secrets := append([]string{configSecret}, URLSecrets(notifier)...)
	sc := NewScrubber(append(secrets, EnvSecrets(environ)...)...)

	// The hook prints its environment, then echoes each secret as if it had
	// found it some other way (a file, a vault), including the one the
	// hook block passes in through env.
	cmd := "env; echo \"api key is $API_KEY\"; echo " + strings.Join(shellQuoteAll(slices.Collect(mapValues(agentSecrets))), " ") +
		"; echo notify via '" + notifier + "'; echo admin agent-admin-token-1 >&2; echo last line " + configSecret
	logger, logs := testkit.NewLogger()
	res, err := Run(t.Context(), "after_deploy", Hook{
		Command: cmd, Timeout: 10 * time.Second,
		Env:   map[string]string{"API_KEY": configSecret, "LOG_DIR": "/var/log/app", "DEWY_APP": "overridden"},
		Scrub: sc,
	}, Env{App: "api", Version: "v2"}, logger)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	var seen []string
	for _, r := range logs.Find(t, "hook output") {
		line, _ := r["line"].(string)
		if k, _, ok := strings.Cut(line, "="); ok && !strings.Contains(k, " ") {
			seen = append(seen, k)
		}
	}
	allowed := []string{"PATH", "HOME", "LANG", "TZ", "USER", "API_KEY", "LOG_DIR",
		"DEWY_APP", "DEWY_VERSION", "DEWY_PREVIOUS_VERSION", "DEWY_RELEASE_DIR", "DEWY_REGISTRY",
		"PWD", "SHLVL", "_", "OLDPWD"} // the last four the shell sets itself
	for _, k := range seen {
		if !slices.Contains(allowed, k) {
			t.Errorf("hook saw %s from the agent's environment", k)
		}
	}
	for _, k := range []string{"PATH", "HOME", "LANG", "TZ", "USER", "API_KEY", "LOG_DIR", "DEWY_APP"} {
		if !slices.Contains(seen, k) {
			t.Errorf("hook did not see %s; it saw %v", k, seen)
		}
	}
	if !strings.Contains(logs.String(), "DEWY_APP=api") {
		t.Errorf("the hook block's env overrode DEWY_APP:\n%s", logs.String())
	}

	all := []string{configSecret, "XXXXwebhooksecretXXXX", "agent-admin-token-1"}
	for _, v := range agentSecrets {
		all = append(all, v)
	}
	for _, s := range all {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log holds secret %q", s)
		}
		if strings.Contains(res.Output, s) {
			t.Errorf("Result.Output holds secret %q", s)
		}
	}
	if !strings.Contains(logs.String(), "api key is "+Redacted) || !strings.Contains(res.Output, "last line "+Redacted) {
		t.Errorf("secrets not replaced by %s:\nlog: %s\noutput: %s", Redacted, logs.String(), res.Output)
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func shellQuoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return out
}

func TestEnvironFallbackPath(t *testing.T) {
	got := Environ([]string{"SECRET_THING=x", "HOME=/root"}, nil, Env{App: "a"})
	if !slices.Contains(got, "PATH="+fallbackPath) || !slices.Contains(got, "HOME=/root") || slices.Contains(got, "SECRET_THING=x") {
		t.Errorf("Environ = %v", got)
	}
}

func TestScrubber(t *testing.T) {
	sc := NewScrubber("abc", "longsecret", "longsecret-with-suffix", "", "longsecret")
	tests := []struct{ in, want string }{
		{"x longsecret-with-suffix y", "x " + Redacted + " y"},
		{"longsecretlongsecret", Redacted + Redacted},
		{"abc is too short to hide", "abc is too short to hide"},
	}
	for _, tt := range tests {
		if got := sc.Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var none *Scrubber
	if none.Scrub("longsecret") != "longsecret" {
		t.Error("nil Scrubber changed text")
	}
}

func TestURLSecrets(t *testing.T) {
	got := URLSecrets("https://user:pa55word@example.com/services/T0/B0/abcdefghijkl?token=qwerty123")
	for _, want := range []string{"user", "pa55word", "abcdefghijkl", "qwerty123", "services"} {
		if !slices.Contains(got, want) {
			t.Errorf("URLSecrets misses %q: %v", want, got)
		}
	}
}

// TestRunBoundedMemory runs hooks that print 100 MB, as many lines and as
// one endless line, and samples the heap while they run: it grows by a few
// MB at most.
func TestRunBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("prints 200 MB")
	}
	tests := []struct{ name, cmd string }{
		{"lines", `head -c 100000000 /dev/zero | tr '\0' 'a' | fold -w 1000`},
		{"one line", `head -c 100000000 /dev/zero | tr '\0' 'a'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			ctx, cancel := context.WithCancel(t.Context())
			var peak uint64
			var wg sync.WaitGroup
			wg.Go(func() {
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					peak = max(peak, m.HeapInuse)
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			})
			logger := slog.New(slog.DiscardHandler)
			res, err := Run(t.Context(), "after_deploy", Hook{Command: tt.cmd, Timeout: time.Minute,
				Scrub: NewScrubber("some-secret-value")}, Env{}, logger)
			cancel()
			wg.Wait()
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(res.Output) > TailBytes {
				t.Errorf("Output is %d bytes, want at most %d", len(res.Output), TailBytes)
			}
			const budget = 8 << 20
			if grew := int64(peak) - int64(base.HeapInuse); grew > budget {
				t.Errorf("heap grew by %d bytes while the hook printed 100 MB, want at most %d", grew, budget)
			}
			t.Logf("heap in use: base %d, peak %d", base.HeapInuse, peak)
		})
	}
}
