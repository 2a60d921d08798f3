package notify

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookRequest is one request a fakeWebhook received.
type hookRequest struct {
	Path, Query, User, Password, ContentType string
	HasAuth                                  bool
	Body                                     WebhookPayload
	Raw                                      string
}

// fakeWebhook records JSON POSTs; respond decides the answer (200 when nil).
type fakeWebhook struct {
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []hookRequest
	respond func(r *http.Request, n int) int // n counts requests, from 1
	arrived chan struct{}                    // gets a value per request, when not full
}

func newFakeWebhook(t *testing.T, respond func(r *http.Request, n int) int) *fakeWebhook {
	f := &fakeWebhook{respond: respond, arrived: make(chan struct{}, 1000)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWebhook) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var p WebhookPayload
	if err := json.Unmarshal(raw, &p); err != nil || r.Method != http.MethodPost {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	user, pass, ok := r.BasicAuth()
	f.mu.Lock()
	f.reqs = append(f.reqs, hookRequest{
		Path: r.URL.Path, Query: r.URL.RawQuery, User: user, Password: pass, HasAuth: ok,
		ContentType: r.Header.Get("Content-Type"), Body: p, Raw: string(raw),
	})
	n := len(f.reqs)
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default:
	}
	status := http.StatusOK
	if f.respond != nil {
		status = f.respond(r, n)
	}
	w.WriteHeader(status)
}

func (f *fakeWebhook) got() []hookRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hookRequest(nil), f.reqs...)
}

// url returns the server's URL with user info and path.
func (f *fakeWebhook) url(userinfo, pathAndQuery string) string {
	u := f.srv.URL
	if userinfo != "" {
		u = strings.Replace(u, "http://", "http://"+userinfo+"@", 1)
	}
	return u + pathAndQuery
}

func TestWebhookPostsJSON(t *testing.T) {
	f := newFakeWebhook(t, nil)
	n := mustParse(t, f.url("ci:w3bh00k-pass", "/hooks/deploy?token=abc123&quiet=false"))
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	m := Message{Event: Event{
		App: "api", Host: "web-1", Kind: DeployFailed, Version: "v1.2.0", PreviousVersion: "v1.1.0",
		Duration: 1500 * time.Millisecond, Step: "health", Err: "health check failed: 503", Time: at,
	}, Repeats: 1}
	r := notifyOne(t, n, m, Transport{HTTPClient: f.srv.Client(), Getenv: envMap()}, f.got)
	if r.Path != "/hooks/deploy" || r.Query != "token=abc123" {
		t.Errorf("path %q query %q: want the URL less the quiet option", r.Path, r.Query)
	}
	if !r.HasAuth || r.User != "ci" || r.Password != "w3bh00k-pass" {
		t.Errorf("basic auth = %v %q %q", r.HasAuth, r.User, r.Password)
	}
	if r.ContentType != "application/json" {
		t.Errorf("content type %q", r.ContentType)
	}
	want := WebhookPayload{
		App: "api", Host: "web-1", Kind: DeployFailed, Version: "v1.2.0", PreviousVersion: "v1.1.0",
		DurationSeconds: 1.5, Step: "health", Error: "health check failed: 503", Time: at,
		Text:    "api: deploy of v1.2.0 failed at health on web-1; v1.1.0 keeps running\nError: health check failed: 503",
		Repeats: 1,
	}
	if r.Body != want {
		t.Errorf("payload\n%+v\nwant\n%+v", r.Body, want)
	}
	for _, key := range []string{`"app"`, `"kind":"deploy_failed"`, `"previous_version"`, `"duration_seconds":1.5`, `"time":"2025-01-02T03:04:05Z"`} {
		if !strings.Contains(r.Raw, key) {
			t.Errorf("raw payload %s lacks %s", r.Raw, key)
		}
	}
}

func TestWebhookErrors(t *testing.T) {
	// A port with nothing listening: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()

	tests := []struct {
		name      string
		status    int
		url       func(f *fakeWebhook) string
		wantErr   string
		permanent bool
	}{
		{name: "server error", status: 500, wantErr: "HTTP 500"},
		{name: "too many requests", status: 429, wantErr: "HTTP 429"},
		{name: "not found", status: 404, wantErr: "HTTP 404", permanent: true},
		{name: "unauthorized", status: 401, wantErr: "HTTP 401", permanent: true},
		{name: "connection refused", url: func(*fakeWebhook) string {
			return "http://admin:s3cret-pw@" + closedAddr + "/services/T0/B0/s3cret-path?key=s3cret-key"
		}, wantErr: "http://" + closedAddr + "/...: post:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWebhook(t, func(*http.Request, int) int { return tt.status })
			raw := f.url("admin:s3cret-pw", "/services/T0/B0/s3cret-path?key=s3cret-key")
			if tt.url != nil {
				raw = tt.url(f)
			}
			n := mustParse(t, raw)
			err := n.Notify(t.Context(), Message{Event: Event{App: "api", Kind: DeployFailed}}, Transport{HTTPClient: f.srv.Client(), Getenv: envMap()})
			checkFailure(t, err, tt.wantErr, tt.permanent, "s3cret")
		})
	}
}
