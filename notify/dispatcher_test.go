package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// testOptions are fast dispatcher options with a JSON log in logs.
func testOptions(logs *testkit.LogBuffer, client *http.Client) Options {
	return Options{
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient:   client,
		Backoff:      time.Millisecond,
		Timeout:      2 * time.Second,
		DrainTimeout: 2 * time.Second,
		Env:          envMap(),
		Host:         "web-1",
	}
}

// started runs d until the test ends.
func started(t *testing.T, d *Dispatcher) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(t.Context())
	}()
	t.Cleanup(func() {
		d.Close()
		<-done
	})
}

func summaries(reqs []hookRequest) []string {
	var out []string
	for _, r := range reqs {
		s := fmt.Sprintf("%s %s %s", r.Body.App, r.Body.Kind, r.Body.Version)
		if r.Body.Suppressing {
			s += " (suppressing)"
		}
		out = append(out, s)
	}
	return out
}

func TestDispatcherStormLimit(t *testing.T) {
	f := newFakeWebhook(t, nil)
	logs := &testkit.LogBuffer{}
	d := NewDispatcher([]Notifier{mustParse(t, f.url("", "/"))}, testOptions(logs, f.srv.Client()))
	started(t, d)

	failed := Event{App: "api", Kind: DeployFailed, Version: "v1.2.0", Err: "health check failed"}
	for range 5 {
		d.Send(Event{App: "api", Kind: DeployStarted, Version: "v1.2.0"})
		d.Send(failed)
	}
	d.Send(Event{App: "web", Kind: DeployFailed, Version: "v9.0.0"}) // another app: its own run
	d.Send(Event{App: "api", Kind: DeploySucceeded, Version: "v1.2.1"})
	d.Send(failed)
	d.Send(Event{App: "api", Kind: RegistryUnreachable}) // another kind: a new run
	d.Close()

	want := []string{
		"api deploy_started v1.2.0", "api deploy_failed v1.2.0",
		"api deploy_started v1.2.0", "api deploy_failed v1.2.0",
		"api deploy_started v1.2.0", "api deploy_failed v1.2.0 (suppressing)",
		"web deploy_failed v9.0.0",
		"api deploy_succeeded v1.2.1",
		"api deploy_failed v1.2.0",
		"api registry_unreachable ",
	}
	reqs := f.got()
	if got := summaries(reqs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	third := reqs[5].Body
	if third.Repeats != 3 || !strings.Contains(third.Text, "further repeats are suppressed until the next successful deploy of api") {
		t.Errorf("third failure: repeats %d text %q", third.Repeats, third.Text)
	}
	if reqs[8].Body.Repeats != 1 {
		t.Errorf("the failure after a success has repeats %d, want 1", reqs[8].Body.Repeats)
	}
	if reqs[0].Body.Host != "web-1" || reqs[0].Body.Time.IsZero() {
		t.Errorf("host %q time %v: want them filled in", reqs[0].Body.Host, reqs[0].Body.Time)
	}
}

func TestDispatcherResolved(t *testing.T) {
	f := newFakeWebhook(t, nil)
	d := NewDispatcher([]Notifier{mustParse(t, f.url("", "/"))}, testOptions(&testkit.LogBuffer{}, f.srv.Client()))
	started(t, d)
	down := Event{App: "api", Kind: RegistryUnreachable, Err: "dial tcp: connection refused"}
	for range 4 {
		d.Send(down)
	}
	d.Resolved("api", DeployFailed) // not the run it is in: no effect
	d.Send(down)
	d.Resolved("api", RegistryUnreachable)
	d.Send(down)
	d.Close()
	var repeats []int
	for _, r := range f.got() {
		repeats = append(repeats, r.Body.Repeats)
	}
	if fmt.Sprint(repeats) != "[1 2 3 1]" {
		t.Errorf("repeats of the messages sent = %v, want [1 2 3 1]", repeats)
	}
}

func TestDispatcherQuiet(t *testing.T) {
	f := newFakeWebhook(t, nil)
	d := NewDispatcher([]Notifier{
		mustParse(t, f.url("", "/loud")),
		mustParse(t, f.url("", "/quiet?quiet=true")),
	}, testOptions(&testkit.LogBuffer{}, f.srv.Client()))
	started(t, d)
	for _, k := range Kinds() {
		d.Send(Event{App: "api", Kind: k, Version: "v1"})
	}
	d.Close()
	byPath := map[string][]string{}
	for _, r := range f.got() {
		byPath[r.Path] = append(byPath[r.Path], string(r.Body.Kind))
	}
	if got, want := strings.Join(byPath["/loud"], ","), strings.Join(kindStrings(Kinds()), ","); got != want {
		t.Errorf("loud notifier got %s, want %s", got, want)
	}
	if got, want := strings.Join(byPath["/quiet"], ","), "deploy_succeeded,deploy_failed,rolled_back,hook_failed,disk_full,signature_rejected"; got != want {
		t.Errorf("quiet notifier got %s, want %s", got, want)
	}
}

func TestDispatcherSlowNotifierDoesNotBlock(t *testing.T) {
	hold := make(chan struct{}) // the slow webhook answers nothing until the test ends
	t.Cleanup(func() { close(hold) })
	slow := newFakeWebhook(t, func(r *http.Request, _ int) int {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	fast := newFakeWebhook(t, nil)
	logs := &testkit.LogBuffer{}
	opts := testOptions(logs, &http.Client{})
	opts.DrainTimeout = 200 * time.Millisecond
	opts.Timeout = 10 * time.Second
	d := NewDispatcher([]Notifier{mustParse(t, slow.url("", "/")), mustParse(t, fast.url("", "/"))}, opts)
	started(t, d)

	// Every Send returns while the slow webhook still holds its first
	// request: a Send that waited for it would never return.
	const n = 20
	var sent atomic.Int32
	go func() {
		for i := range n {
			d.Send(Event{App: "api", Kind: DeployStarted, Version: fmt.Sprintf("v1.0.%d", i)})
			sent.Add(1)
		}
	}()
	testkit.Eventually(t, 5*time.Second, "every Send to return", func() bool { return sent.Load() == n })
	testkit.Eventually(t, 5*time.Second, "the fast notifier to get every message", func() bool { return len(fast.got()) == n })

	start := time.Now()
	d.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s; the drain is bounded by 200ms", took)
	}
	if len(logs.Find(t, "notifications not delivered before shutdown were dropped")) != 1 {
		t.Errorf("no warning about dropped notifications in %s", logs)
	}
}

func TestDispatcherRetries(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		retries      int
		wantAttempts int
	}{
		{name: "server error retried", status: http.StatusInternalServerError, retries: 2, wantAttempts: 3},
		{name: "default retries", status: http.StatusServiceUnavailable, retries: 0, wantAttempts: 1 + DefaultRetries},
		{name: "no retries", status: http.StatusBadGateway, retries: -1, wantAttempts: 1},
		{name: "client error not retried", status: http.StatusBadRequest, retries: 2, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWebhook(t, func(*http.Request, int) int { return tt.status })
			logs := &testkit.LogBuffer{}
			opts := testOptions(logs, f.srv.Client())
			opts.Retries = tt.retries
			d := NewDispatcher([]Notifier{mustParse(t, f.url("", "/hook"))}, opts)
			started(t, d)
			d.Send(Event{App: "api", Kind: DeployFailed})
			testkit.Eventually(t, 5*time.Second, "the failure to be logged", func() bool { return len(logs.Find(t, "notification failed")) > 0 })
			if got := len(f.got()); got != tt.wantAttempts {
				t.Errorf("server saw %d attempts, want %d", got, tt.wantAttempts)
			}
			r := logs.Find(t, "notification failed")[0]
			if r["level"] != "ERROR" || r["attempts"] != float64(tt.wantAttempts) || r["app"] != "api" || r["kind"] != "deploy_failed" {
				t.Errorf("log record = %v", r)
			}
			if !strings.Contains(r["err"].(string), fmt.Sprintf("HTTP %d", tt.status)) {
				t.Errorf("logged error = %v", r["err"])
			}
		})
	}
}

