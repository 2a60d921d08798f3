// Package notify tells people about deployments. Its words:
//
//   - Event: something that happened to an app (a deploy started, succeeded,
//     failed, was rolled back; a hook failed; the registry was unreachable).
//   - Notifier: one destination, written as a URL in the config file:
//     slack://<channel>, mail://host:port/recipient, http(s)://... (a webhook).
//   - Message: an Event as a notifier sends it, with what the storm limiter adds.
//   - Dispatcher: queues events and delivers them to its notifiers in the
//     background, so that sending never holds up a deploy. It limits storms: a
//     failure that repeats (same app and kind, in a row) is sent MaxRepeats
//     times, then suppressed until the app deploys successfully again.
//
// Every notifier URL takes `quiet=true`: such a notifier sends only the
// outcomes of deploys: deploy_succeeded, deploy_failed, rolled_back,
// hook_failed, disk_full and signature_rejected (not deploy_started, registry_unreachable or no_release). Secrets (SLACK_TOKEN, mail passwords,
// credentials in URLs) never appear in String, errors, logs or messages.
//
// Parse and NewDispatcher do no I/O; connections are made when a message is
// sent.
package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Kind is what happened.
type Kind string

// The kinds of events.
const (
	// DeployStarted: a new version was chosen and its deploy begins.
	DeployStarted Kind = "deploy_started"
	// DeploySucceeded: the new version is live (and healthy, for runners that
	// check). It ends a storm of repeated failures.
	DeploySucceeded Kind = "deploy_succeeded"
	// DeployFailed: the deploy failed before the new version went live; the
	// previous version is still running.
	DeployFailed Kind = "deploy_failed"
	// RolledBack: the new version went live, failed, and the previous version
	// was put back.
	RolledBack Kind = "rolled_back"
	// HookFailed: a hook (Step says which) exited non-zero or timed out.
	HookFailed Kind = "hook_failed"
	// RegistryUnreachable: the registry could not be read.
	RegistryUnreachable Kind = "registry_unreachable"
	// NoRelease: the registry answered but holds no release the app allows
	// (an empty folder, only pre-releases without pre_release, no version tags).
	NoRelease Kind = "no_release"
	// DiskFull: a release could not be prepared because the state directory's
	// file system has too little space or too few inodes above the reserve
	// (agent min_free_space). The version is not marked bad; it is tried
	// again with backoff.
	DiskFull Kind = "disk_full"
	// SignatureRejected: the app verifies signatures (a verify block) and the
	// release's signature is missing, malformed or made by no trusted key.
	// The version is marked bad for that artifact; Err says which key and
	// why. A later upload of a signature is tried again.
	SignatureRejected Kind = "signature_rejected"
)

// Kinds lists every kind, in the order above.
func Kinds() []Kind {
	return []Kind{DeployStarted, DeploySucceeded, DeployFailed, RolledBack, HookFailed, RegistryUnreachable, NoRelease, DiskFull, SignatureRejected}
}

// Failure reports whether k is a failure: the kinds the storm limiter counts.
func (k Kind) Failure() bool {
	switch k {
	case DeployFailed, RolledBack, HookFailed, RegistryUnreachable, NoRelease, DiskFull, SignatureRejected:
		return true
	}
	return false
}

// Outcome reports whether k is the outcome of a deploy: succeeded, failed,
// rolled back, a hook failed, the disk was too full to prepare it, or its
// signature was rejected. Quiet notifiers send only these.
func (k Kind) Outcome() bool {
	switch k {
	case DeploySucceeded, DeployFailed, RolledBack, HookFailed, DiskFull, SignatureRejected:
		return true
	}
	return false
}

// Event is something that happened to an app.
type Event struct {
	// App is the app's name; Host is this machine's host name (the Dispatcher
	// fills it in when empty).
	App, Host string
	Kind      Kind
	// Version is the version being deployed; PreviousVersion the one deployed
	// before (for rolled_back: the one running again).
	Version, PreviousVersion string
	// Duration is how long the deploy took (deploy_succeeded, deploy_failed).
	Duration time.Duration
	// Step is where it happened: the hook's name for hook_failed
	// ("before_deploy"), the deploy step for deploy_failed ("download",
	// "verify", "activate", "health").
	Step string
	// Err is the error's text, without secrets.
	Err string
	// Output is the end of a hook's output (hooks.Result.Output).
	Output string
	// Time is when it happened (the Dispatcher fills it in when zero).
	Time time.Time
}

// Message is an Event as a notifier sends it.
type Message struct {
	Event
	// Repeats counts this failure's run: 1 for the first of a kind in a row.
	// Zero for kinds that are not failures.
	Repeats int
	// Suppressing is set on the last message of a run before its repeats are
	// suppressed; the message says so.
	Suppressing bool
}

