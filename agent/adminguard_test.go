package agent

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// startAdminAgent runs an agent with one app "web" and its admin API on a
// free loopback port, with admin_token = token when token is not "".
func startAdminAgent(t *testing.T, token string) (*Agent, string) {
	t.Helper()
	e := newEnv(t)
	text := strings.Replace(e.config("1h", "web"), `admin = ""`, `admin = "127.0.0.1:0"`, 1)
	if token != "" {
		t.Setenv("DEWY_TEST_ADMIN_TOKEN", token)
		text = strings.Replace(text, `admin = "127.0.0.1:0"`, "admin = \"127.0.0.1:0\"\n  admin_token = env(\"DEWY_TEST_ADMIN_TOKEN\")", 1)
	}
	e.write(text)
	a := e.start(Options{})
	waitFor(t, "admin API up", func() bool { return a.AdminAddr() != "" })
	return a, a.AdminAddr()
}

func TestAdminRules(t *testing.T) {
	const token = "admin-tok-3f9a"
	_, addr := startAdminAgent(t, token)
	_, port, _ := net.SplitHostPort(addr)
	bearer := map[string]string{"Authorization": "Bearer " + token}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name         string
		method, path string
		host         string // "" : addr
		headers      map[string]string
		body         string
		want         int
		wantErr      string
	}{
		{name: "healthz needs no token", method: "GET", path: "/healthz", want: 200},
		{name: "status needs the token", method: "GET", path: "/status", want: 401, wantErr: "needs a token"},
		{name: "status with a wrong token", method: "GET", path: "/status", headers: map[string]string{"Authorization": "Bearer nope"}, want: 401},
		{name: "status with a basic auth", method: "GET", path: "/status", headers: map[string]string{"Authorization": "Basic " + token}, want: 401},
		{name: "status with the token", method: "GET", path: "/status", headers: bearer, want: 200},
		{name: "metrics need the token", method: "GET", path: "/metrics", want: 401},
		{name: "localhost is its own", method: "GET", path: "/status", host: "localhost:" + port, headers: bearer, want: 200},
		{name: "ipv6 loopback is its own", method: "GET", path: "/status", host: "[::1]:" + port, headers: bearer, want: 200},
		{name: "rebound name refused", method: "GET", path: "/status", host: "attacker.example:" + port, headers: bearer, want: 421, wantErr: "answers only to its own address"},
		{name: "rebound name refused on healthz", method: "GET", path: "/healthz", host: "attacker.example", want: 421},
		{name: "foreign origin refused", method: "GET", path: "/status", headers: with(bearer, "Origin", "http://attacker.example"), want: 403, wantErr: "cross-site"},
		{name: "null origin refused", method: "GET", path: "/status", headers: with(bearer, "Origin", "null"), want: 403},
		{name: "own origin accepted", method: "GET", path: "/status", headers: with(bearer, "Origin", "http://"+addr), want: 200},
		{name: "form post refused", method: "POST", path: "/apps/web/retry", headers: with(bearer, "Content-Type", "application/x-www-form-urlencoded"), want: 403, wantErr: "X-Dewy-Agent"},
		{name: "text post refused", method: "POST", path: "/reload", headers: with(bearer, "Content-Type", "text/plain"), want: 403},
		{name: "post without type refused", method: "POST", path: "/reload", headers: bearer, want: 403},
		{name: "foreign origin post refused", method: "POST", path: "/apps/web/retry", headers: with(bearer, "Content-Type", "application/json", "Origin", "https://attacker.example"), want: 403},
		{name: "json post accepted", method: "POST", path: "/apps/web/retry", headers: with(bearer, "Content-Type", "application/json; charset=utf-8"), want: 202},
		{name: "cli header accepted", method: "POST", path: "/apps/web/retry", headers: with(bearer, AdminClientHeader, "1"), want: 202},
		{name: "reload through the cli header", method: "POST", path: "/reload", headers: with(bearer, AdminClientHeader, "1"), want: 200},
		{name: "post without the token", method: "POST", path: "/apps/web/retry", headers: map[string]string{AdminClientHeader: "1"}, want: 401},
		{name: "unknown app in a sentence", method: "POST", path: "/apps/nope/retry", headers: with(bearer, AdminClientHeader, "1"), want: 404, wantErr: `the agent has no app named \"nope\"`},
		{name: "body too large", method: "POST", path: "/reload", headers: with(bearer, AdminClientHeader, "1"), body: strings.Repeat("x", AdminMaxBodyBytes+1), want: 413},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://"+addr+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.want)
			}
			if !strings.Contains(string(body), tt.wantErr) {
				t.Errorf("body %s lacks %q", body, tt.wantErr)
			}
			if strings.Contains(string(body), token) {
				t.Errorf("body repeats the token: %s", body)
			}
		})
	}
}

func TestAdminWithoutTokenOnLoopback(t *testing.T) {
	_, addr := startAdminAgent(t, "")
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /status without admin_token = %s", resp.Status)
	}
}

// TestAdminSilentConnectionClosed: a connection that never sends a request
// is closed after the read-header timeout.
func TestAdminSilentConnectionClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the read-header timeout")
	}
	_, addr := startAdminAgent(t, "")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(AdminReadHeaderTimeout + 5*time.Second))
	_, err = c.Read(make([]byte, 1))
	if err != io.EOF {
		t.Fatalf("read on a silent connection: %v, want EOF from the server", err)
	}
	if took := time.Since(start); took < AdminReadHeaderTimeout-time.Second {
		t.Errorf("closed after %s, before the read-header timeout", took)
	}
}

// TestAdminIdleConnectionFlood opens many more idle connections than the
// admin API holds: it still answers at once, and holds at most AdminMaxConns
// of them, so the agent's file descriptors stay bounded.
func TestAdminIdleConnectionFlood(t *testing.T) {
	a, addr := startAdminAgent(t, "")
	before := openFDs(t)
	const flood = 600
	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	// Half of them send a partial request and stop, as a slow client does.
	for _, c := range conns[:flood/2] {
		fmt.Fprintf(c, "GET /status HTTP/1.1\r\nHost: %s\r\n", addr)
	}

	client := &http.Client{Timeout: 3 * time.Second}
	testkit.Eventually(t, 10*time.Second, "status answered during the flood", func() bool {
		resp, err := client.Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	a.mu.Lock()
	lim := a.admin.conns
	a.mu.Unlock()
	testkit.Eventually(t, 10*time.Second, "the server holds at most AdminMaxConns", func() bool {
		return lim.open() <= AdminMaxConns
	})
	// The test's own flood connections are descriptors of this process too.
	if grew := openFDs(t) - before - flood; grew > AdminMaxConns+16 {
		t.Errorf("the agent holds %d more descriptors during a flood of %d idle connections, want at most %d", grew, flood, AdminMaxConns+16)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}
