package server

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/runners"
)

// KindName is the block label of this runner: runner "server" {}.
const KindName = "server"

// Kind is the server runner kind, for config's table.
func Kind() runners.Kind { return runners.NewKind(KindName, decode) }

// stopSignals are the signals stop_signal accepts, by name.
func stopSignals() map[string]syscall.Signal {
	return map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT, "SIGHUP": syscall.SIGHUP,
		"SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2, "SIGWINCH": syscall.SIGWINCH,
	}
}

// stopSignalNames are stopSignals' names in the order messages list them.
func stopSignalNames() []string {
	return []string{"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"}
}

// restartPolicies are the values of restart.
func restartPolicies() []string { return []string{"always", "on-failure", "never"} }

// decode reads runner "server" {} into a Config with its defaults applied.
func decode(r *hclsettings.Reader) runners.Settings {
	blk := r.Range
	command := hclsettings.Get[[]string](r, "command", `a list of strings, e.g. ["./myapp", "-port", "8000"]`)
	dir := hclsettings.Get[string](r, "dir", "a string")
	ports := decodePorts(r.Decoder, r.Expr("ports"), blk) // numbers and "8000-8010" ranges (ports.go)
	env := hclsettings.Get[map[string]string](r, "env", `a map of strings, e.g. { APP_ENV = "production" }`)
	inheritEnv := hclsettings.Get[[]string](r, "inherit_env", `a list of variable names, e.g. ["HTTP_PROXY"]`)
	healthPath := hclsettings.Get[string](r, "health_path", "a string")
	healthTimeout := hclsettings.Get[string](r, "health_timeout", `a duration string such as "30s"`)
	stopSignal := hclsettings.Get[string](r, "stop_signal", `a signal name such as "SIGTERM"`)
	stopTimeout := hclsettings.Get[string](r, "stop_timeout", `a duration string such as "30s"`)
	restart := hclsettings.Get[string](r, "restart", "a string")
	crashWindow := hclsettings.Get[string](r, "crash_window", `a duration string such as "10s"`)
	proxy := hclsettings.Get[bool](r, "proxy", "true or false")

	healthTimeout.OrDefault(DefaultHealthTimeout.String())
	stopTimeout.OrDefault(DefaultStopTimeout.String())
	crashWindow.OrDefault(DefaultCrashWindow.String())
	stopSignal.OrDefault("SIGTERM")
	restart.OrDefault(DefaultRestart)

	c := Config{
		Command:    command.Val,
		Dir:        dir.Val,
		Ports:      ports.Val,
		Env:        env.Val,
		InheritEnv: inheritEnv.Val,
		HealthPath: healthPath.Val,
		Restart:    restart.Val,
		Proxy:      proxy.Val,
	}
	c.HealthTimeout = r.Duration(healthTimeout, "health_timeout", runners.MinHealthTimeout)
	c.StopTimeout = r.Duration(stopTimeout, "stop_timeout", 0)
	c.CrashWindow = r.Duration(crashWindow, "crash_window", runners.MinCrashWindow)
	if !stopSignal.Bad {
		name := strings.ToUpper(stopSignal.Val)
		if sig, ok := stopSignals()[name]; ok {
			c.StopSignal = sig
		} else {
			r.Fail(stopSignal.Range, "Invalid stop_signal", "stop_signal %s is not one of %s.", stopSignal.Show(), hclsettings.JoinList(stopSignalNames()))
		}
	}
	if !command.Bad && (len(command.Val) == 0 || command.Val[0] == "") {
		// Reported here rather than by problems: without the attribute the
		// range is the block's, and the message says what to write.
		r.Fail(command.Range, "Missing command",
			`runner "server" needs command, the program and its arguments, e.g. command = ["./myapp", "-listen-from-env"]; a relative program path resolves inside the deployed release.`)
	}
	probs := c.problems(true)
	// command and restart are reported above with the file's wording; an
	// attribute that did not evaluate is reported already.
	skip := map[string]bool{"command": true, "restart": true, "dir": dir.Bad, "ports": ports.Bad, "health_path": healthPath.Bad, "proxy": proxy.Bad}
	probs = slices.DeleteFunc(probs, func(p hclsettings.Problem) bool {
		return skip[p.Attr] || (ports.Bad && strings.HasSuffix(p.Summary, " without ports"))
	})
	r.Enum(restart, "restart", restartPolicies())
	r.Diags = append(r.Diags, hclsettings.Problems(probs, map[string]hcl.Range{
		"dir": dir.Range, "ports": ports.Range, "health_path": healthPath.Range, "env": env.Range, "proxy": proxy.Range,
	}, blk)...)
	c = c.withDefaults()
	return c
}

