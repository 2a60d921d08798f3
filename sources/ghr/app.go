package ghr

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
)

// The GitHub App variables, Dewy's names: with GITHUB_APP_ID set, the source
// authenticates as an installation of that app, with a private key given
// inline (PEM) or as a file.
const (
	envAppID          = "GITHUB_APP_ID"
	envInstallationID = "GITHUB_APP_INSTALLATION_ID"
	envPrivateKey     = "GITHUB_APP_PRIVATE_KEY"
	envPrivateKeyPath = "GITHUB_APP_PRIVATE_KEY_PATH"
)

// tokenSource hands out the token for the next API request.
type tokenSource interface {
	Token(ctx context.Context) (string, error)
}

// appTokens returns the installation-token source the GitHub App variables
// describe, or nil when GITHUB_APP_ID is not set. Tokens are fetched from
// <api>/app/installations/<id>/access_tokens through base with a JWT signed
// by the key, cached, and fetched again a minute before they expire
// (ghinstallation). The key is read (from GITHUB_APP_PRIVATE_KEY_PATH) here;
// no request is sent until the first token is needed. Errors never hold the
// key.
func appTokens(getenv func(string) string, base http.RoundTripper, apiRoot string) (tokenSource, error) {
	rawID := strings.TrimSpace(getenv(envAppID))
	if rawID == "" {
		return nil, nil
	}
	appID, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil || appID <= 0 {
		return nil, fmt.Errorf("%s %q is not a GitHub App ID (a positive number)", envAppID, rawID)
	}
	rawInst := strings.TrimSpace(getenv(envInstallationID))
	instID, err := strconv.ParseInt(rawInst, 10, 64)
	if err != nil || instID <= 0 {
		return nil, fmt.Errorf("%s is set, so %s must be the installation's ID (a positive number), not %q", envAppID, envInstallationID, rawInst)
	}
	key := []byte(getenv(envPrivateKey))
	if strings.TrimSpace(string(key)) == "" {
		path := strings.TrimSpace(getenv(envPrivateKeyPath))
		if path == "" {
			return nil, fmt.Errorf("%s is set, so %s or %s must give the app's private key", envAppID, envPrivateKey, envPrivateKeyPath)
		}
		if key, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("%s: %w", envPrivateKeyPath, err)
		}
	}
	tr, err := ghinstallation.New(base, appID, instID, key)
	if err != nil {
		// The library's error describes the PEM's shape, never its content.
		return nil, fmt.Errorf("GitHub App private key: not an RSA private key in PEM form (%s)", keyErrorKind(err))
	}
	tr.BaseURL = strings.TrimSuffix(apiRoot, "/")
	return tr, nil
}

// keyErrorKind keeps the gist of a key parsing error without any key bytes.
func keyErrorKind(err error) string {
	msg := err.Error()
	if i := strings.IndexAny(msg, "\n-"); i > 0 {
		msg = msg[:i]
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return strings.TrimSpace(msg)
}
