package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxOutputBytes bounds the output a message carries; more is cut from the
// front (the end of a hook's output says the most).
const MaxOutputBytes = 2 << 10

// maxErrBytes bounds the error text a message carries.
const maxErrBytes = 2 << 10

// Summary is the message's one line: what happened to which app where.
func (m Message) Summary() string {
	app := m.App
	if app == "" {
		app = "(agent)"
	}
	on := ""
	if m.Host != "" {
		on = " on " + m.Host
	}
	v := m.Version
	if v == "" {
		v = "the new version"
	}
	switch m.Kind {
	case DeployStarted:
		from := "first deploy"
		if m.PreviousVersion != "" {
			from = "replacing " + m.PreviousVersion
		}
		return fmt.Sprintf("%s: deploying %s%s (%s)", app, v, on, from)
	case DeploySucceeded:
		s := fmt.Sprintf("%s: %s is live%s", app, v, on)
		var extra []string
		if m.PreviousVersion != "" {
			extra = append(extra, "was "+m.PreviousVersion)
		}
		if m.Duration > 0 {
			extra = append(extra, "took "+roundDuration(m.Duration).String())
		}
		if len(extra) > 0 {
			s += " (" + strings.Join(extra, ", ") + ")"
		}
		return s
	case DeployFailed:
		at := ""
		if m.Step != "" {
			at = " at " + m.Step
		}
		keep := ""
		if m.PreviousVersion != "" {
			keep = "; " + m.PreviousVersion + " keeps running"
		}
		return fmt.Sprintf("%s: deploy of %s failed%s%s%s", app, v, at, on, keep)
	case RolledBack:
		back := "the previous version"
		if m.PreviousVersion != "" {
			back = m.PreviousVersion
		}
		return fmt.Sprintf("%s: %s failed%s and was rolled back to %s", app, v, on, back)
	case HookFailed:
		hook := m.Step
		if hook == "" {
			hook = "a"
		}
		return fmt.Sprintf("%s: %s hook failed for %s%s", app, hook, v, on)
	case RegistryUnreachable:
		return fmt.Sprintf("%s: registry unreachable%s", app, on)
	case NoRelease:
		return fmt.Sprintf("%s: the registry holds no release to deploy%s", app, on)
	case DiskFull:
		return fmt.Sprintf("%s: not enough disk space to prepare %s%s", app, v, on)
	case SignatureRejected:
		keep := ""
		if m.PreviousVersion != "" {
			keep = "; " + m.PreviousVersion + " keeps running"
		}
		return fmt.Sprintf("%s: %s refused%s: its signature does not verify with a trusted key%s", app, v, on, keep)
	default:
		return fmt.Sprintf("%s: %s%s", app, m.Kind, on)
	}
}

// Note is what the storm limiter adds to the message, or "".
func (m Message) Note() string {
	if !m.Suppressing {
		return ""
	}
	return fmt.Sprintf("This failure has happened %d times in a row; further repeats are suppressed until the next successful deploy of %s.", m.Repeats, m.App)
}

// ErrText is the error, cut to a bounded length.
func (m Message) ErrText() string {
	if len(m.Err) <= maxErrBytes {
		return m.Err
	}
	s := m.Err[:maxErrBytes]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + " [...]"
}

// OutputText is the hook output, cut from the front to MaxOutputBytes.
func (m Message) OutputText() string {
	if len(m.Output) <= MaxOutputBytes {
		return m.Output
	}
	s := m.Output[len(m.Output)-MaxOutputBytes:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return "[...]\n" + s
}

// Text is the whole message as plain text: the summary, then the error, the
// output and the note, each when present.
func (m Message) Text() string {
	var b strings.Builder
	b.WriteString(m.Summary())
	if e := m.ErrText(); e != "" {
		b.WriteString("\nError: " + e)
	}
	if o := m.OutputText(); o != "" {
		b.WriteString("\nOutput:\n" + o)
	}
	if n := m.Note(); n != "" {
		b.WriteString("\n" + n)
	}
	return b.String()
}

// roundDuration keeps durations readable: whole seconds from a minute up,
// milliseconds below.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
