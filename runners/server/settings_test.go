package server

import (
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/runners"
)

// decodeBlock decodes src as the body of a runner "server" block.
func decodeBlock(t *testing.T, src string) (runners.Settings, hcl.Diagnostics) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "dewy.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return Kind().Decode(hclsettings.Block{
		Body:     f.Body,
		DefRange: hcl.Range{Filename: "dewy.hcl", Start: hcl.InitialPos},
		Ctx:      hclsettings.NewEvalContext(func(k string) string { return map[string]string{"PORT": "8001"}[k] }),
	})
}

func TestDecode(t *testing.T) {
	got, diags := decodeBlock(t, `
command     = ["./app"]
ports       = [8000, env("PORT")]
stop_signal = "sigint"
proxy       = true
`)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := Config{
		Command: []string{"./app"}, Ports: []int{8000, 8001}, StopSignal: syscall.SIGINT,
		HealthTimeout: DefaultHealthTimeout, StopTimeout: DefaultStopTimeout, Restart: DefaultRestart,
		SettleTime: DefaultSettleTime, CrashWindow: DefaultCrashWindow, Proxy: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %#v\nwant %#v", got, want)
	}
	if got.Kind() != "server" || got.Input() != runners.Files {
		t.Errorf("kind %q input %q", got.Kind(), got.Input())
	}
}

// TestDecodeErrors: every mistake is reported, each at its attribute's line.
func TestDecodeErrors(t *testing.T) {
	_, diags := decodeBlock(t, `
ports          = [0, 70000, 8000, 8000]
health_path    = "health"
stop_signal    = "SIGKILL"
restart        = "sometimes"
dir            = "../outside"
crash_window   = "10ms"
unknown        = 1
proxy          = "maybe"
`)
	want := []struct {
		line int
		text string
	}{
		{1, "needs command"},
		{2, "port 0 is not a number from 1 to 65535"},
		{2, "port 70000 is not a number from 1 to 65535"},
		{2, "port 8000 is listed twice"},
		{3, `health_path "health" must start with "/"`},
		{4, `stop_signal "SIGKILL" is not one of`},
		{5, `restart "sometimes" is not one of`},
		{6, `dir "../outside" leaves the release directory`},
		{7, `crash_window: "10ms" is shorter than "1s"`},
		{8, `An argument named "unknown" is not expected here`},
		{9, `proxy must be true or false`},
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

// TestProxyNeedsPorts: proxy = true forwards ports, so a file without them is
// told so at the attribute; a program gets the same rule from Validate.
func TestProxyNeedsPorts(t *testing.T) {
	_, diags := decodeBlock(t, `
command = ["./worker"]
proxy   = true
`)
	if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != 3 ||
		!strings.Contains(diags[0].Detail, "proxy = true forwards the app's ports") {
		t.Errorf("diagnostics = %v, want one about proxy without ports at line 3", diags)
	}
	if err := (Config{Command: []string{"./app"}, Proxy: true}).Validate(); err == nil || !strings.Contains(err.Error(), "needs ports") {
		t.Errorf("Validate() = %v, want proxy without ports", err)
	}
	if err := (Config{Command: []string{"./app"}, Ports: []int{0}, Proxy: true}).Validate(); err != nil {
		t.Errorf("Validate() with a port = %v", err)
	}
}