// Notifier is one destination.
//
// Contract:
//   - Parse builds notifiers; they hold no connection between messages.
//   - Notify delivers one message and returns once it is delivered, failed,
//     or ctx is done. A Dispatcher calls it from one goroutine per notifier.
//   - Errors say what failed and never hold secrets. An error that trying
//     again cannot fix (a bad token, an unknown channel, a 4xx answer) is
//     marked so the Dispatcher does not retry it.
type Notifier interface {
	Notify(ctx context.Context, m Message, t Transport) error
	// Wants reports whether the notifier sends events of kind k.
	Wants(k Kind) bool
	// String describes the notifier for logs, without credentials.
	String() string
}

// Transport is what notifiers deliver with; a Dispatcher fills it from its
// Options.
type Transport struct {
	// HTTPClient carries Slack and webhook requests. Never nil.
	HTTPClient *http.Client
	// Getenv reads SLACK_TOKEN, SLACK_API_URL, MAIL_USERNAME, MAIL_PASSWORD.
	// Never nil.
	Getenv func(string) string
	// TLSConfig, when set, is the base of the mail notifier's STARTTLS
	// configuration (tests set RootCAs); ServerName is always the server's.
	TLSConfig *tls.Config
}

// Parse builds the notifier a URL names. It does no I/O. Errors name the
// scheme and the option at fault, never the URL's credentials.
func Parse(raw string) (Notifier, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("notifier URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, credentials included
		}
		return nil, fmt.Errorf("notifier URL is not valid: %w", err)
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("notifier URL %s: must be %s://...", u.Scheme, u.Scheme)
	}
	switch strings.ToLower(u.Scheme) {
	case "slack":
		return parseSlack(u)
	case "mail":
		return parseMail(u)
	case "http", "https":
		return parseWebhook(u)
	case "":
		return nil, errors.New("notifier URL has no scheme (want slack://, mail://, http:// or https://)")
	default:
		return nil, fmt.Errorf("unknown notifier scheme %q (want slack://, mail://, http:// or https://)", u.Scheme)
	}
}

// ParseAll parses each URL and reports every bad one at once, each error
// prefixed with its index in the list ("notify[1]: ...").
func ParseAll(raws []string) ([]Notifier, error) {
	var (
		out  []Notifier
		errs []error
	)
	for i, raw := range raws {
		n, err := Parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify[%d]: %w", i, err))
			continue
		}
		out = append(out, n)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// common holds what every notifier URL may say.
type common struct {
	quiet bool
}

// Wants implements Notifier: a quiet notifier sends successes and failed
// deploys only.
func (c common) Wants(k Kind) bool {
	return !c.quiet || k.Outcome()
}

// options reads a URL's query: each allowed option at most once, quiet for
// all. Options not in allowed are an error unless passThrough is set, in
// which case they are left in the returned values.
func options(scheme string, q url.Values, allowed []string, passThrough bool) (map[string]string, common, url.Values, error) {
	var c common
	opts := map[string]string{}
	rest := url.Values{}
	for k, vs := range q {
		if k == "quiet" {
			if len(vs) != 1 {
				return nil, c, nil, fmt.Errorf("%s notifier: option quiet is given %d times", scheme, len(vs))
			}
			b, err := strconv.ParseBool(vs[0])
			if err != nil {
				return nil, c, nil, fmt.Errorf("%s notifier: option quiet must be true or false", scheme)
			}
			c.quiet = b
			continue
		}
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			if passThrough {
				rest[k] = vs
				continue
			}
			return nil, c, nil, fmt.Errorf("%s notifier: unknown option %q (allowed: %s)", scheme, k, strings.Join(append(allowed, "quiet"), ", "))
		}
		if len(vs) != 1 {
			return nil, c, nil, fmt.Errorf("%s notifier: option %s is given %d times", scheme, k, len(vs))
		}
		opts[k] = vs[0]
	}
	return opts, c, rest, nil
}

// permanentError marks a failure that trying again cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err: err} }

// IsPermanent reports whether err (from Notify) is one that retrying cannot fix.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// redacted replaces each secret found in s.
const redacted = "[REDACTED]"

// minSecretLen is the shortest secret value scrubbed from text; shorter ones
// would mangle ordinary words.
const minSecretLen = 4

func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecretLen {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

// scrub returns err, or, when its text holds a secret, an error with the same
// text minus the secrets (and the same permanent mark; the rest of the chain
// is dropped).
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := redact(msg, secrets...)
	if clean == msg {
		return err
	}
	out := errors.New(clean)
	if IsPermanent(err) {
		return permanent(out)
	}
	return out
}

// secretHolder is implemented by notifiers that know secret values (from
// their URL or the environment) to scrub from messages and logs.
type secretHolder interface {
	secrets(getenv func(string) string) []string
}
