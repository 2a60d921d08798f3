package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is one member of a real etcd, the etcd program (for instance
// Debian's etcd-server package) run as a child process on loopback.
type Binary struct {
	// Path is the etcd program that runs.
	Path string
	// Version is what `etcd --version` says ("3.4.23").
	Version string
	// ServerVersion is what the running server reports over the v3 API.
	ServerVersion string

	client url.URL
}

// FindBinary returns the etcd program on PATH, or /usr/bin/etcd, or "".
func FindBinary() string {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if fi, err := os.Stat("/usr/bin/etcd"); err == nil && !fi.IsDir() {
		return "/usr/bin/etcd"
	}
	return ""
}

// StartBinary runs the real etcd program as a one-member cluster in a
// temporary directory on loopback ports and stops it when the test ends. It
// skips the test when no etcd program is installed.
func StartBinary(t testing.TB) *Binary {
	t.Helper()
	path := FindBinary()
	if path == "" {
		t.Skip("real etcd: no etcd program on PATH or at /usr/bin/etcd (Debian: apt-get install etcd-server); the embedded etcd tests still run")
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		t.Fatalf("real etcd: %s --version: %v", path, err)
	}
	b := &Binary{Path: path, client: freeURL(t)}
	if m := regexp.MustCompile(`etcd Version: (\S+)`).FindSubmatch(out); m != nil {
		b.Version = string(m[1])
	}
	peer := freeURL(t)
	dir := t.TempDir()
	var logs bytes.Buffer
	cmd := exec.Command(path,
		"--name", "real",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", b.client.String(),
		"--advertise-client-urls", b.client.String(),
		"--listen-peer-urls", peer.String(),
		"--initial-advertise-peer-urls", peer.String(),
		"--initial-cluster", "real="+peer.String(),
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "etcdtest-real",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// etcd 3.4 refuses to start on some architectures unless told.
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	if err := cmd.Start(); err != nil {
		t.Fatalf("real etcd: start %s: %v", path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)
	if err := b.waitReady(exited); err != nil {
		stop()
		t.Fatalf("real etcd %s: %v\n%s", path, err, logs.String())
	}
	t.Logf("real etcd: %s, version %s, server reports %s, client %s", path, b.Version, b.ServerVersion, b.client.String())
	return b
}

// waitReady waits until the server answers a Status request (30s at most).
func (b *Binary) waitReady(exited <-chan error) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{b.client.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, b.client.String())
		cancel()
		if err == nil {
			b.ServerVersion = st.Version
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("exited before it was ready: %w", errors.Join(werr, err))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 30s: %w", err)
		}
	}
}

// Endpoints returns the member's client URL.
func (b *Binary) Endpoints() []string { return []string{b.client.String()} }

// MajorMinor is the server's version without its patch ("3.4").
func (b *Binary) MajorMinor() string {
	parts := strings.SplitN(b.ServerVersion, ".", 3)
	if len(parts) < 2 {
		return b.ServerVersion
	}
	return parts[0] + "." + parts[1]
}