// problems checks c. A config file (file) must also name real ports (1 to
// 65535) and give health_path only with ports; a program embedding the runner
// may ask for port 0 (any free port).
func (c Config) problems(file bool) []hclsettings.Problem {
	var probs []hclsettings.Problem
	add := func(attr, summary, detail string, args ...any) {
		probs = append(probs, hclsettings.Problem{Attr: attr, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		add("command", "Missing command", "command is empty: give the program and its arguments.")
	}
	if c.Dir != "" && !filepath.IsAbs(c.Dir) && !filepath.IsLocal(c.Dir) {
		add("dir", "Invalid dir", "dir %q leaves the release directory; give an absolute path or a folder inside the release.", c.Dir)
	}
	seen := map[int]bool{}
	for _, p := range c.Ports {
		switch {
		case p < 0 || p > 65535 || (file && !hclsettings.ValidPort(p)):
			add("ports", "Invalid port", "port %d is not a number from 1 to 65535.", p)
		case p != 0 && seen[p]:
			add("ports", "Duplicate port", "port %d is listed twice; list each port once.", p)
		}
		seen[p] = true
	}
	if c.HealthPath != "" && !strings.HasPrefix(c.HealthPath, "/") {
		add("health_path", "Invalid health_path", `health_path %q must start with "/", e.g. "/health".`, c.HealthPath)
	}
	if file && c.HealthPath != "" && len(c.Ports) == 0 {
		add("health_path", "health_path without ports",
			"health_path is checked over HTTP on the app's inherited sockets, so it needs ports; add ports = [8000] or remove health_path.")
	}
	if c.Proxy && len(c.Ports) == 0 {
		add("proxy", "proxy without ports",
			"proxy = true forwards the app's ports to its healthy generation, so it needs ports; add ports = [8000] or remove proxy.")
	}
	if c.Restart != "" && !slices.Contains(restartPolicies(), c.Restart) {
		add("restart", "Invalid restart", "restart %q is not one of %s; use one of them.", c.Restart, hclsettings.QuoteList(restartPolicies()))
	}
	for _, dur := range []struct {
		name string
		v    time.Duration
	}{
		{"health_timeout", c.HealthTimeout}, {"stop_timeout", c.StopTimeout},
		{"settle_time", c.SettleTime}, {"crash_window", c.CrashWindow},
	} {
		if dur.v < 0 {
			add(dur.name, "Invalid "+dur.name, "%s %s is negative.", dur.name, dur.v)
		}
	}
	if c.StopSignal < 0 {
		add("stop_signal", "Invalid stop_signal", "stop signal %d is invalid.", c.StopSignal)
	}
	return probs
}

// Validate checks a Config built by a program (the file's is checked when it
// is decoded, with the same rules and positions) and returns every problem.
func (c Config) Validate() error {
	return hclsettings.Err(c.problems(false))
}

// Kind is "server".
func (Config) Kind() string { return KindName }

// Input: the server runner runs a release's files.
func (Config) Input() runners.Input { return runners.Files }

// New builds the runner.
func (c Config) New(opts runners.Options) (runners.Runner, error) { return New(c, opts), nil }

var _ runners.Settings = Config{}
