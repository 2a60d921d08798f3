package fleet

import (
	"net/url"
	"strings"
)

// keys builds every key the fleet uses under its prefix P (see docs/fleet.md):
//
//	P/hosts/<host>                                   host record (session lease)
//	P/apps/<app>/poller/<lease>                      poll election (session lease)
//	P/apps/<app>/release                             the published release
//	P/apps/<app>/paused                              present while paused
//	P/apps/<app>/done                                last fully rolled-out version
//	P/apps/<app>/bad/<version>                       bad fleet-wide
//	P/apps/<app>/slots/<host>                        deploy slot (session lease)
//	P/apps/<app>/rollouts/<version>/plan             canaries and numbers
//	P/apps/<app>/rollouts/<version>/release          the release as published
//	P/apps/<app>/rollouts/<version>/promoted         present: bake ended by an operator
//	P/apps/<app>/rollouts/<version>/outcomes/<host>  a host's outcome
type keys struct{ prefix string }

func esc(s string) string { return url.PathEscape(s) }

func unesc(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func (k keys) hosts() string            { return k.prefix + "/hosts/" }
func (k keys) host(id string) string    { return k.hosts() + esc(id) }
func (k keys) apps() string             { return k.prefix + "/apps/" }
func (k keys) app(app string) string    { return k.apps() + esc(app) + "/" }
func (k keys) poller(app string) string { return k.app(app) + "poller/" }
func (k keys) release(app string) string {
	return k.app(app) + "release"
}
func (k keys) paused(app string) string     { return k.app(app) + "paused" }
func (k keys) done(app string) string       { return k.app(app) + "done" }
func (k keys) bads(app string) string       { return k.app(app) + "bad/" }
func (k keys) bad(app, v string) string     { return k.bads(app) + esc(v) }
func (k keys) slots(app string) string      { return k.app(app) + "slots/" }
func (k keys) slot(app, host string) string { return k.slots(app) + esc(host) }
func (k keys) rollout(app, v string) string {
	return k.app(app) + "rollouts/" + esc(v) + "/"
}
func (k keys) plan(app, v string) string      { return k.rollout(app, v) + "plan" }
func (k keys) releaseOf(app, v string) string { return k.rollout(app, v) + "release" }
func (k keys) promoted(app, v string) string  { return k.rollout(app, v) + "promoted" }
func (k keys) outcomes(app, v string) string  { return k.rollout(app, v) + "outcomes/" }
func (k keys) outcome(app, v, host string) string {
	return k.outcomes(app, v) + esc(host)
}

// parseAppKey splits a key under P/apps/ into app and the rest.
func (k keys) parseAppKey(key string) (app, rest string, ok bool) {
	s, ok := strings.CutPrefix(key, k.apps())
	if !ok {
		return "", "", false
	}
	a, rest, ok := strings.Cut(s, "/")
	return unesc(a), rest, ok
}

// parseRolloutRest splits "rollouts/<v>/<what>[/<host>]".
func parseRolloutRest(rest string) (version, what, host string, ok bool) {
	s, ok := strings.CutPrefix(rest, "rollouts/")
	if !ok {
		return "", "", "", false
	}
	parts := strings.SplitN(s, "/", 3)
	if len(parts) < 2 {
		return "", "", "", false
	}
	version, what = unesc(parts[0]), parts[1]
	if len(parts) == 3 {
		host = unesc(parts[2])
	}
	return version, what, host, true
}
