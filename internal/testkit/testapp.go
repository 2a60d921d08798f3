package testkit

// This file holds what the end-to-end tests and the benchmarks that run the
// real agent binary share: the server test app (testdata/testapp), built
// and packed into releases of a file registry, and the config text that
// declares it.

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dewy-agent/dewy-agent/internal/archive"
)

// BuildTestApp builds testdata/testapp into dir and returns the binary's
// path. It works from any folder inside the module.
func BuildTestApp(dir string) (string, error) {
	app := filepath.Join(dir, "testapp")
	out, err := exec.Command("go", "build", "-o", app, "github.com/dewy-agent/dewy-agent/testdata/testapp").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build testapp: %v\n%s", err, out)
	}
	return app, nil
}

// Artifact is the name of app's artifact for this OS and architecture, the
// one the agent picks by default ("web_linux_amd64.tar.gz").
func Artifact(app string) string {
	return fmt.Sprintf("%s_%s_%s.tar.gz", app, runtime.GOOS, runtime.GOARCH)
}

// TestAppCommand is run.sh's command line that serves version v with the
// test app's flags (e.g. "-unhealthy").
func TestAppCommand(v string, flags ...string) string {
	return strings.TrimSpace("exec ./testapp -version " + v + " " + strings.Join(flags, " "))
}

// TestAppRelease is a server release (tar.gz) of the test app binary bin
// started by run.sh, which runs command (see TestAppCommand). It panics if
// the archive cannot be made, which for contents in memory is a mistake.
func TestAppRelease(bin []byte, command string) []byte {
	var buf bytes.Buffer
	if err := archive.Write(&buf, archive.TarGz,
		archive.File{Name: "run.sh", Body: []byte("#!/bin/sh\n" + command + "\n"), Mode: 0o755},
		archive.File{Name: "testapp", Body: bin, Mode: 0o755}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// ServerApp is the config of app name: a server app of the test app from
// the file registry at folder reg, polled every second, listening on port
// and checked at /health; lines go in its runner block.
func ServerApp(name, reg string, port int, lines ...string) string {
	return fmt.Sprintf(`
app %q {
  registry = "file://%s"
  interval = "1s"
  runner "server" {
    command     = ["./run.sh"]
    ports       = [%d]
    health_path = "/health"
    %s
  }
}
`, name, reg, port, strings.Join(lines, "\n    "))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
