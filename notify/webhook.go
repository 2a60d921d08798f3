package notify

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Webhook POSTs each message as JSON (WebhookPayload) to a URL.
//
// URL: any http:// or https:// URL. User info in it becomes HTTP basic auth;
// its query is sent as written, less the quiet option. Because webhook URLs
// often carry a token in their path or query, String shows only the scheme
// and host.
type Webhook struct {
	common
	target   *url.URL // without user info
	user     string
	password string
	hasAuth  bool
}

// WebhookPayload is the JSON body a Webhook sends.
type WebhookPayload struct {
	App             string    `json:"app"`
	Host            string    `json:"host"`
	Kind            Kind      `json:"kind"`
	Version         string    `json:"version,omitempty"`
	PreviousVersion string    `json:"previous_version,omitempty"`
	DurationSeconds float64   `json:"duration_seconds,omitempty"`
	Step            string    `json:"step,omitempty"`
	Error           string    `json:"error,omitempty"`
	Output          string    `json:"output,omitempty"`
	Time            time.Time `json:"time"`
	// Text is the whole message as plain text, which is also what chat
	// services' incoming webhooks (Slack, Mattermost) read.
	Text string `json:"text"`
	// Repeats and Suppressing are the storm limiter's (see Message).
	Repeats     int  `json:"repeats,omitempty"`
	Suppressing bool `json:"suppressing,omitempty"`
}

func parseWebhook(u *url.URL) (*Webhook, error) {
	scheme := u.Scheme
	if u.Host == "" {
		return nil, fmt.Errorf("%s notifier: no host", scheme)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%s notifier: a webhook URL has no #fragment", scheme)
	}
	_, c, rest, err := options(scheme, u.Query(), nil, true)
	if err != nil {
		return nil, err
	}
	w := &Webhook{common: c}
	if u.User != nil {
		w.hasAuth = true
		w.user = u.User.Username()
		w.password, _ = u.User.Password()
	}
	t := *u
	t.User = nil
	t.RawQuery = rest.Encode()
	if len(rest) == 0 {
		t.RawQuery = ""
	}
	w.target = &t
	return w, nil
}

// String implements Notifier: scheme and host only.
func (w *Webhook) String() string {
	s := w.target.Scheme + "://" + w.target.Host
	if w.target.Path != "" && w.target.Path != "/" || w.target.RawQuery != "" {
		s += "/..."
	}
	return s
}

// secrets are scrubbed from every message: the basic auth password. (The
// path and query are kept out of errors by Notify, not scrubbed from text,
// where ordinary words could match them.)
func (w *Webhook) secrets(func(string) string) []string {
	return []string{w.password}
}

// urlSecrets are the parts of the URL that may be credentials.
func (w *Webhook) urlSecrets() []string {
	out := []string{w.password}
	if w.target.Path != "" && w.target.Path != "/" {
		out = append(out, w.target.EscapedPath())
	}
	if w.target.RawQuery != "" {
		out = append(out, w.target.RawQuery)
	}
	return out
}

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, m Message, t Transport) error {
	p := WebhookPayload{
		App: m.App, Host: m.Host, Kind: m.Kind,
		Version: m.Version, PreviousVersion: m.PreviousVersion,
		DurationSeconds: m.Duration.Seconds(),
		Step:            m.Step, Error: m.ErrText(), Output: m.OutputText(),
		Time: m.Time, Text: m.Text(),
		Repeats: m.Repeats, Suppressing: m.Suppressing,
	}
	if w.password != "" {
		p.Error, p.Output, p.Text = redact(p.Error, w.password), redact(p.Output, w.password), redact(p.Text, w.password)
	}
	return jsonPost{
		what:     w.String() + ": post",
		endpoint: w.target.String(),
		payload:  p,
		header: func(req *http.Request) {
			req.Header.Set("Content-Type", "application/json")
			if w.hasAuth {
				req.SetBasicAuth(w.user, w.password)
			}
		},
		secrets: w.urlSecrets(),
	}.send(ctx, t)
}

var _ Notifier = (*Webhook)(nil)