func TestDispatcherQueueFull(t *testing.T) {
	release := make(chan struct{})
	f := newFakeWebhook(t, func(r *http.Request, n int) int {
		if n == 1 {
			<-release
		}
		return http.StatusOK
	})
	logs := &testkit.LogBuffer{}
	opts := testOptions(logs, f.srv.Client())
	opts.QueueSize = 1
	d := NewDispatcher([]Notifier{mustParse(t, f.url("", "/"))}, opts)
	started(t, d)

	d.Send(Event{App: "api", Kind: DeployStarted, Version: "v1"})
	// Once v1 has arrived, the worker is busy with it.
	<-f.arrived
	d.Send(Event{App: "api", Kind: DeployStarted, Version: "v2"}) // queued
	d.Send(Event{App: "api", Kind: DeployStarted, Version: "v3"}) // no room
	close(release)
	d.Close()

	if got := summaries(f.got()); strings.Join(got, ",") != "api deploy_started v1,api deploy_started v2" {
		t.Errorf("sent %v", got)
	}
	drops := logs.Find(t, "notification dropped: queue full")
	if len(drops) != 1 || drops[0]["level"] != "WARN" || drops[0]["notifier"] != "http://"+f.srv.Listener.Addr().String() {
		t.Errorf("drop warnings = %v", drops)
	}
}

