package fakegithub

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

// app is a GitHub App the fake issues installation tokens for.
type app struct {
	id, installation int64
	key              *rsa.PublicKey
	ttl              time.Duration
	// tokens are the issued installation tokens and when each expires.
	tokens map[string]time.Time
	issued int
}

// EnableApp makes the fake act for a GitHub App: POST
// /app/installations/{installation}/access_tokens, authorized with an RS256 JWT
// signed by the key whose public half is key and issued by id, answers a new
// installation token that expires after ttl. From then on the API demands a
// valid, unexpired installation token (or the RequireToken one).
func (s *Server) EnableApp(id, installation int64, key *rsa.PublicKey, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.app = &app{id: id, installation: installation, key: key, ttl: ttl, tokens: map[string]time.Time{}}
}

// TokensIssued is how many installation tokens the fake has issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app == nil {
		return 0
	}
	return s.app.issued
}

// installationToken reports whether auth carries an unexpired installation
// token. Called with s.mu held.
func (s *Server) installationToken(auth string) bool {
	if s.app == nil {
		return false
	}
	for _, prefix := range []string{"Bearer ", "token "} {
		if len(auth) > len(prefix) && auth[:len(prefix)] == prefix {
			exp, ok := s.app.tokens[auth[len(prefix):]]
			return ok && time.Now().Before(exp)
		}
	}
	return false
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.app
	if a == nil || r.PathValue("id") != strconv.FormatInt(a.installation, 10) {
		writeJSON(w, http.StatusNotFound, errorBody{Message: "Not Found", DocumentationURL: "https://docs.github.com/rest"})
		return
	}
	if err := a.verify(r.Header.Get("Authorization")); err != nil {
		writeJSON(w, http.StatusUnauthorized, errorBody{Message: "A JSON web token could not be decoded: " + err.Error(), DocumentationURL: "https://docs.github.com/rest"})
		return
	}
	a.issued++
	token := "ghs_" + randomHex(18)
	exp := time.Now().Add(a.ttl)
	a.tokens[token] = exp
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":      token,
		"expires_at": exp.UTC().Format(time.RFC3339Nano),
	})
}

// verify checks the app's JWT: RS256, signed by the app's key, issued by the
// app, not expired.
func (a *app) verify(auth string) error {
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || auth[:len(prefix)] != prefix {
		return errors.New("no bearer JWT")
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(auth[len(prefix):], claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("signing method %v", t.Header["alg"])
		}
		return a.key, nil
	})
	if err != nil {
		return err
	}
	if claims.Issuer != strconv.FormatInt(a.id, 10) {
		return errors.New("the issuer is not the app")
	}
	return nil
}
