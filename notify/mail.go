package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Mail environment.
const (
	// MailUsernameEnv and MailPasswordEnv name the variables holding the SMTP
	// login, used when the URL has no user info (or, for the password, when
	// the URL gives a user alone).
	MailUsernameEnv = "MAIL_USERNAME"
	MailPasswordEnv = "MAIL_PASSWORD"
	// DefaultMailPort is the SMTP port used when the URL gives none.
	DefaultMailPort = "25"
	// DefaultMailSubject heads every subject line unless subject= is set.
	DefaultMailSubject = "dewy-agent"
)

// Mail sends each message as a plain-text email over SMTP. It upgrades the
// connection with STARTTLS whenever the server offers it, and logs in (PLAIN)
// when a user is configured; PLAIN is refused over a connection that is
// neither encrypted nor to localhost.
//
// URL: mail://[user[:password]@]host[:port]/recipient[,recipient...]
// ?from=<address>&subject=<prefix>&quiet=true. The port defaults to 25, from
// to dewy-agent@<the event's host>; subject is put in brackets before the
// message's summary ("[deploys] api: v1.2.0 is live on web-1").
type Mail struct {
	common
	host     string // server host name, for TLS and PLAIN auth
	addr     string // host:port
	to       []string
	from     *mail.Address // nil: dewy-agent@<host>
	subject  string
	user     string
	password string
}

func parseMail(u *url.URL) (*Mail, error) {
	m := &Mail{host: u.Hostname()}
	if m.host == "" {
		return nil, errors.New("mail notifier: no SMTP server (want mail://host:port/recipient)")
	}
	port := u.Port()
	if port == "" {
		port = DefaultMailPort
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, errors.New("mail notifier: port must be a number from 1 to 65535")
	}
	m.addr = net.JoinHostPort(m.host, port)
	rcpts := strings.Trim(u.Path, "/")
	if rcpts == "" {
		return nil, errors.New("mail notifier: no recipient (want mail://host:port/recipient)")
	}
	for r := range strings.SplitSeq(rcpts, ",") {
		a, err := mail.ParseAddress(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("mail notifier: recipient %q is not an email address", r)
		}
		m.to = append(m.to, a.Address)
	}
	opts, c, _, err := options("mail", u.Query(), []string{"from", "subject"}, false)
	if err != nil {
		return nil, err
	}
	m.common = c
	if f, ok := opts["from"]; ok {
		a, err := mail.ParseAddress(f)
		if err != nil {
			return nil, fmt.Errorf("mail notifier: option from %q is not an email address", f)
		}
		m.from = a
	}
	m.subject = DefaultMailSubject
	if s, ok := opts["subject"]; ok {
		if strings.ContainsAny(s, "\r\n") {
			return nil, errors.New("mail notifier: option subject must be one line")
		}
		m.subject = s
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
	}
	return m, nil
}

// String implements Notifier.
func (m *Mail) String() string {
	return "mail://" + m.addr + "/" + strings.Join(m.to, ",")
}

// credentials returns the login to use: the URL's, else the environment's.
func (m *Mail) credentials(getenv func(string) string) (user, password string) {
	user, password = m.user, m.password
	if user == "" {
		user = getenv(MailUsernameEnv)
	}
	if password == "" {
		password = getenv(MailPasswordEnv)
	}
	return user, password
}

func (m *Mail) secrets(getenv func(string) string) []string {
	return []string{m.password, getenv(MailPasswordEnv)}
}

// Notify implements Notifier.
func (m *Mail) Notify(ctx context.Context, msg Message, t Transport) (err error) {
	user, password := m.credentials(t.Getenv)
	defer func() {
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%s: %w", m, context.Cause(ctx))
		}
		err = scrub(err, password, m.password)
	}()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("%s: connect: %w", m, err)
	}
	// net/smtp knows no context: closing the connection ends a blocked call
	// (and the error is then reported as ctx's, see above).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("%s: greeting: %w", m, err)
	}
	defer c.Close()
	if err := c.Hello(helloName(msg.Host)); err != nil {
		return fmt.Errorf("%s: EHLO: %w", m, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.TLSConfig != nil {
			cfg = t.TLSConfig.Clone()
		}
		cfg.ServerName = m.host
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("%s: STARTTLS: %w", m, err)
		}
	}
	if user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent(fmt.Errorf("%s: a login is configured but the server offers no AUTH", m))
		}
		// PlainAuth refuses to send the password in clear text to anything
		// but localhost.
		if err := c.Auth(smtp.PlainAuth("", user, password, m.host)); err != nil {
			return permanent(fmt.Errorf("%s: login: %w", m, err))
		}
	}
	from := m.fromAddress(msg.Host)
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("%s: MAIL FROM: %w", m, err)
	}
	for _, to := range m.to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("%s: RCPT TO %s: %w", m, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("%s: DATA: %w", m, err)
	}
	if _, err := w.Write(m.compose(msg, from, []string{password, m.password})); err != nil {
		w.Close()
		return fmt.Errorf("%s: send message: %w", m, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: send message: %w", m, err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("%s: QUIT: %w", m, err)
	}
	return nil
}

func (m *Mail) fromAddress(host string) *mail.Address {
	if m.from != nil {
		return m.from
	}
	return &mail.Address{Address: "dewy-agent@" + helloName(host)}
}

// compose builds the message: headers, then the text as quoted-printable.
func (m *Mail) compose(msg Message, from *mail.Address, secrets []string) []byte {
	oneLine := strings.NewReplacer("\r", " ", "\n", " ")
	subject := oneLine.Replace(redact(fmt.Sprintf("[%s] %s", m.subject, msg.Summary()), secrets...))
	date := msg.Time
	if date.IsZero() {
		date = time.Now()
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String())
	header("To", strings.Join(m.to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", date.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("X-Dewy-App", mime.QEncoding.Encode("utf-8", oneLine.Replace(msg.App)))
	header("X-Dewy-Kind", oneLine.Replace(string(msg.Kind)))
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(redact(msg.Text(), secrets...) + "\n\n-- \ndewy-agent\n"))
	qp.Close()
	return b.Bytes()
}

// helloName is host when it is a plain host name, else "localhost".
func helloName(host string) string {
	if host == "" || len(host) > 253 {
		return "localhost"
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "localhost"
		}
	}
	return host
}

var _ Notifier = (*Mail)(nil)
