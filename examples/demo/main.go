// Command demo shows dewy-agent's main job end to end on this machine, with nothing
// but a local folder as the registry: it publishes v1.0.0 of a small static site,
// runs the agent on examples/demo.hcl, serves the deployed site over HTTP and shows
// it answering, then publishes v1.1.0 and shows the agent deploying it.
//
//	go run ./examples/demo -agent ./bin/dewy-agent -config examples/demo.hcl
package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	agentBin := flag.String("agent", "./bin/dewy-agent", "the dewy-agent binary")
	cfg := flag.String("config", "examples/demo.hcl", "the demo config file")
	keep := flag.Bool("keep", false, "keep the demo folder afterwards")
	flag.Parse()
	if err := run(*agentBin, *cfg, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(agentBin, cfg string, keep bool) error {
	dir, err := os.MkdirTemp("", "dewy-demo-")
	if err != nil {
		return err
	}
	if keep {
		say("demo folder: %s (kept)", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	registry := filepath.Join(dir, "registry", "site")

	say("1. publishing v1.0.0 of the site into the local registry %s", registry)
	if err := publish(registry, "v1.0.0"); err != nil {
		return err
	}

	say("2. starting the agent: %s -config %s", agentBin, cfg)
	agent := exec.Command(agentBin, "-config", cfg)
	agent.Env = append(os.Environ(), "DEMO_DIR="+dir)
	agent.Stdout, agent.Stderr = prefix("   agent | "), prefix("   agent | ")
	if err := agent.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	defer func() {
		agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			agent.Process.Kill()
		}
	}()

	// A plain web server for the folder the assets runner keeps linked to the
	// current release; in production this is nginx or caddy.
	www := filepath.Join(dir, "www")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(www, "index.html"))
	})}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	url := "http://" + ln.Addr().String() + "/"

	if err := waitFor(url, "v1.0.0", exited); err != nil {
		return err
	}
	say("3. the site answers at %s: %q", url, fetch(url))

	say("4. publishing v1.1.0; the agent polls every second and deploys it")
	if err := publish(registry, "v1.1.0"); err != nil {
		return err
	}
	if err := waitFor(url, "v1.1.0", exited); err != nil {
		return err
	}
	say("5. the site now answers: %q", fetch(url))
	target, _ := os.Readlink(filepath.Join(dir, "state", "apps", "site", "current"))
	say("   current -> %s", target)
	say("done: the agent deployed v1.0.0, then v1.1.0 as soon as it was published")
	time.Sleep(300 * time.Millisecond) // let the agent's last log lines arrive before it stops
	return nil
}

// publish writes site.tar.gz for version into registry/<version>/, under a temporary
// name first so the agent never sees half a file.
func publish(registry, version string) error {
	dir := filepath.Join(registry, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "site.tar.gz.part")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	page := fmt.Sprintf("<h1>hello from %s</h1>\n", version)
	if err := tw.WriteHeader(&tar.Header{Name: "index.html", Mode: 0o644, Size: int64(len(page)), ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, page); err != nil {
		return err
	}
	for _, c := range []io.Closer{tw, gz, f} {
		if err := c.Close(); err != nil {
			return err
		}
	}
	return os.Rename(tmp, filepath.Join(dir, "site.tar.gz"))
}

func waitFor(url, want string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the agent exited: %v", err)
		default:
		}
		if strings.Contains(fetch(url), want) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within 30s", url, want)
}

func fetch(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func say(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }

type prefixWriter struct{ prefix string }

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			fmt.Print(p.prefix + line)
		}
	}
	return len(b), nil
}

func prefix(s string) io.Writer { return prefixWriter{s} }
