// Command testapp is the HTTP app the server runner's tests and benchmark run as real
// child processes. It serves every listener it inherits, by the systemd convention
// (LISTEN_FDS, checked against LISTEN_PID) or the server-starter one
// (SERVER_STARTER_PORT), and shuts down gracefully on SIGTERM.
//
// Endpoints: /version (the -version flag or TESTAPP_VERSION), /health (200, or 503
// with -unhealthy or during -unhealthy-for), /conventions (JSON: which convention was used and what it said),
// /pid, /children (pids of the -spawn children).
//
// Misbehaviour on demand, for the tests: -exit-at-start, -crash-after, -ignore-term,
// -spawn (start a child in the same process group), -long-line, -hold-listener
// (a slow drain that keeps the port).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/graceful"
)

// conventions is what /conventions reports.
type conventions struct {
	Convention       string   `json:"convention"` // "systemd" or "server-starter"
	ListenPIDMatched bool     `json:"listen_pid_matched"`
	Names            []string `json:"names"`
	Addrs            []string `json:"addrs"`
	ServerStarter    string   `json:"server_starter_port"`
	ListenFDs        string   `json:"listen_fds"`
	ListenFDNames    string   `json:"listen_fdnames"`
}

func main() {
	version := flag.String("version", os.Getenv("TESTAPP_VERSION"), "version reported at /version")
	convention := flag.String("convention", "auto", "auto | systemd | server-starter")
	unhealthy := flag.Bool("unhealthy", os.Getenv("TESTAPP_UNHEALTHY") != "", "answer /health with 503")
	unhealthyFor := flag.Duration("unhealthy-for", 0, "answer /health with 503 for this long after start")
	exitAtStart := flag.Int("exit-at-start", -1, "exit at once with this code (-1: do not)")
	crashAfter := flag.Duration("crash-after", 0, "exit with -crash-code after this long (0: never)")
	crashAfterHealthy := flag.Duration("crash-after-healthy", 0, "exit with -crash-code this long after /health first answered ok (0: never)")
	crashCode := flag.Int("crash-code", 3, "exit code for -crash-after and -crash-after-healthy")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM")
	spawn := flag.String("spawn", "", "a shell command started as a child in the same process group")
	delay := flag.Duration("delay", 0, "time each request takes")
	longLine := flag.Int("long-line", 0, "print a line of this many bytes at start")
	holdListener := flag.Duration("hold-listener", 0, "on SIGTERM, keep serving and holding the listeners this long before draining")
	chatty := flag.Int("chatty", 0, "write this many 1,000-byte lines a second to stdout, each numbered (see /written)")
	flag.Parse()

	if *exitAtStart >= 0 {
		fmt.Fprintln(os.Stderr, "testapp: exiting at start as told")
		os.Exit(*exitAtStart)
	}
	if *longLine > 0 {
		fmt.Println(strings.Repeat("x", *longLine))
	}

	pid := os.Getpid()
	started := time.Now()
	conv, listeners, err := inherit(*convention, pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}

	var children []int
	if *spawn != "" {
		c := exec.Command("/bin/sh", "-c", *spawn)
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testapp: spawn:", err)
			os.Exit(1)
		}
		children = append(children, c.Process.Pid)
		go c.Wait()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(*delay)
		fmt.Fprint(w, *version)
	})
	crash := func() {
		fmt.Fprintf(os.Stderr, "testapp: crashing with code %d as told\n", *crashCode)
		os.Exit(*crashCode)
	}
	var wentHealthy sync.Once
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if *unhealthy || time.Since(started) < *unhealthyFor {
			http.Error(w, "unhealthy as told", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
		if *crashAfterHealthy > 0 {
			wentHealthy.Do(func() { time.AfterFunc(*crashAfterHealthy, crash) })
		}
	})
	mux.HandleFunc("/conventions", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(conv)
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, pid)
	})
	// written counts the lines -chatty wrote: a writer blocked on its output
	// stops counting.
	var written atomic.Int64
	if *chatty > 0 {
		go func() {
			pad := strings.Repeat("x", 1000-len("chatty 000000000 \n"))
			tick := time.NewTicker(time.Second / time.Duration(*chatty))
			for range tick.C {
				n := written.Load() + 1
				fmt.Printf("chatty %09d %s\n", n, pad)
				written.Store(n)
			}
		}()
	}
	mux.HandleFunc("/written", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, written.Load())
	})
	mux.HandleFunc("/children", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(children)
	})
	srv := graceful.New(mux)

	sigs := make(chan os.Signal, 1)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	if *crashAfter > 0 {
		time.AfterFunc(*crashAfter, crash)
	}

	for _, l := range listeners {
		srv.Serve(l, func(err error) {
			fmt.Fprintln(os.Stderr, "testapp: serve:", err)
			os.Exit(1)
		})
	}
	fmt.Printf("testapp %s serving on %d listeners (%s)\n", *version, len(listeners), conv.Convention)

	<-sigs
	time.Sleep(*holdListener)
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testapp: shutdown:", err)
	}
	fmt.Println("testapp: stopped")
}

// inherit turns the inherited descriptors into listeners by the chosen convention.
func inherit(convention string, pid int) (conventions, []net.Listener, error) {
	c := conventions{
		ServerStarter: os.Getenv("SERVER_STARTER_PORT"),
		ListenFDs:     os.Getenv("LISTEN_FDS"),
		ListenFDNames: os.Getenv("LISTEN_FDNAMES"),
	}
	lp, _ := strconv.Atoi(os.Getenv("LISTEN_PID"))
	c.ListenPIDMatched = lp == pid
	if convention == "auto" {
		convention = "server-starter"
		if c.ListenFDs != "" && c.ListenPIDMatched {
			convention = "systemd"
		}
	}
	c.Convention = convention
	var fds []int
	switch convention {
	case "systemd":
		if !c.ListenPIDMatched {
			return c, nil, fmt.Errorf("LISTEN_PID %q is not my pid %d", os.Getenv("LISTEN_PID"), pid)
		}
		n, err := strconv.Atoi(c.ListenFDs)
		if err != nil {
			return c, nil, fmt.Errorf("LISTEN_FDS %q: %w", c.ListenFDs, err)
		}
		names := strings.Split(c.ListenFDNames, ":")
		for i := range n {
			fds = append(fds, 3+i)
			if i < len(names) {
				c.Names = append(c.Names, names[i])
			}
		}
	case "server-starter":
		for _, kv := range strings.Split(c.ServerStarter, ";") {
			addr, fd, ok := strings.Cut(kv, "=")
			n, err := strconv.Atoi(fd)
			if !ok || err != nil {
				return c, nil, fmt.Errorf("SERVER_STARTER_PORT entry %q", kv)
			}
			fds = append(fds, n)
			c.Names = append(c.Names, addr)
		}
	default:
		return c, nil, fmt.Errorf("unknown convention %q", convention)
	}
	// What systemd's sd_listen_fds(unset_environment=1) does.
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDNAMES")
	var ls []net.Listener
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("fd%d", fd))
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return c, nil, fmt.Errorf("fd %d: %w", fd, err)
		}
		c.Addrs = append(c.Addrs, l.Addr().String())
		ls = append(ls, l)
	}
	return c, ls, nil
}
