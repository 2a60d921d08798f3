// Command imageapp is the HTTP app that internal/testimage puts in test images, as the
// image's entrypoint. It listens on one TCP port and shuts down gracefully on
// SIGTERM (docker stop), so that a rolling update can be checked for lost requests.
//
// Settings (flag, else environment):
//
//	-port      PORT         port to listen on (default 8080)
//	-version   APP_VERSION  what /version answers
//	-unhealthy FAIL_HEALTH  non-empty: /health answers 503
//	-exit-after EXIT_AFTER  a duration: exit with code 3 that long after start
//	-exit-at-start EXIT_AT_START  non-empty: exit with code 3 before listening
//
// Endpoints: /version, /health, /hostname (the container's), / (a greeting with the
// version), /sleep?d=100ms (answers after d), /bytes?n=1048576 (n zero bytes, for
// throughput).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/graceful"
)

func main() {
	port := flag.Int("port", envInt("PORT", 8080), "port to listen on")
	version := flag.String("version", os.Getenv("APP_VERSION"), "what /version answers")
	unhealthy := flag.Bool("unhealthy", os.Getenv("FAIL_HEALTH") != "", "answer /health with 503")
	exitAfter := flag.Duration("exit-after", envDuration("EXIT_AFTER"), "exit with code 3 after this long (0: never)")
	exitAtStart := flag.Bool("exit-at-start", os.Getenv("EXIT_AT_START") != "", "exit with code 3 before listening")
	flag.Parse()
	if *exitAtStart {
		fmt.Fprintln(os.Stderr, "app: exiting at start as told")
		os.Exit(3)
	}

	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, *version)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if *unhealthy {
			http.Error(w, "unhealthy as told", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, host)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		time.Sleep(d)
		fmt.Fprint(w, *version)
	})
	zeros := make([]byte, 32<<10)
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(zeros)))
			if _, err := w.Write(zeros[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", *version)
	})

	srv := graceful.New(mux)
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(*port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if *exitAfter > 0 {
		time.AfterFunc(*exitAfter, func() {
			fmt.Fprintln(os.Stderr, "app: exiting with code 3 as told")
			os.Exit(3)
		})
	}
	srv.Serve(ln, func(err error) {
		fmt.Fprintln(os.Stderr, "app: serve:", err)
		os.Exit(1)
	})
	fmt.Printf("app %s listening on :%d\n", *version, *port)

	<-sigs
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "app: shutdown:", err)
	}
	fmt.Println("app: stopped")
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return n
	}
	return def
}

func envDuration(key string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(key))
	return d
}