func TestDispatcherBrokenNotifierIsolated(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/hook"
	l.Close()
	good := newFakeWebhook(t, nil)
	logs := &testkit.LogBuffer{}
	opts := testOptions(logs, &http.Client{})
	opts.Retries = 1
	d := NewDispatcher([]Notifier{mustParse(t, dead), mustParse(t, good.url("", "/"))}, opts)
	started(t, d)
	for i := range 3 {
		d.Send(Event{App: "api", Kind: DeployStarted, Version: fmt.Sprint(i)})
	}
	d.Close()
	if len(good.got()) != 3 {
		t.Errorf("the working notifier got %d of 3 messages", len(good.got()))
	}
	if got := len(logs.Find(t, "notification failed")); got != 3 {
		t.Errorf("%d failures logged for the broken notifier, want 3", got)
	}
}

func TestDispatcherKeepsSecrets(t *testing.T) {
	const mailPassword = "m4il-s3cret"
	slack := newFakeSlack(t)
	slack.fail = "internal_error"
	hook := newFakeWebhook(t, nil)
	logs := &testkit.LogBuffer{}
	opts := testOptions(logs, &http.Client{})
	opts.Retries = -1
	opts.Env = envMap(SlackTokenEnv, testSlackToken, SlackAPIURLEnv, slack.srv.URL+"/api/", MailPasswordEnv, mailPassword)
	d := NewDispatcher([]Notifier{
		mustParse(t, "slack://deploys"),
		mustParse(t, hook.url("user:h00k-s3cret", "/")),
	}, opts)
	started(t, d)
	d.Send(Event{
		App: "api", Kind: HookFailed, Step: "before_deploy",
		Err:    "exit 1 (token " + testSlackToken + ")",
		Output: "MAIL_PASSWORD=" + mailPassword + "\npass=h00k-s3cret",
	})
	d.Close()

	reqs := hook.got()
	if len(reqs) != 1 {
		t.Fatalf("webhook got %d messages", len(reqs))
	}
	for _, s := range []string{testSlackToken, mailPassword, "h00k-s3cret"} {
		if strings.Contains(reqs[0].Raw, s) {
			t.Errorf("a secret reached the webhook message: %s", reqs[0].Raw)
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("a secret reached the log: %s", logs)
		}
	}
	if !strings.Contains(reqs[0].Body.Output, redacted) {
		t.Errorf("output %q was not redacted", reqs[0].Body.Output)
	}
	if len(logs.Find(t, "notification failed")) != 1 {
		t.Errorf("the Slack failure was not logged: %s", logs)
	}
}

func TestDispatcherLifecycle(t *testing.T) {
	f := newFakeWebhook(t, nil)
	n := mustParse(t, f.url("", "/"))

	t.Run("close without run delivers what was queued", func(t *testing.T) {
		before := len(f.got())
		d := NewDispatcher([]Notifier{n}, testOptions(&testkit.LogBuffer{}, f.srv.Client()))
		d.Send(Event{App: "api", Kind: DeployStarted})
		d.Close()
		d.Close()
		d.Run(t.Context()) // returns at once
		d.Send(Event{App: "api", Kind: DeployStarted})
		if got := len(f.got()) - before; got != 1 {
			t.Errorf("delivered %d messages, want the 1 sent before Close", got)
		}
	})
	t.Run("context cancel drains", func(t *testing.T) {
		before := len(f.got())
		d := NewDispatcher([]Notifier{n}, testOptions(&testkit.LogBuffer{}, f.srv.Client()))
		ctx, cancel := context.WithCancel(t.Context())
		for range 5 {
			d.Send(Event{App: "api", Kind: DeployStarted})
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.Run(ctx)
		}()
		cancel()
		<-done
		if got := len(f.got()) - before; got != 5 {
			t.Errorf("delivered %d of 5 queued messages", got)
		}
		d.Send(Event{App: "api", Kind: DeployStarted}) // after the stop: dropped, no panic
		d.Close()
		if got := len(f.got()) - before; got != 5 {
			t.Errorf("a message sent after the stop was delivered")
		}
	})
}
