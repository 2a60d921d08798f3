package hooks

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

// PassedThrough are the variables of the agent's environment a hook sees
// (when the agent has them). Nothing else of the agent's environment reaches
// a hook: not its tokens, keys or passwords.
var PassedThrough = []string{"PATH", "HOME", "LANG", "TZ", "USER"}

// fallbackPath is a hook's PATH when the agent has none.
const fallbackPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Environ returns a hook's whole environment: the PassedThrough variables
// found in agent (KEY=value pairs, as os.Environ returns), then extra (the
// hooks block's env, in name order), then env's DEWY_* variables, which win.
func Environ(agent []string, extra map[string]string, env Env) []string {
	var out []string
	hasPath := false
	for _, kv := range agent {
		k, _, ok := strings.Cut(kv, "=")
		if ok && slices.Contains(PassedThrough, k) {
			out = append(out, kv)
			hasPath = hasPath || k == "PATH"
		}
	}
	if !hasPath {
		out = append(out, "PATH="+fallbackPath)
	}
	names := make([]string, 0, len(extra))
	for k := range extra {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !strings.HasPrefix(k, "DEWY_") {
			out = append(out, k+"="+extra[k])
		}
	}
	return append(out, env.Vars()...)
}

// credentialNames are variables that hold a credential whatever their value.
var credentialNames = []string{
	"GITHUB_TOKEN", "GH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_ACCESS_KEY_ID", "SLACK_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS_JSON",
	"DEWY_ADMIN_TOKEN",
}

// credentialSuffixes mark a variable as a credential by its name's end.
var credentialSuffixes = []string{"_PASSWORD", "_TOKEN", "_SECRET", "_SECRET_KEY", "_API_KEY", "_PASSWD"}

// EnvSecrets returns the values of the credential variables in environ
// (KEY=value pairs): the well-known ones (GITHUB_TOKEN, GH_TOKEN, AWS keys,
// SLACK_TOKEN) and any whose name ends in _PASSWORD, _TOKEN, _SECRET or
// _API_KEY.
func EnvSecrets(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			continue
		}
		up := strings.ToUpper(k)
		if slices.Contains(credentialNames, up) || slices.ContainsFunc(credentialSuffixes, func(s string) bool { return strings.HasSuffix(up, s) }) {
			out = append(out, v)
		}
	}
	return out
}

// URLSecrets returns the credentials a URL carries: the password and user of
// its user info, and its query values. Notifier URLs (Slack webhooks and the
// like) hold their secret in the path too, so the path's segments of 8
// characters or more count as secrets as well.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 8 {
			out = append(out, seg)
		}
	}
	return out
}

// MinSecretLen is the shortest value a Scrubber replaces: shorter values
// ("1", "on") are too common in ordinary output to hide.
const MinSecretLen = 4

// Redacted replaces a secret in scrubbed text.
const Redacted = "[redacted]"

// Scrubber removes known secrets from text. The zero value and nil remove
// nothing.
type Scrubber struct {
	r *strings.Replacer
}

// NewScrubber returns a Scrubber of secrets; values shorter than MinSecretLen
// and duplicates are ignored. Longer secrets are replaced first, so a secret
// that contains another is hidden whole.
func NewScrubber(secrets ...string) *Scrubber {
	var keep []string
	for _, s := range secrets {
		s = strings.TrimSpace(s)
		if len(s) >= MinSecretLen && !slices.Contains(keep, s) {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return &Scrubber{}
	}
	slices.SortFunc(keep, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(keep))
	for _, s := range keep {
		pairs = append(pairs, s, Redacted)
	}
	return &Scrubber{r: strings.NewReplacer(pairs...)}
}

// Scrub returns s with every secret replaced by Redacted.
func (sc *Scrubber) Scrub(s string) string {
	if sc == nil || sc.r == nil {
		return s
	}
	return sc.r.Replace(s)
}

// Handler returns a slog.Handler that scrubs each record's message and string
// attributes before passing it to h.
func (sc *Scrubber) Handler(h slog.Handler) slog.Handler {
	if sc == nil || sc.r == nil {
		return h
	}
	return &scrubHandler{sc: sc, next: h}
}

type scrubHandler struct {
	sc   *Scrubber
	next slog.Handler
}

var _ slog.Handler = (*scrubHandler)(nil)

func (s *scrubHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.next.Enabled(ctx, l)
}

func (s *scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, s.sc.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(s.scrubAttr(a))
		return true
	})
	return s.next.Handle(ctx, out)
}

func (s *scrubHandler) scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, s.sc.Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = s.scrubAttr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, s.sc.Scrub(err.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (s *scrubHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = s.scrubAttr(a)
	}
	return &scrubHandler{sc: s.sc, next: s.next.WithAttrs(clean)}
}

func (s *scrubHandler) WithGroup(name string) slog.Handler {
	return &scrubHandler{sc: s.sc, next: s.next.WithGroup(name)}
}
