package container

import (
	"reflect"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings/hcltest"
	"github.com/dewy-agent/dewy-agent/runners"
)

func TestDecode(t *testing.T) {
	got, diags := Kind().Decode(hcltest.Block(t, `ports = ["8080:80"]`, nil))
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
	_, diags := Kind().Decode(hcltest.Block(t, `
ports      = ["0", "8080/tcp", "8080:0"]
replicas   = 65
volumes    = ["/var/run/docker.sock:/var/run/docker.sock"]
memory     = "1m"
privileged = true
devices    = ["/dev/sda"]
network    = "container:db"
`, nil))
	hcltest.ExpectDiags(t, diags, []hcltest.Diag{
		{Line: 2, Text: `port "0" is not "proxy" or "proxy:container" with numbers from 1 to 65535`},
		{Line: 2, Text: `port "8080/tcp" is not "proxy" or "proxy:container": write it without "/tcp"`},
		{Line: 2, Text: `port "8080:0" is not`},
		{Line: 3, Text: "replicas is 65; it must be at most 64"},
		{Line: 4, Text: "binding a socket is refused"},
		{Line: 5, Text: `memory "1m" is below Docker's minimum`},
		{Line: 6, Text: "privileged is refused"},
		{Line: 7, Text: "devices is refused"},
		{Line: 8, Text: `network "container:db" is refused`},
	})
}
