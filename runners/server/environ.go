package server

import (
	"slices"
	"strings"
)

// keptEnv are the agent's variables every app process receives: what a
// program needs to find its tools, its home, its language and time zone.
// Everything else of the agent's (tokens, passwords, cloud credentials) stays
// with the agent unless the block names it in inherit_env.
var keptEnv = []string{"PATH", "HOME", "LANG", "TZ", "USER"}

// socketEnv are the socket variables; the runner sets its own, so the agent's
// (inherited from a supervisor) never reach an app.
var socketEnv = []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "SERVER_STARTER_PORT"}

// cleanEnviron is the part of environ, the agent's environment as
// os.Environ gives it, an app process may see: keptEnv, the DEWY_* variables
// and the names in inherit. The socket variables are never kept.
func cleanEnviron(environ, inherit []string) []string {
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case slices.Contains(socketEnv, k):
			continue
		case slices.Contains(keptEnv, k), strings.HasPrefix(k, "DEWY_"), slices.Contains(inherit, k):
			env = append(env, kv)
		}
	}
	return env
}
