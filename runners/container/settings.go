package container

import (
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/runners"
)

// KindName is the block label of this runner: runner "container" {}.
const KindName = "container"

// Kind is the container runner kind, for config's table.
func Kind() runners.Kind { return runners.NewKind(KindName, decode) }

// decode reads runner "container" {} into a Config with its defaults applied.
// Config.App is left empty: the runner names its containers after the app's
// folder (runners.Options.AppDir), whose name config has already checked.
func decode(r *hclsettings.Reader) runners.Settings {
	blk := r.Range

	// Settings Docker has that the agent refuses, read so the refusal can
	// say why rather than "unknown argument".
	for _, f := range []struct {
		name string
		why  string
	}{
		{"privileged", "a privileged container can take over the host"},
		{"pid", "sharing the host's process namespace lets the container see and signal every process"},
		{"cap_add", "added capabilities weaken the container's isolation from the host"},
		{"devices", "host devices give the container direct access to the host's hardware"},
	} {
		if expr := r.Expr(f.name); r.Written(expr) {
			r.Fail(expr.Range(), "Refused container setting",
				"%s is refused: %s, and a container the agent manages must not be able to break the agent or the host; remove it.", f.name, f.why)
		}
	}

	ports := hclsettings.Get[[]string](r, "ports", `a list of "proxy" or "proxy:container" strings, e.g. ["8080:80"]`)
	replicas := hclsettings.Get[int](r, "replicas", "a whole number")
	healthPath := hclsettings.Get[string](r, "health_path", "a string")
	healthTimeout := hclsettings.Get[string](r, "health_timeout", `a duration string such as "30s"`)
	drainTime := hclsettings.Get[string](r, "drain_time", `a duration string such as "30s"`)
	env := hclsettings.Get[map[string]string](r, "env", `a map of strings, e.g. { APP_ENV = "production" }`)
	volumes := hclsettings.Get[[]string](r, "volumes", `a list of strings, e.g. ["/data:/app/data"]`)
	command := hclsettings.Get[[]string](r, "command", "a list of strings")
	user := hclsettings.Get[string](r, "user", "a string")
	network := hclsettings.Get[string](r, "network", "a string")
	memory := hclsettings.Get[string](r, "memory", `a size string such as "512m"`)
	cpus := hclsettings.Get[float64](r, "cpus", "a number such as 0.5")
	crashWindow := hclsettings.Get[string](r, "crash_window", `a duration string such as "10s"`)

	replicas.OrDefault(DefaultReplicas)
	healthTimeout.OrDefault(DefaultHealthTimeout.String())
	drainTime.OrDefault(DefaultDrainTime.String())
	crashWindow.OrDefault(DefaultCrashWindow.String())

	c := Config{
		Ports: ports.Val, Replicas: replicas.Val, HealthPath: healthPath.Val, Env: env.Val,
		Volumes: volumes.Val, Command: command.Val, User: user.Val, Network: network.Val,
		Memory: memory.Val, CPUs: cpus.Val,
	}
	if replicas.Bad {
		c.Replicas = DefaultReplicas
	}
	c.HealthTimeout = r.Duration(healthTimeout, "health_timeout", runners.MinHealthTimeout)
	c.DrainTime = r.Duration(drainTime, "drain_time", 0)
	c.CrashWindow = r.Duration(crashWindow, "crash_window", runners.MinCrashWindow)

	ranges := map[string]hcl.Range{
		"ports": ports.Range, "replicas": replicas.Range, "health_path": healthPath.Range,
		"env": env.Range, "volumes": volumes.Range, "command": command.Range, "network": network.Range,
		"memory": memory.Range, "cpus": cpus.Range,
	}
	probs := slices.DeleteFunc(c.problems(true), func(p hclsettings.Problem) bool {
		// Durations are checked above, and a problem caused by a value
		// that did not evaluate is already reported.
		return p.Attr == "health_timeout" || p.Attr == "drain_time" || p.Attr == "crash_window" ||
			(ports.Bad && p.Summary == "health_path without ports")
	})
	r.Diags = append(r.Diags, hclsettings.Problems(probs, ranges, blk)...)
	return c.withDefaults()
}

// Kind is "container".
func (Config) Kind() string { return KindName }

// Input: the container runner runs images.
func (Config) Input() runners.Input { return runners.Image }

// New builds the runner.
func (c Config) New(opts runners.Options) (runners.Runner, error) { return New(c, opts), nil }

var (
	_ runners.Settings   = Config{}
	_ runners.Platformer = (*Container)(nil)
)
