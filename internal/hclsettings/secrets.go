package hclsettings

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// EnvMark is the cty mark env() puts on its result: the value is a secret
// until proven otherwise, and Name is how a message may refer to it instead
// of showing it.
type EnvMark struct{ Name string }

// minSecretLen is the shortest env() value Scrub replaces in free text;
// shorter values ("1", "on") would match too much of a message to be worth
// hiding, and messages about a setting's own value use the mark instead.
const minSecretLen = 4

// Secrets remembers every value env() returned while a file was decoded, so
// that text built from those values (a diagnostic made by a check that only
// sees the decoded value) can be scrubbed before anyone sees it.
type Secrets struct {
	mu     sync.Mutex
	byName map[string]string // env name -> value
}

func (s *Secrets) add(name, value string) {
	if len(value) < minSecretLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName == nil {
		s.byName = map[string]string{}
	}
	s.byName[name] = value
}

// Redact replaces every env() value longer than a few characters in text with
// `the value of env("NAME")`. A nil Secrets returns text unchanged.
func (s *Secrets) Redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	// Longest value first, so a secret that contains another is replaced whole.
	sort.Slice(names, func(i, j int) bool {
		if a, b := len(s.byName[names[i]]), len(s.byName[names[j]]); a != b {
			return a > b
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		v := s.byName[n]
		text = strings.ReplaceAll(text, strconv.Quote(v), describeEnv([]string{n}))
		text = strings.ReplaceAll(text, v, describeEnv([]string{n}))
	}
	return text
}

// Scrub redacts the summary and detail of every diagnostic in place.
func (s *Secrets) Scrub(diags hcl.Diagnostics) {
	if s == nil {
		return
	}
	for _, d := range diags {
		d.Summary = s.Redact(d.Summary)
		d.Detail = s.Redact(d.Detail)
	}
}

// envNames returns the names of the env() calls whose marks are in marks,
// sorted; none means the value did not come from env().
func envNames(marks cty.ValueMarks) []string {
	var names []string
	for m := range marks {
		if e, ok := m.(EnvMark); ok && !slices.Contains(names, e.Name) {
			names = append(names, e.Name)
		}
	}
	sort.Strings(names)
	return names
}

// describeEnv names a value built from env(names...) without showing it.
func describeEnv(names []string) string {
	calls := make([]string, len(names))
	for i, n := range names {
		calls[i] = fmt.Sprintf("env(%q)", n)
	}
	if len(calls) == 1 {
		return "the value of " + calls[0]
	}
	return "the value built from " + strings.Join(calls, ", ")
}

// Show is how a message quotes the setting's value: quoted as Go does, or,
// when the value came from env(), the expression that gave it
// (`the value of env("SLACK_TOKEN")`), so a secret never reaches a
// diagnostic, log line or API answer.
func (s Setting[T]) Show() string {
	if s.Sensitive {
		return describeEnv(s.EnvNames)
	}
	if v, ok := any(s.Val).(string); ok {
		return strconv.Quote(v)
	}
	return fmt.Sprint(s.Val)
}
