package config

import (
	"net"
	"regexp"
	"sort"
	"strings"
)

// checkAdminToken returns admin_token and insists on one when the admin API
// binds an address other than loopback: anyone who can reach such an address
// could otherwise trigger reloads and retries.
func (d *decoder) checkAdminToken(admin, token setting[string]) string {
	if token.Bad {
		return ""
	}
	if token.Set && token.Val == "" {
		d.fail(token.Range, "Empty admin_token",
			`admin_token is empty (is the variable env() reads set?); give a token such as admin_token = env("DEWY_ADMIN_TOKEN"), or remove the attribute.`)
		return ""
	}
	if admin.Bad || admin.Val == "" || token.Val != "" {
		return token.Val
	}
	if strings.HasPrefix(admin.Val, "unix://") {
		return "" // reached through the file system: its mode guards it
	}
	host, _, err := net.SplitHostPort(admin.Val)
	if err != nil {
		return "" // checkAdmin reports it
	}
	if !loopbackHost(host) {
		d.fail(admin.Range, "Admin API needs a token",
			`admin %q listens beyond loopback, where anyone who reaches it could reload the config and retry apps; set admin_token = env("DEWY_ADMIN_TOKEN") in the agent block, or bind "127.0.0.1:17539".`, admin.Val)
	}
	return ""
}

// loopbackHost reports whether host (from host:port) names only this machine.
// An empty host means every interface, which is not loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkHookEnv checks the names of the hooks block's env. Names starting with
// DEWY_ are the agent's own and cannot be overridden.
func (d *decoder) checkHookEnv(s setting[map[string]string]) map[string]string {
	if s.Bad || len(s.Val) == 0 {
		return nil
	}
	names := make([]string, 0, len(s.Val))
	for k := range s.Val {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case !envName.MatchString(k):
			d.fail(s.Range, "Invalid hook env name", "env name %q is not a variable name; use letters, digits and _ (not starting with a digit).", k)
		case len(k) >= 5 && k[:5] == "DEWY_":
			d.fail(s.Range, "Reserved hook env name", "env name %q starts with DEWY_, which the agent sets itself for every hook; choose another name.", k)
		}
	}
	return s.Val
}
