package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// envMap is a Getenv over a fixed map, so tests need not touch the process
// environment.
func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// notifyOne sends m with n and returns the one delivery the fake server
// reports with got.
func notifyOne[T any](t *testing.T, n Notifier, m Message, tr Transport, got func() []T) T {
	t.Helper()
	if err := n.Notify(t.Context(), m, tr); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	d := got()
	if len(d) != 1 {
		t.Fatalf("the server got %d deliveries, want 1", len(d))
	}
	return d[0]
}

// checkFailure checks an error from Notify: it holds want, is permanent
// exactly when permanent is set, and holds none of the secrets.
func checkFailure(t *testing.T, err error, want string, permanent bool, secrets ...string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	if IsPermanent(err) != permanent {
		t.Errorf("IsPermanent = %v, want %v", IsPermanent(err), permanent)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func mustParse(t *testing.T, raw string) Notifier {
	t.Helper()
	n, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse(%q): %v", raw, err)
	}
	return n
}

func TestParse(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		wantString string // for good URLs
		wantErr    string // for bad URLs
		secret     string // must appear in neither String nor the error
	}{
		{name: "slack", raw: "slack://deploys?title=api&url=https://ci.example.com/api", wantString: "slack://deploys"},
		{name: "slack quiet", raw: "slack://deploys?quiet=true", wantString: "slack://deploys"},
		{name: "mail", raw: "mail://smtp.example.com:587/ops@example.com?from=dewy@example.com&subject=prod", wantString: "mail://smtp.example.com:587/ops@example.com"},
		{name: "mail default port and two recipients", raw: "mail://smtp.example.com/ops@example.com,dev@example.com", wantString: "mail://smtp.example.com:25/ops@example.com,dev@example.com"},
		{name: "mail credentials hidden", raw: "mail://bob:pa55word-x@smtp.example.com:587/ops@example.com", wantString: "mail://smtp.example.com:587/ops@example.com", secret: "pa55word-x"},
		{name: "webhook path hidden", raw: "https://hooks.example.com/services/T0/B0/s3cretpath", wantString: "https://hooks.example.com/...", secret: "s3cretpath"},
		{name: "webhook basic auth hidden", raw: "http://u:p4ssw0rd@127.0.0.1:9000/", wantString: "http://127.0.0.1:9000", secret: "p4ssw0rd"},
		{name: "webhook query token hidden", raw: "https://hooks.example.com?token=tok3n-value&quiet=false", wantString: "https://hooks.example.com/...", secret: "tok3n-value"},
		{name: "upper-case scheme", raw: "HTTPS://hooks.example.com", wantString: "https://hooks.example.com"},

		{name: "empty", raw: " ", wantErr: "notifier URL is empty"},
		{name: "no scheme", raw: "deploys", wantErr: "has no scheme"},
		{name: "unknown scheme", raw: "ftp://files.example.com/x", wantErr: `unknown notifier scheme "ftp"`},
		{name: "unparseable keeps credentials out", raw: "https://u:hunter2-pw@host:bad/x", wantErr: "notifier URL is not valid", secret: "hunter2-pw"},
		{name: "opaque", raw: "mail:ops@example.com", wantErr: "must be mail://"},
		{name: "slack no channel", raw: "slack://", wantErr: "slack notifier: no channel"},
		{name: "slack channel with hash", raw: "slack://#deploys", wantErr: "slack notifier: write the channel without # (slack://deploys)"},
		{name: "slack path", raw: "slack://deploys/extra", wantErr: "slack notifier: unexpected path"},
		{name: "slack unknown option", raw: "slack://deploys?colour=red", wantErr: `slack notifier: unknown option "colour" (allowed: title, url, quiet)`},
		{name: "slack bad quiet", raw: "slack://deploys?quiet=maybe", wantErr: "slack notifier: option quiet must be true or false"},
		{name: "slack repeated option", raw: "slack://deploys?title=a&title=b", wantErr: "slack notifier: option title is given 2 times"},
		{name: "slack token in URL", raw: "slack://xoxb-s3cret-token@deploys", wantErr: "credentials do not belong in the URL; set SLACK_TOKEN", secret: "xoxb-s3cret-token"},
		{name: "slack bad link", raw: "slack://deploys?url=ftp://x", wantErr: "slack notifier: option url must be an http:// or https:// URL"},
		{name: "mail no recipient", raw: "mail://smtp.example.com:25", wantErr: "mail notifier: no recipient"},
		{name: "mail no server", raw: "mail:///ops@example.com", wantErr: "mail notifier: no SMTP server"},
		{name: "mail bad port", raw: "mail://smtp.example.com:99999/ops@example.com", wantErr: "mail notifier: port must be a number"},
		{name: "mail bad recipient", raw: "mail://smtp.example.com/not-an-address", wantErr: `mail notifier: recipient "not-an-address" is not an email address`},
		{name: "mail bad from", raw: "mail://bob:secr3t-pw@smtp.example.com/ops@example.com?from=nobody", wantErr: `mail notifier: option from "nobody" is not an email address`, secret: "secr3t-pw"},
		{name: "mail subject on two lines", raw: "mail://smtp.example.com/ops@example.com?subject=a%0Ab", wantErr: "mail notifier: option subject must be one line"},
		{name: "mail unknown option", raw: "mail://smtp.example.com/ops@example.com?tls=off", wantErr: `mail notifier: unknown option "tls"`},
		{name: "webhook no host", raw: "https://user:hunter3-pw@/hook", wantErr: "https notifier: no host", secret: "hunter3-pw"},
		{name: "webhook bad quiet", raw: "https://hooks.example.com/x?quiet=1x", wantErr: "https notifier: option quiet must be true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.raw)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want an error", tt.raw, n)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
					t.Errorf("error %q leaks a credential", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			if got := n.String(); got != tt.wantString {
				t.Errorf("String() = %q, want %q", got, tt.wantString)
			}
			if tt.secret != "" && strings.Contains(n.String(), tt.secret) {
				t.Errorf("String() %q leaks a credential", n)
			}
		})
	}
}

