package tcpproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// named is an HTTP backend answering its name.
func named(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, _ := time.ParseDuration(r.URL.Query().Get("sleep")); d > 0 {
			time.Sleep(d)
		}
		fmt.Fprint(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background(), 0) })
	return p
}

func get(t *testing.T, client *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestProxyRoundRobin(t *testing.T) {
	tests := []struct {
		name     string
		backends []string // "" is an address that refuses connections
		want     map[string]int
	}{
		{name: "two backends share", backends: []string{"a", "b"}, want: map[string]int{"a": 10, "b": 10}},
		{name: "a refusing backend is skipped", backends: []string{"a", "", "b"}, want: map[string]int{"a": 10, "b": 10}},
		{name: "one backend", backends: []string{"a"}, want: map[string]int{"a": 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestProxy(t)
			for _, n := range tt.backends {
				addr := testkit.ClosedAddr(t)
				if n != "" {
					addr = strings.TrimPrefix(named(t, n).URL, "http://")
				}
				p.Add(NewBackend(n, addr))
			}
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			got := map[string]int{}
			for range 20 {
				body, err := get(t, client, "http://"+p.Addr().String()+"/")
				if err != nil {
					t.Fatal(err)
				}
				got[body]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("answers = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestProxyDrain checks that a backend out of rotation keeps its open connection
// until it ends, and that Idle sees it, whether it left by Add and Remove (the
// container runner's swap) or by Set (the server runner's switch).
func TestProxyDrain(t *testing.T) {
	for _, how := range []string{"add-remove", "set"} {
		t.Run(how, func(t *testing.T) { testProxyDrain(t, how) })
	}
}

func testProxyDrain(t *testing.T, how string) {
	p := newTestProxy(t)
	oldB := NewBackend("old", strings.TrimPrefix(named(t, "old").URL, "http://"))
	newB := NewBackend("new", strings.TrimPrefix(named(t, "new").URL, "http://"))
	p.Add(oldB)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	url := "http://" + p.Addr().String()

	slow := make(chan string, 1)
	go func() {
		body, err := get(t, client, url+"/?sleep=300ms")
		if err != nil {
			body = err.Error()
		}
		slow <- body
	}()
	for oldB.Active() == 0 {
		time.Sleep(time.Millisecond)
	}
	if how == "set" {
		p.Set(newB)
	} else {
		p.Add(newB)
		p.Remove(oldB)
	}
	if p.InRotation(oldB) || !p.InRotation(newB) || len(p.Rotation()) != 1 {
		t.Fatalf("rotation after the switch: %v", p.Rotation())
	}
	if Idle(t.Context(), time.Now().Add(50*time.Millisecond), []*Backend{oldB}) {
		t.Fatal("idle reported the old backend idle while a request was in flight")
	}
	for range 5 {
		if body, err := get(t, client, url); err != nil || body != "new" {
			t.Fatalf("after the swap: %q, %v; want new", body, err)
		}
	}
	if !Idle(t.Context(), time.Now().Add(5*time.Second), []*Backend{oldB}) {
		t.Fatal("old backend never idle")
	}
	if body := <-slow; body != "old" {
		t.Errorf("in-flight request got %q, want old", body)
	}
}

// TestProxyWaitsForBackend checks that a connection arriving while no backend is
// in rotation waits for one instead of failing.
func TestProxyWaitsForBackend(t *testing.T) {
	p := newTestProxy(t)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	done := make(chan string, 1)
	go func() {
		body, err := get(t, client, "http://"+p.Addr().String())
		if err != nil {
			body = err.Error()
		}
		done <- body
	}()
	time.Sleep(200 * time.Millisecond)
	p.Add(NewBackend("late", strings.TrimPrefix(named(t, "late").URL, "http://")))
	if body := <-done; body != "late" {
		t.Errorf("got %q, want late", body)
	}
}

// TestProxyClose checks that close frees the port and ends open connections after
// the drain time.
func TestProxyClose(t *testing.T) {
	p, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBackend("a", strings.TrimPrefix(named(t, "a").URL, "http://"))
	p.Add(b)
	conn, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // keep-alive: the connection stays open
	buf := make([]byte, 512)
	if _, err := conn.Read(buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Close(t.Context(), 100*time.Millisecond)
	if took := time.Since(start); took < 100*time.Millisecond || took > 3*time.Second {
		t.Errorf("close took %s, want the 100ms drain", took)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(buf); err == nil {
		t.Error("connection still open after close")
	}
	if b.Active() != 0 {
		t.Errorf("backend active = %d after close", b.Active())
	}
	ln, err := net.Listen("tcp", p.Addr().String())
	if err != nil {
		t.Fatalf("port not free after close: %v", err)
	}
	ln.Close()
}
