package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testcert"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message the fake SMTP server accepted.
type received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
}

// smtpBackend is a go-smtp backend that keeps what it receives and checks a
// PLAIN login when one is configured.
type smtpBackend struct {
	user, password string // the login it accepts; "" accepts none

	mu    sync.Mutex
	msgs  []received
	auths int // AUTH attempts
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, tlsOn := c.TLSConnectionState()
	return &smtpSession{b: b, tls: tlsOn}, nil
}

func (b *smtpBackend) got() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type smtpSession struct {
	b    *smtpBackend
	tls  bool
	user string
	cur  received
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		s.b.mu.Lock()
		s.b.auths++
		s.b.mu.Unlock()
		if username != s.b.user || password != s.b.password {
			return errors.New("invalid credentials")
		}
		s.user = username
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur = received{From: from, TLS: s.tls, AuthUser: s.user}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.cur = received{} }
func (s *smtpSession) Logout() error { return nil }

// startSMTP serves be on host (an address on the loopback). With cert set the
// server offers STARTTLS; without, it allows AUTH over plain text (net/smtp on
// the client side still refuses it to anything but localhost).
// password is the test login's password.
const password = "m4il-passw0rd"

// startTestSMTP starts be on host, asking for the test login when login is
// set and offering STARTTLS with cert unless it is nil.
func startTestSMTP(t *testing.T, host string, be *smtpBackend, login bool, cert *tls.Certificate) string {
	t.Helper()
	if login {
		be.user, be.password = "dewy", password
	}
	return startSMTP(t, host, be, cert)
}

func startSMTP(t *testing.T, host string, be *smtpBackend, cert *tls.Certificate) string {
	t.Helper()
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	s.ReadTimeout = 5 * time.Second
	s.WriteTimeout = 5 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	} else {
		s.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", host, err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.Serve(l)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
		}
		<-served
	})
	return l.Addr().String()
}