func TestParseAll(t *testing.T) {
	ns, err := ParseAll([]string{"slack://deploys", "https://hooks.example.com/x"})
	if err != nil || len(ns) != 2 {
		t.Fatalf("ParseAll(good) = %v, %v", ns, err)
	}
	_, err = ParseAll([]string{"ftp://x", "slack://deploys", "mail://smtp.example.com"})
	if err == nil {
		t.Fatal("ParseAll(bad) returned no error")
	}
	for _, want := range []string{`notify[0]: unknown notifier scheme "ftp"`, "notify[2]: mail notifier: no recipient"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "notify[1]") {
		t.Errorf("error %q blames the good URL", err)
	}
}

func TestWantsQuiet(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []Kind
	}{
		{name: "loud", raw: "slack://deploys", want: Kinds()},
		{name: "quiet slack", raw: "slack://deploys?quiet=true", want: []Kind{DeploySucceeded, DeployFailed, RolledBack, HookFailed, DiskFull, SignatureRejected}},
		{name: "quiet mail", raw: "mail://smtp.example.com/ops@example.com?quiet=true", want: []Kind{DeploySucceeded, DeployFailed, RolledBack, HookFailed, DiskFull, SignatureRejected}},
		{name: "quiet webhook", raw: "https://hooks.example.com/x?quiet=true", want: []Kind{DeploySucceeded, DeployFailed, RolledBack, HookFailed, DiskFull, SignatureRejected}},
		{name: "quiet false", raw: "https://hooks.example.com/x?quiet=false", want: Kinds()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustParse(t, tt.raw)
			var got []Kind
			for _, k := range Kinds() {
				if n.Wants(k) {
					got = append(got, k)
				}
			}
			if strings.Join(kindStrings(got), ",") != strings.Join(kindStrings(tt.want), ",") {
				t.Errorf("wants %v, want %v", got, tt.want)
			}
		})
	}
}

func kindStrings(ks []Kind) []string {
	var out []string
	for _, k := range ks {
		out = append(out, string(k))
	}
	return out
}

func TestMessageSummary(t *testing.T) {
	base := Event{App: "api", Host: "web-1", Version: "v1.2.0", PreviousVersion: "v1.1.0"}
	with := func(k Kind, f func(*Event)) Event {
		e := base
		e.Kind = k
		if f != nil {
			f(&e)
		}
		return e
	}
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{name: "started", e: with(DeployStarted, nil), want: "api: deploying v1.2.0 on web-1 (replacing v1.1.0)"},
		{name: "first deploy", e: with(DeployStarted, func(e *Event) { e.PreviousVersion = "" }), want: "api: deploying v1.2.0 on web-1 (first deploy)"},
		{name: "succeeded", e: with(DeploySucceeded, func(e *Event) { e.Duration = 12345 * time.Millisecond }), want: "api: v1.2.0 is live on web-1 (was v1.1.0, took 12.345s)"},
		{name: "failed", e: with(DeployFailed, func(e *Event) { e.Step = "health" }), want: "api: deploy of v1.2.0 failed at health on web-1; v1.1.0 keeps running"},
		{name: "rolled back", e: with(RolledBack, nil), want: "api: v1.2.0 failed on web-1 and was rolled back to v1.1.0"},
		{name: "hook failed", e: with(HookFailed, func(e *Event) { e.Step = "before_deploy" }), want: "api: before_deploy hook failed for v1.2.0 on web-1"},
		{name: "registry unreachable", e: with(RegistryUnreachable, func(e *Event) { e.Version = "" }), want: "api: registry unreachable on web-1"},
		{name: "signature rejected", e: with(SignatureRejected, nil), want: "api: v1.2.0 refused on web-1: its signature does not verify with a trusted key; v1.1.0 keeps running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Message{Event: tt.e}).Summary(); got != tt.want {
				t.Errorf("Summary() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMessageTextBounded(t *testing.T) {
	m := Message{
		Event:       Event{App: "api", Kind: HookFailed, Step: "before_deploy", Err: strings.Repeat("e", 5000), Output: strings.Repeat("line\n", 2000) + "last line"},
		Repeats:     3,
		Suppressing: true,
	}
	text := m.Text()
	if len(m.OutputText()) > MaxOutputBytes+len("[...]\n") || !strings.HasSuffix(m.OutputText(), "last line") {
		t.Errorf("output is not the bounded tail: %d bytes", len(m.OutputText()))
	}
	if len(m.ErrText()) > maxErrBytes+len(" [...]") {
		t.Errorf("error text is %d bytes", len(m.ErrText()))
	}
	if !strings.Contains(text, "further repeats are suppressed until the next successful deploy of api") {
		t.Errorf("text lacks the suppression note: %q", text[len(text)-200:])
	}
}

func TestIsPermanent(t *testing.T) {
	err := permanent(errors.New("channel_not_found"))
	if !IsPermanent(err) || !IsPermanent(scrub(err)) {
		t.Error("permanent error not recognised")
	}
	if IsPermanent(errors.New("timeout")) {
		t.Error("plain error taken as permanent")
	}
	s := scrub(permanent(errors.New("auth failed for s3cr3t-value")), "s3cr3t-value")
	if !IsPermanent(s) || strings.Contains(s.Error(), "s3cr3t-value") {
		t.Errorf("scrub = %v (permanent %v)", s, IsPermanent(s))
	}
}
