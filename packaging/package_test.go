// Package packaging holds the systemd unit, the nfpm configuration and the
// config file the .deb and .rpm ship; its tests check them with the tools a
// host uses: systemd-analyze and dpkg.
package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// verifyUnit runs systemd-analyze verify on unit with ExecStart's binary
// replaced by bin, and fails on any complaint (it exits 0 for many of them).
func verifyUnit(t *testing.T, unit []byte, bin string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(unit), "/usr/bin/dewy-agent", bin)
	path := filepath.Join(dir, "dewy-agent.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("systemd-analyze", "verify", path)
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
}

// TestUnitFile: the shipped unit passes systemd-analyze verify and says what
// the design asks of it.
func TestUnitFile(t *testing.T) {
	unit, err := os.ReadFile("systemd/dewy-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=process", "FileDescriptorStoreMax=1024",
		"StateDirectory=dewy-agent", "ConfigurationDirectory=dewy-agent", "WatchdogSec=",
	} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	verifyUnit(t, unit, "/bin/true")

	// The check above must be able to fail.
	broken := strings.Replace(string(unit), "KillMode=process", "KillMode=sometimes", 1)
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		path := filepath.Join(dir, "dewy-agent.service")
		os.WriteFile(path, []byte(strings.ReplaceAll(broken, "/usr/bin/dewy-agent", "/bin/true")), 0o644)
		out, _ := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
		if len(out) == 0 {
			t.Error("systemd-analyze verify said nothing about KillMode=sometimes")
		}
	}
}

// TestDebInstallsAndValidates builds the .deb with nfpm, installs it into a
// scratch root with dpkg, and runs the installed binary's validate on the
// installed config; the installed unit must verify against the installed
// binary.
func TestDebInstallsAndValidates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package; skipped with -short")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	top, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// nfpm reads the files named in nfpm.yaml relative to its working
	// directory: packaging/ and the binary at dist/pkg/dewy-agent.
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(top, "packaging"), filepath.Join(work, "packaging")); err != nil {
		t.Fatal(err)
	}
	run(t, top, nil, "go", "build", "-o", filepath.Join(work, "dist/pkg/dewy-agent"), "./cmd/dewy-agent")
	nfpm := filepath.Join(t.TempDir(), "nfpm")
	run(t, top, nil, "go", "build", "-o", nfpm, "github.com/goreleaser/nfpm/v2/cmd/nfpm") // the go.mod tool
	run(t, work, []string{"VERSION=0.0.0~test", "ARCH=" + runtime.GOARCH},
		nfpm, "pkg", "--packager", "deb", "--config", "packaging/nfpm.yaml", "--target", work)
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("nfpm made %d .deb files", len(debs))
	}
	info := run(t, work, nil, "dpkg-deb", "--info", debs[0])
	if !strings.Contains(info, "Package: dewy-agent") {
		t.Errorf("dpkg-deb --info:\n%s", info)
	}
	if conf := run(t, work, nil, "dpkg-deb", "--info", debs[0], "conffiles"); !strings.Contains(conf, "/etc/dewy-agent/dewy.hcl") {
		t.Error("the package marks no conffiles; /etc/dewy-agent/dewy.hcl would be overwritten on upgrade")
	}

	// A scratch root with an empty dpkg database; the package has no
	// maintainer scripts, so dpkg needs no chroot.
	root := filepath.Join(work, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	run(t, work, nil, "dpkg", "--root="+root, "--force-not-root", "--force-script-chrootless",
		"--log=/dev/null", "--instdir="+root, "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-i", debs[0])
	listed := run(t, work, nil, "dpkg", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-L", "dewy-agent")
	for _, f := range []string{"/usr/bin/dewy-agent", "/lib/systemd/system/dewy-agent.service", "/etc/dewy-agent/dewy.hcl", "/var/lib/dewy-agent"} {
		if !strings.Contains(listed, f+"\n") {
			t.Errorf("the package does not install %s:\n%s", f, listed)
		}
	}

	installed := filepath.Join(root, "usr/bin/dewy-agent")
	out := run(t, work, nil, installed, "validate", "-config", filepath.Join(root, "etc/dewy-agent/dewy.hcl"))
	if !strings.Contains(out, "ok") {
		t.Errorf("validate of the shipped config: %s", out)
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/dewy-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	verifyUnit(t, unit, installed)
}

// run runs name in dir and returns its standard output, failing the test with
// everything it printed when it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
