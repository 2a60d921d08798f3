package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSlackToken = "xoxb-1111-2222-s3cr3tT0ken"

// fakeSlack speaks the part of the Slack Web API the notifier uses:
// POST /api/chat.postMessage with a bearer token and a JSON body, answered
// with 200 and {"ok": ...} as Slack does.
type fakeSlack struct {
	srv *httptest.Server

	mu       sync.Mutex
	posts    []slackPayload
	raw      []string
	status   int    // when set, answer with this HTTP status
	fail     string // when set, answer ok:false with this error
	channels map[string]bool
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{channels: map[string]bool{"deploys": true, "C0123ABC": true}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) env(token string) func(string) string {
	return envMap(SlackTokenEnv, token, SlackAPIURLEnv, f.srv.URL+"/api/")
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	answer := func(v map[string]any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(v)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/chat.postMessage" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		answer(map[string]any{"ok": false, "error": "not_authed"})
		return
	case auth != "Bearer "+testSlackToken:
		answer(map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		answer(map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	body, err := io.ReadAll(r.Body)
	var p slackPayload
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	if err != nil {
		answer(map[string]any{"ok": false, "error": "invalid_json"})
		return
	}
	if f.fail != "" {
		answer(map[string]any{"ok": false, "error": f.fail})
		return
	}
	if !f.channels[p.Channel] {
		answer(map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	f.posts = append(f.posts, p)
	f.raw = append(f.raw, string(body))
	answer(map[string]any{"ok": true, "channel": "C0123ABC", "ts": "1700000000.000100"})
}

func (f *fakeSlack) got() []slackPayload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackPayload(nil), f.posts...)
}

func TestSlackPostsMessage(t *testing.T) {
	f := newFakeSlack(t)
	n := mustParse(t, "slack://deploys?title=api-prod&url=https://ci.example.com/api")
	m := Message{Event: Event{
		App: "api", Host: "web-1", Kind: DeploySucceeded, Version: "v1.2.0", PreviousVersion: "v1.1.0",
		Duration: 3 * time.Second, Time: time.Unix(1700000000, 0),
	}}
	tr := Transport{HTTPClient: f.srv.Client(), Getenv: f.env(testSlackToken)}
	p := notifyOne(t, n, m, tr, f.got)
	if p.Channel != "deploys" || !strings.Contains(p.Text, "api: v1.2.0 is live on web-1") {
		t.Errorf("channel %q text %q", p.Channel, p.Text)
	}
	if len(p.Attachments) != 1 {
		t.Fatalf("attachments = %+v", p.Attachments)
	}
	a := p.Attachments[0]
	if a.Title != "api-prod" || a.TitleLink != "https://ci.example.com/api" || a.Color != "good" || a.Ts != 1700000000 {
		t.Errorf("attachment = %+v", a)
	}
	fields := map[string]string{}
	for _, fl := range a.Fields {
		fields[fl.Title] = fl.Value
	}
	if fields["Version"] != "v1.2.0" || fields["Previous"] != "v1.1.0" || fields["Host"] != "web-1" || fields["Duration"] != "3s" {
		t.Errorf("fields = %v", fields)
	}
}

func TestSlackFailurePayload(t *testing.T) {
	f := newFakeSlack(t)
	n := mustParse(t, "slack://C0123ABC")
	m := Message{
		Event: Event{
			App: "api", Host: "web-1", Kind: HookFailed, Step: "before_deploy", Version: "v1.2.0",
			Err:    "before_deploy hook exited with status 3",
			Output: "pg_dump: error: <connection> refused\nSLACK_TOKEN=" + testSlackToken,
		},
		Repeats: 3, Suppressing: true,
	}
	tr := Transport{HTTPClient: f.srv.Client(), Getenv: f.env(testSlackToken)}
	p := notifyOne(t, n, m, tr, f.got)
	f.mu.Lock()
	raw := f.raw[0]
	f.mu.Unlock()
	if strings.Contains(raw, testSlackToken) {
		t.Errorf("the token reached the message: %s", raw)
	}
	a := p.Attachments[0]
	fields := map[string]string{}
	for _, fl := range a.Fields {
		fields[fl.Title] = fl.Value
	}
	if a.Color != "danger" || a.Title != "api" {
		t.Errorf("attachment colour %q title %q", a.Color, a.Title)
	}
	if !strings.Contains(fields["Output"], "&lt;connection&gt;") || !strings.Contains(fields["Output"], redacted) {
		t.Errorf("output field = %q, want it escaped and redacted", fields["Output"])
	}
	if fields["Error"] != "before_deploy hook exited with status 3" || fields["Step"] != "before_deploy" {
		t.Errorf("fields = %v", fields)
	}
	if !strings.Contains(fields["Note"], "further repeats are suppressed") {
		t.Errorf("note = %q", fields["Note"])
	}
}

func TestSlackErrors(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		token     string
		status    int
		fail      string
		wantErr   string
		permanent bool
	}{
		{name: "ok false: unknown channel", raw: "slack://nowhere", token: testSlackToken, wantErr: "slack://nowhere: chat.postMessage: channel_not_found", permanent: true},
		{name: "ok false: bad token", raw: "slack://deploys", token: "xoxb-wrong-t0ken", wantErr: "chat.postMessage: invalid_auth", permanent: true},
		{name: "ok false: transient", raw: "slack://deploys", token: testSlackToken, fail: "internal_error", wantErr: "chat.postMessage: internal_error"},
		{name: "no token", raw: "slack://deploys", wantErr: "slack://deploys: SLACK_TOKEN is not set", permanent: true},
		{name: "rate limited", raw: "slack://deploys", token: testSlackToken, status: http.StatusTooManyRequests, wantErr: "HTTP 429"},
		{name: "server error", raw: "slack://deploys", token: testSlackToken, status: http.StatusBadGateway, wantErr: "HTTP 502"},
		{name: "not found", raw: "slack://deploys", token: testSlackToken, status: http.StatusNotFound, wantErr: "HTTP 404", permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			f.status, f.fail = tt.status, tt.fail
			n := mustParse(t, tt.raw)
			tr := Transport{HTTPClient: f.srv.Client(), Getenv: f.env(tt.token)}
			err := n.Notify(t.Context(), Message{Event: Event{App: "api", Kind: DeployFailed}}, tr)
			checkFailure(t, err, tt.wantErr, tt.permanent, tt.token)
			if len(f.got()) != 0 {
				t.Error("a failed post was recorded")
			}
		})
	}
}
