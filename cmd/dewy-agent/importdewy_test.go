package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/config"
)

// TestImportDewyGolden turns Dewy command lines into app blocks, compares them
// with testdata/importdewy/<name>.hcl (and the notes with <name>.stderr), and
// checks that every block is a valid config.
func TestImportDewyGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"server", strings.Fields("dewy server --registry ghr://o/app --port 8000 -i 30 --notifier slack://ch -- /opt/app/bin")},
		{"server-full", []string{"dewy", "server", "--registry=ghr://o/api?pre-release=true", "-p", "8000-8010", "-p", "9000",
			"--health-path", "/health", "--health-timeout", "20", "-l", "info", "-f", "json",
			"--before-deploy-hook", "echo ${APP} before", "--after-deploy-hook", "systemctl reload nginx",
			"--calver", "YYYY.0M.MICRO", "-s", "blue", "--cache", "s3://r/b/c", "--telemetry", "--", "./api", "-listen", ":8000"}},
		{"container", strings.Fields("dewy container --registry img://ghcr.io/o/web -n web --port 8080:80 --replicas 3 --health-path /healthz --drain-time 10 --cmd serve --cmd -v --runtime podman --admin-port 17600 --proxy-idle-timeout 60")},
		{"assets", strings.Fields("dewy assets --registry s3://ap-northeast-1/bucket/site?endpoint=http://127.0.0.1:9000 -i 60 --after-deploy-hook true")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, notes bytes.Buffer
			if code := cmdImportDewy(append([]string{"--"}, tt.args...), &out, &notes); code != exitOK {
				t.Fatalf("exit %d: %s", code, notes.String())
			}
			golden := filepath.Join("testdata", "importdewy", tt.name)
			for _, g := range []struct {
				file string
				got  []byte
			}{{golden + ".hcl", out.Bytes()}, {golden + ".stderr", notes.Bytes()}} {
				if *update {
					if err := os.WriteFile(g.file, g.got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(g.file)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(g.got, want) {
					t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", g.file, g.got, want)
				}
			}
			if _, diags := config.Parse(tt.name+".hcl", out.Bytes()); diags.HasErrors() {
				t.Errorf("the block does not validate: %v\n%s", diags.Error(), out.String())
			}
		})
	}
}

func TestImportDewyErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--"}, "Usage"},
		{[]string{"--", "dewy", "deploy"}, "want server, assets or container"},
		{[]string{"--", "dewy", "server", "--bogus", "x"}, "unknown Dewy flag --bogus"},
		{[]string{"--", "dewy", "server", "--registry"}, "needs a value"},
		{[]string{"--", "dewy", "server", "-p", "8000"}, "--registry is required"},
		{[]string{"--", "dewy", "server", "--registry", "ghr://o/a", "-i", "soon"}, "want whole seconds"},
	} {
		var out, errb bytes.Buffer
		if code := cmdImportDewy(tt.args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want usage exit and %q", tt.args, code, errb.String(), tt.want)
		}
	}
}
