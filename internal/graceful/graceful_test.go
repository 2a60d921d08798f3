package graceful

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestStopFinishesInFlight: a request in flight when Stop begins is answered
// (with "Connection: close"), Stop returns once it is, and the listener no
// longer accepts.
func TestStopFinishesInFlight(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(mux)
	s.Serve(l, func(err error) { t.Errorf("serve: %v", err) })

	type result struct {
		body  string
		close bool
		err   error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), resp.Close, err}
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "done" || !r.close {
		t.Errorf("in-flight request = %q, close %v, %v; want \"done\" with Connection: close", r.body, r.close, r.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after Stop")
	}
}
