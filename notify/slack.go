package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Slack environment and defaults.
const (
	// SlackTokenEnv names the variable holding the bot token (xoxb-...).
	SlackTokenEnv = "SLACK_TOKEN"
	// SlackAPIURLEnv names the variable that overrides the Web API base URL.
	SlackAPIURLEnv = "SLACK_API_URL"
	// DefaultSlackAPIURL is the Web API's base URL.
	DefaultSlackAPIURL = "https://slack.com/api/"
)

// Slack posts messages to a channel with the Slack Web API's
// chat.postMessage, authenticated by SLACK_TOKEN.
//
// URL: slack://<channel>?title=<title>&url=<link>&quiet=true. The channel is
// a name ("deploys") or an ID ("C0123ABC"); title heads the attachment (the
// app's name by default) and url makes the title a link.
type Slack struct {
	common
	channel string
	title   string
	link    string
}

func parseSlack(u *url.URL) (*Slack, error) {
	if u.User != nil {
		return nil, fmt.Errorf("slack notifier: credentials do not belong in the URL; set %s", SlackTokenEnv)
	}
	channel := u.Host
	if channel == "" && u.Fragment != "" {
		return nil, fmt.Errorf("slack notifier: write the channel without # (slack://%s)", u.Fragment)
	}
	if channel == "" {
		return nil, errors.New("slack notifier: no channel (want slack://<channel>)")
	}
	if (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, errors.New("slack notifier: unexpected path (want slack://<channel>?title=...)")
	}
	opts, c, _, err := options("slack", u.Query(), []string{"title", "url"}, false)
	if err != nil {
		return nil, err
	}
	s := &Slack{common: c, channel: channel, title: opts["title"], link: opts["url"]}
	if s.link != "" {
		l, err := url.Parse(s.link)
		if err != nil || (l.Scheme != "http" && l.Scheme != "https") || l.Host == "" {
			return nil, errors.New("slack notifier: option url must be an http:// or https:// URL")
		}
	}
	return s, nil
}

// String implements Notifier.
func (s *Slack) String() string { return "slack://" + s.channel }

func (s *Slack) secrets(getenv func(string) string) []string {
	return []string{getenv(SlackTokenEnv)}
}

type slackPayload struct {
	Channel     string            `json:"channel"`
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Fallback  string       `json:"fallback"`
	Color     string       `json:"color"`
	Title     string       `json:"title,omitempty"`
	TitleLink string       `json:"title_link,omitempty"`
	Text      string       `json:"text,omitempty"`
	Fields    []slackField `json:"fields,omitempty"`
	Footer    string       `json:"footer,omitempty"`
	Ts        int64        `json:"ts,omitempty"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

type slackResponse struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// slackPermanent are chat.postMessage errors that retrying cannot fix.
var slackPermanent = map[string]bool{
	"not_authed": true, "invalid_auth": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "channel_not_found": true,
	"not_in_channel": true, "is_archived": true, "msg_too_long": true, "no_text": true,
	"invalid_arguments": true, "restricted_action": true, "ekm_access_denied": true,
}

// Colours of the attachment bar.
func slackColor(k Kind) string {
	switch k {
	case DeploySucceeded:
		return "good"
	case RolledBack:
		return "warning"
	case DeployStarted:
		return "#439FE0"
	default:
		return "danger"
	}
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (s *Slack) payload(m Message, secrets []string) slackPayload {
	summary := slackEscape(redact(m.Summary(), secrets...))
	title := s.title
	if title == "" {
		title = m.App
	}
	a := slackAttachment{
		Fallback:  summary,
		Color:     slackColor(m.Kind),
		Title:     slackEscape(title),
		TitleLink: s.link,
		Text:      summary,
		Footer:    "dewy-agent",
	}
	if !m.Time.IsZero() {
		a.Ts = m.Time.Unix()
	}
	add := func(title, value string, short bool) {
		if value != "" {
			a.Fields = append(a.Fields, slackField{Title: title, Value: value, Short: short})
		}
	}
	add("Version", slackEscape(m.Version), true)
	add("Previous", slackEscape(m.PreviousVersion), true)
	add("Host", slackEscape(m.Host), true)
	add("Step", slackEscape(m.Step), true)
	if m.Kind == DeploySucceeded || m.Kind == DeployFailed {
		if m.Duration > 0 {
			add("Duration", roundDuration(m.Duration).String(), true)
		}
	}
	add("Error", slackEscape(redact(m.ErrText(), secrets...)), false)
	if o := m.OutputText(); o != "" {
		add("Output", "```\n"+slackEscape(redact(o, secrets...))+"\n```", false)
	}
	add("Note", slackEscape(m.Note()), false)
	return slackPayload{Channel: s.channel, Text: summary, Attachments: []slackAttachment{a}}
}

// Notify implements Notifier.
func (s *Slack) Notify(ctx context.Context, m Message, t Transport) error {
	token := t.Getenv(SlackTokenEnv)
	if token == "" {
		return permanent(fmt.Errorf("%s: %s is not set", s, SlackTokenEnv))
	}
	base := t.Getenv(SlackAPIURLEnv)
	if base == "" {
		base = DefaultSlackAPIURL
	}
	endpoint := strings.TrimSuffix(base, "/") + "/chat.postMessage"
	if _, err := url.Parse(endpoint); err != nil {
		return permanent(fmt.Errorf("%s: %s is not a valid URL", s, SlackAPIURLEnv))
	}
	what := s.String() + ": chat.postMessage"
	return jsonPost{
		what:     what,
		endpoint: endpoint,
		payload:  s.payload(m, []string{token}),
		header: func(req *http.Request) {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			req.Header.Set("Authorization", "Bearer "+token)
		},
		answer: func(b []byte) error {
			var r slackResponse
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("%s: answer is not the Web API's JSON: %w", what, err)
			}
			if r.OK {
				return nil
			}
			code := r.Error
			if code == "" {
				code = "unknown error"
			}
			err := fmt.Errorf("%s: %s", what, code)
			if slackPermanent[code] {
				return permanent(err)
			}
			return err
		},
		secrets: []string{token},
	}.send(ctx, t)
}

var _ Notifier = (*Slack)(nil)
