package container

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/runners"
)

// decodeBlock decodes src as the body of a runner "container" block.
func decodeBlock(t *testing.T, src string) (runners.Settings, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "dewy.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return Kind().Decode(hclsettings.Block{
		Body:     f.Body,
		DefRange: hcl.Range{Filename: "dewy.hcl", Start: hcl.InitialPos},
		Ctx:      hclsettings.NewEvalContext(func(string) string { return "" }),
	})
}

func TestDecode(t *testing.T) {
	got, diags := decodeBlock(t, `ports = ["8080:80"]`)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := Config{
		Ports: []string{"8080:80"}, Replicas: DefaultReplicas, HealthTimeout: DefaultHealthTimeout,
		DrainTime: DefaultDrainTime, CrashWindow: DefaultCrashWindow, StopTimeout: DefaultStopTimeout,
		SettleTime: DefaultSettleTime, KeepImages: DefaultKeepImages,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %#v\nwant %#v", got, want)
	}
	if got.Kind() != "container" || got.Input() != runners.Image {
		t.Errorf("kind %q input %q", got.Kind(), got.Input())
	}
}

// TestDecodeErrors: every mistake is reported, each at its attribute's line,
// the checks Docker's rules need (volumes, memory) included.
func TestDecodeErrors(t *testing.T) {
	_, diags := decodeBlock(t, `
ports      = ["0", "8080/tcp", "8080:0"]
replicas   = 65
volumes    = ["/var/run/docker.sock:/var/run/docker.sock"]
memory     = "1m"
privileged = true
devices    = ["/dev/sda"]
network    = "container:db"
`)
	want := []struct {
		line int
		text string
	}{
		{2, `port "0" is not "proxy" or "proxy:container" with numbers from 1 to 65535`},
		{2, `port "8080/tcp" is not "proxy" or "proxy:container": write it without "/tcp"`},
		{2, `port "8080:0" is not`},
		{3, "replicas is 65; it must be at most 64"},
		{4, "binding a socket is refused"},
		{5, `memory "1m" is below Docker's minimum`},
		{6, "privileged is refused"},
		{7, "devices is refused"},
		{8, `network "container:db" is refused`},
	}
	for _, w := range want {
		found := false
		for _, d := range diags {
			if d.Subject != nil && d.Subject.Start.Line == w.line && strings.Contains(d.Detail, w.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no diagnostic %q at line %d in:\n%v", w.text, w.line, diags)
		}
	}
	if len(diags) != len(want) {
		t.Errorf("%d diagnostics, want %d:\n%v", len(diags), len(want), diags)
	}
}