// readMail parses a received message and decodes its quoted-printable body.
func readMail(t *testing.T, data []byte) (*mail.Message, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	if msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("transfer encoding %q", msg.Header.Get("Content-Transfer-Encoding"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return msg, string(body)
}

func TestMailDelivers(t *testing.T) {
	cert, pool := testcert.New(t)
	tests := []struct {
		name      string
		tls       bool
		login     bool   // the server requires a login
		userinfo  string // in the URL
		env       []string
		wantUser  string
		query     string
		wantFrom  string
		wantSubj  string
		recipient string
	}{
		{
			name: "plain text, no login", query: "?from=dewy@example.com&subject=prod",
			wantFrom: "dewy@example.com", wantSubj: "[prod] api: deploy of v1.2.0 failed on web-1; v1.1.0 keeps running",
			recipient: "ops@example.com",
		},
		{
			name: "STARTTLS with login from the environment", tls: true, login: true,
			env: []string{MailUsernameEnv, "dewy", MailPasswordEnv, password}, wantUser: "dewy",
			wantFrom: "dewy-agent@web-1", wantSubj: "[dewy-agent] api: deploy of v1.2.0 failed on web-1; v1.1.0 keeps running",
			recipient: "ops@example.com,dev@example.com",
		},
		{
			name: "STARTTLS with login from the URL", tls: true, login: true, userinfo: "dewy:" + password + "@",
			env: []string{MailUsernameEnv, "someone-else", MailPasswordEnv, "wrong"}, wantUser: "dewy",
			wantFrom: "dewy-agent@web-1", wantSubj: "[dewy-agent] api: deploy of v1.2.0 failed on web-1; v1.1.0 keeps running",
			recipient: "ops@example.com",
		},
		{
			name: "plain text login to localhost", login: true,
			env: []string{MailUsernameEnv, "dewy", MailPasswordEnv, password}, wantUser: "dewy",
			wantFrom: "dewy-agent@web-1", wantSubj: "[dewy-agent] api: deploy of v1.2.0 failed on web-1; v1.1.0 keeps running",
			recipient: "ops@example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &smtpBackend{}
			addr := startTestSMTP(t, "127.0.0.1", be, tt.login, tlsCert(tt.tls, &cert))
			n := mustParse(t, "mail://"+tt.userinfo+addr+"/"+tt.recipient+tt.query)
			m := Message{Event: Event{
				App: "api", Host: "web-1", Kind: DeployFailed, Version: "v1.2.0", PreviousVersion: "v1.1.0",
				Err: "health check failed", Output: "leaked " + password + " here", Time: time.Now(),
			}}
			tr := Transport{Getenv: envMap(tt.env...), TLSConfig: &tls.Config{RootCAs: pool}}
			r := notifyOne(t, n, m, tr, be.got)
			if r.TLS != tt.tls {
				t.Errorf("TLS = %v, want %v", r.TLS, tt.tls)
			}
			if r.AuthUser != tt.wantUser {
				t.Errorf("logged in as %q, want %q", r.AuthUser, tt.wantUser)
			}
			if r.From != tt.wantFrom || strings.Join(r.To, ",") != tt.recipient {
				t.Errorf("envelope from %q to %v", r.From, r.To)
			}
			msg, body := readMail(t, r.Data)
			subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			if err != nil || subj != tt.wantSubj {
				t.Errorf("subject = %q (%v), want %q", subj, err, tt.wantSubj)
			}
			if msg.Header.Get("X-Dewy-Kind") != "deploy_failed" || msg.Header.Get("To") != strings.ReplaceAll(tt.recipient, ",", ", ") {
				t.Errorf("headers = %v", msg.Header)
			}
			if !strings.Contains(body, "Error: health check failed") {
				t.Errorf("body = %q", body)
			}
			if tt.login && (strings.Contains(string(r.Data), password) || strings.Contains(body, password)) {
				t.Errorf("the mail password reached the message")
			}
		})
	}
}

func TestMailRefuses(t *testing.T) {
	cert, _ := testcert.New(t)
	tests := []struct {
		name      string
		host      string
		tls       bool
		login     bool
		env       []string
		wantErr   string
		permanent bool
		wantAuths int
	}{
		{
			name: "untrusted certificate", host: "127.0.0.1", tls: true,
			wantErr: "STARTTLS: tls: failed to verify certificate",
		},
		{
			name: "wrong password", host: "127.0.0.1", login: true,
			env:     []string{MailUsernameEnv, "dewy", MailPasswordEnv, "wr0ng-passw0rd"},
			wantErr: "login: ", permanent: true, wantAuths: 1,
		},
		{
			// 127.0.0.2 is loopback but not "localhost" to net/smtp: PLAIN
			// over plain text is refused before the password is sent.
			name: "no PLAIN over plain text to a remote host", host: "127.0.0.2", login: true,
			env:     []string{MailUsernameEnv, "dewy", MailPasswordEnv, password},
			wantErr: "login: unencrypted connection", permanent: true,
		},
		{
			name: "login configured, server offers none", host: "127.0.0.1",
			env:     []string{MailUsernameEnv, "dewy", MailPasswordEnv, password},
			wantErr: "the server offers no AUTH", permanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &smtpBackend{}
			addr := startTestSMTP(t, tt.host, be, tt.login, tlsCert(tt.tls, &cert))
			n := mustParse(t, "mail://"+addr+"/ops@example.com")
			tr := Transport{Getenv: envMap(tt.env...)}
			err := n.Notify(t.Context(), Message{Event: Event{App: "api", Kind: DeployFailed}}, tr)
			checkFailure(t, err, tt.wantErr, tt.permanent, "passw0rd")
			if len(be.got()) != 0 {
				t.Error("a message was delivered")
			}
			be.mu.Lock()
			auths := be.auths
			be.mu.Unlock()
			if auths != tt.wantAuths {
				t.Errorf("server saw %d AUTH attempts, want %d", auths, tt.wantAuths)
			}
		})
	}
}

func TestMailHonoursContext(t *testing.T) {
	// A server that accepts and never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	conns.Go(func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c) // until the client hangs up
		c.Close()
	})
	defer func() {
		l.Close()
		conns.Wait()
	}()
	n := mustParse(t, "mail://"+l.Addr().String()+"/ops@example.com")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = n.Notify(ctx, Message{Event: Event{App: "api", Kind: DeployFailed}}, Transport{Getenv: envMap()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Notify took %s after its deadline", took)
	}
}

// tlsCert is c when on, else nil.
func tlsCert(on bool, c *tls.Certificate) *tls.Certificate {
	if on {
		return c
	}
	return nil
}
