package server

import (
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings/hcltest"
	"github.com/dewy-agent/dewy-agent/runners"
)

func TestDecode(t *testing.T) {
	got, diags := Kind().Decode(hcltest.Block(t, `
command     = ["./app"]
ports       = [8000, env("PORT")]
stop_signal = "sigint"
proxy       = true
`, map[string]string{"PORT": "8001"}))
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
	_, diags := Kind().Decode(hcltest.Block(t, `
ports          = [0, 70000, 8000, 8000]
health_path    = "health"
stop_signal    = "SIGKILL"
restart        = "sometimes"
dir            = "../outside"
crash_window   = "10ms"
unknown        = 1
proxy          = "maybe"
`, nil))
	hcltest.ExpectDiags(t, diags, []hcltest.Diag{
		{Line: 1, Text: "needs command"},
		{Line: 2, Text: "port 0 is not a number from 1 to 65535"},
		{Line: 2, Text: "port 70000 is not a number from 1 to 65535"},
		{Line: 2, Text: "port 8000 is listed twice"},
		{Line: 3, Text: `health_path "health" must start with "/"`},
		{Line: 4, Text: `stop_signal "SIGKILL" is not one of`},
		{Line: 5, Text: `restart "sometimes" is not one of`},
		{Line: 6, Text: `dir "../outside" leaves the release directory`},
		{Line: 7, Text: `crash_window: "10ms" is shorter than "1s"`},
		{Line: 8, Text: `An argument named "unknown" is not expected here`},
		{Line: 9, Text: `proxy must be true or false`},
	})
}

// TestProxyNeedsPorts: proxy = true forwards ports, so a file without them is
// told so at the attribute; a program gets the same rule from Validate.
func TestProxyNeedsPorts(t *testing.T) {
	_, diags := Kind().Decode(hcltest.Block(t, `
command = ["./worker"]
proxy   = true
`, nil))
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
