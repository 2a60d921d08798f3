package ghr_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
)

// appKey returns a new RSA key and its PEM.
func appKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return key, string(p)
}

// pollsPerHour is an hour of polls at the default 30 s interval.
const pollsPerHour = 120

// TestGitHubAppTokens authenticates as a GitHub App installation against the
// fake, which checks the app's JWT with the public key and issues tokens that
// expire. An hour of polls at rest (120 at 30 s) stays conditional across
// every token refresh: after the first listing, each poll is one 304.
//
// ghinstallation reads the wall clock, so the hour is simulated by the
// token's lifetime instead: with a 59 s lifetime (inside the library's
// one-minute refresh margin) every poll gets a fresh token, the worst case;
// with GitHub's one hour, one token serves the hour.
func TestGitHubAppTokens(t *testing.T) {
	key, keyPEM := appKey(t)
	for _, tt := range []struct {
		name       string
		ttl        time.Duration
		wantTokens int
	}{
		{name: "refresh before every poll", ttl: 59 * time.Second, wantTokens: pollsPerHour},
		{name: "one-hour tokens", ttl: time.Hour, wantTokens: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			srv.EnableApp(1234, 5678, &key.PublicKey, tt.ttl)
			addReleases(srv, 3)
			var logs bytes.Buffer
			g := newSource(t, srv, setup{
				env: map[string]string{
					"GITHUB_APP_ID": "1234", "GITHUB_APP_INSTALLATION_ID": "5678", "GITHUB_APP_PRIVATE_KEY": keyPEM,
					"GITHUB_TOKEN": "ignored-personal-token",
				},
				logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			for i := range pollsPerHour {
				rels, err := g.Releases(t.Context())
				if err != nil || len(rels) != 3 {
					t.Fatalf("poll %d: %d releases, %v", i, len(rels), err)
				}
			}
			st := srv.Stats(owner, repo)
			counted := st.Requests - st.NotModified // a 304 does not count against the rate limit
			if st.Requests != pollsPerHour || st.NotModified != pollsPerHour-1 || counted != 1 {
				t.Errorf("requests %d, 304s %d: want %d polls, all but the first answered 304", st.Requests, st.NotModified, pollsPerHour)
			}
			if got := srv.TokensIssued(); got != tt.wantTokens {
				t.Errorf("%d installation tokens issued, want %d", got, tt.wantTokens)
			}
			seen := map[string]bool{}
			for _, r := range srv.Requests(owner, repo) {
				auth := r.Header.Get("Authorization")
				if !strings.HasPrefix(auth, "Bearer ghs_") {
					t.Fatalf("Authorization %q, want an installation token", auth)
				}
				seen[auth] = true
			}
			if len(seen) != tt.wantTokens {
				t.Errorf("%d distinct tokens sent, want %d", len(seen), tt.wantTokens)
			}
			if strings.Contains(logs.String(), "ghs_") || strings.Contains(logs.String(), "PRIVATE KEY") {
				t.Error("a token or the key was logged")
			}
			t.Logf("%d polls: %d requests counted against the rate limit, %d token refreshes", pollsPerHour, counted, srv.TokensIssued())
		})
	}
}

// TestGitHubAppKeyFile reads the key from GITHUB_APP_PRIVATE_KEY_PATH; a
// wrong key is refused by the fake.
func TestGitHubAppKeyFile(t *testing.T) {
	key, keyPEM := appKey(t)
	path := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(path, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := fakegithub.New(t)
	srv.EnableApp(1, 2, &key.PublicKey, time.Hour)
	addReleases(srv, 1)
	env := map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY_PATH": path}
	if _, err := newSource(t, srv, setup{env: env}).Releases(t.Context()); err != nil {
		t.Fatalf("Releases with the key file: %v", err)
	}

	_, otherPEM := appKey(t)
	g := newSource(t, srv, setup{env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY": otherPEM}})
	_, err := g.Releases(t.Context())
	if err == nil {
		t.Fatal("a key the app does not have was accepted")
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), otherPEM[40:80]) {
		t.Errorf("the error shows the key: %v", err)
	}
}

func TestGitHubAppConfigErrors(t *testing.T) {
	_, keyPEM := appKey(t)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "bad app id", env: map[string]string{"GITHUB_APP_ID": "x"}, want: "GITHUB_APP_ID"},
		{name: "no installation", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": keyPEM}, want: "GITHUB_APP_INSTALLATION_ID"},
		{name: "no key", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2"}, want: "GITHUB_APP_PRIVATE_KEY_PATH"},
		{name: "missing key file", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY_PATH": "/nonexistent/app.pem"}, want: "GITHUB_APP_PRIVATE_KEY_PATH"},
		{name: "not a key", env: map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_INSTALLATION_ID": "2", "GITHUB_APP_PRIVATE_KEY": "secret-not-a-pem"}, want: "not an RSA private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ghr.NewWithEnv(owner, repo, sources.Options{HTTPClient: &http.Client{}}, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-not-a-pem") || strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}
}
