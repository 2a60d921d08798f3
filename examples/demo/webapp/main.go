// Command webapp is the demo's sample web app, written the way an app run by
// dewy-agent's server runner should be: it serves the listening sockets it
// inherits (systemd's LISTEN_FDS or server-starter's SERVER_STARTER_PORT), answers
// /health, and on SIGTERM stops accepting, finishes in-flight requests and exits.
//
//	go build -ldflags "-X main.version=v1.0.0" ./examples/demo/webapp
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// version is set at build time.
var version = "dev"

func main() {
	listeners, err := inherited()
	if err != nil {
		log.Fatal(err)
	}
	if len(listeners) == 0 {
		log.Fatal("no inherited listeners: run me under dewy-agent's server runner (or systemd socket activation)")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s (pid %d)\n", version, os.Getpid())
	})
	// open counts the connections not yet closed, for the drain on SIGTERM.
	var open atomic.Int64
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		}}

	var wg sync.WaitGroup
	for _, l := range listeners { // serve every one: the ports and the agent's health listener
		wg.Go(func() { srv.Serve(l) })
	}
	log.Printf("%s serving on %d listeners", version, len(listeners))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	// Stop accepting first: the agent keeps the sockets open for the next
	// generation, so connections not yet accepted go to it.
	for _, l := range listeners {
		l.Close()
	}
	wg.Wait()
	// Answer what is in flight with "Connection: close" before Shutdown:
	// http.Server drops a request it reads after Shutdown began, even on a
	// connection accepted before (golang/go#75591), so wait for every accepted
	// connection to close first.
	srv.SetKeepAlivesEnabled(false) // also closes the idle connections
	for deadline := time.Now().Add(20 * time.Second); open.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	log.Printf("%s stopped", version)
}

// inherited returns the sockets handed over by dewy-agent's server runner (or
// systemd, or server-starter).
func inherited() ([]net.Listener, error) {
	var fds []int
	if n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS")); n > 0 && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		for i := range n { // systemd: LISTEN_FDS=3 means fds 3, 4, 5
			fds = append(fds, 3+i)
		}
	} else if ssp := os.Getenv("SERVER_STARTER_PORT"); ssp != "" { // "8000=3;8001=4"
		for _, kv := range strings.Split(ssp, ";") {
			_, fd, _ := strings.Cut(kv, "=")
			n, err := strconv.Atoi(fd)
			if err != nil {
				return nil, fmt.Errorf("SERVER_STARTER_PORT %q: %w", ssp, err)
			}
			fds = append(fds, n)
		}
	}
	var ls []net.Listener
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "inherited")
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}
