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

// rawConfig is the block's schema.
type rawConfig struct {
	Ports         hcl.Expression `hcl:"ports,optional"`
	Replicas      hcl.Expression `hcl:"replicas,optional"`
	HealthPath    hcl.Expression `hcl:"health_path,optional"`
	HealthTimeout hcl.Expression `hcl:"health_timeout,optional"`
	DrainTime     hcl.Expression `hcl:"drain_time,optional"`
	Env           hcl.Expression `hcl:"env,optional"`
	Volumes       hcl.Expression `hcl:"volumes,optional"`
	Command       hcl.Expression `hcl:"command,optional"`
	User          hcl.Expression `hcl:"user,optional"`
	Network       hcl.Expression `hcl:"network,optional"`
	Memory        hcl.Expression `hcl:"memory,optional"`
	CPUs          hcl.Expression `hcl:"cpus,optional"`
	CrashWindow   hcl.Expression `hcl:"crash_window,optional"`
	// Settings Docker has that the agent refuses, named so the refusal can
	// say why rather than "unknown argument".
	Privileged hcl.Expression `hcl:"privileged,optional"`
	PID        hcl.Expression `hcl:"pid,optional"`
	CapAdd     hcl.Expression `hcl:"cap_add,optional"`
	Devices    hcl.Expression `hcl:"devices,optional"`
}

// decode reads runner "container" {} into a Config with its defaults applied.
// Config.App is left empty: the runner names its containers after the app's
// folder (runners.Options.AppDir), whose name config has already checked.
func decode(b hclsettings.Block) (runners.Settings, hcl.Diagnostics) {
	d := hclsettings.NewDecoder(b.Ctx)
	var raw rawConfig
	d.DecodeBody(b.Body, &raw)
	blk := b.DefRange

	for _, f := range []struct {
		expr hcl.Expression
		name string
		why  string
	}{
		{raw.Privileged, "privileged", "a privileged container can take over the host"},
		{raw.PID, "pid", "sharing the host's process namespace lets the container see and signal every process"},
		{raw.CapAdd, "cap_add", "added capabilities weaken the container's isolation from the host"},
		{raw.Devices, "devices", "host devices give the container direct access to the host's hardware"},
	} {
		if d.Written(f.expr) {
			d.Fail(f.expr.Range(), "Refused container setting",
				"%s is refused: %s, and a container the agent manages must not be able to break the agent or the host; remove it.", f.name, f.why)
		}
	}

	ports := hclsettings.Eval[[]string](d, raw.Ports, "ports", `a list of "proxy" or "proxy:container" strings, e.g. ["8080:80"]`, blk)
	replicas := hclsettings.Eval[int](d, raw.Replicas, "replicas", "a whole number", blk)
	healthPath := hclsettings.Eval[string](d, raw.HealthPath, "health_path", "a string", blk)
	healthTimeout := hclsettings.Eval[string](d, raw.HealthTimeout, "health_timeout", `a duration string such as "30s"`, blk)
	drainTime := hclsettings.Eval[string](d, raw.DrainTime, "drain_time", `a duration string such as "30s"`, blk)
	env := hclsettings.Eval[map[string]string](d, raw.Env, "env", `a map of strings, e.g. { APP_ENV = "production" }`, blk)
	volumes := hclsettings.Eval[[]string](d, raw.Volumes, "volumes", `a list of strings, e.g. ["/data:/app/data"]`, blk)
	command := hclsettings.Eval[[]string](d, raw.Command, "command", "a list of strings", blk)
	user := hclsettings.Eval[string](d, raw.User, "user", "a string", blk)
	network := hclsettings.Eval[string](d, raw.Network, "network", "a string", blk)
	memory := hclsettings.Eval[string](d, raw.Memory, "memory", `a size string such as "512m"`, blk)
	cpus := hclsettings.Eval[float64](d, raw.CPUs, "cpus", "a number such as 0.5", blk)
	crashWindow := hclsettings.Eval[string](d, raw.CrashWindow, "crash_window", `a duration string such as "10s"`, blk)

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
	c.HealthTimeout = d.Duration(healthTimeout, "health_timeout", runners.MinHealthTimeout)
	c.DrainTime = d.Duration(drainTime, "drain_time", 0)
	c.CrashWindow = d.Duration(crashWindow, "crash_window", runners.MinCrashWindow)

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
	d.Diags = append(d.Diags, hclsettings.Problems(probs, ranges, blk)...)
	return c.withDefaults(), d.Diags
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
