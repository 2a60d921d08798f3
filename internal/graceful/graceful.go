// Package graceful is the HTTP serving and SIGTERM drain of the test apps
// (testdata/testapp, testdata/imageapp), which behave as an app run by the
// server and container runners should: on Stop they stop accepting, answer
// what is in flight with "Connection: close", wait for every accepted
// connection to close, and only then shut down. http.Server.Shutdown alone
// drops a request it reads after it began, even on a connection accepted
// before (golang/go#75591).
package graceful

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drainWait bounds how long Stop waits for connections, and then Shutdown.
const drainWait = 20 * time.Second

// Server serves one handler on any number of listeners.
type Server struct {
	srv       *http.Server
	open      atomic.Int64 // connections not yet closed
	serving   sync.WaitGroup
	mu        sync.Mutex
	listeners []net.Listener
}

// New returns a server for h that reads request headers for at most 10 s.
func New(h http.Handler) *Server {
	s := &Server{}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.open.Add(-1)
			}
		},
	}
	return s
}

// Serve serves l in its own goroutine until Stop. A failure other than the
// listener being closed goes to failed (the apps exit on it).
func (s *Server) Serve(l net.Listener, failed func(error)) {
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	s.serving.Go(func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			failed(err)
		}
	})
}

// Stop closes the listeners, waits for the accept loops (every accepted
// connection is then counted), closes idle connections and answers the rest
// with "Connection: close", waits up to 20 s for them to close, then shuts
// the server down within 20 s more.
func (s *Server) Stop() error {
	s.mu.Lock()
	for _, l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.serving.Wait()
	s.srv.SetKeepAlivesEnabled(false) // also closes the idle connections
	for deadline := time.Now().Add(drainWait); s.open.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainWait)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
