package config

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Load reads the config file at path and parses it. A file that cannot be read
// is reported as an error diagnostic (without a source range). When the
// diagnostics hold an error the returned File is nil.
func Load(path string) (*File, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read config file",
			Detail:   fmt.Sprintf("%v. Check the path given with -config and the file's permissions.", err),
		}}
	}
	return Parse(path, src)
}

// Parse decodes src, the text of the config file filename, into a File. The
// filename's extension chooses the syntax (.hcl, .json/.hcl.json, .yaml/.yml),
// names the file in diagnostics and anchors a relative state_dir. Every
// problem found is returned, sorted by position; when the diagnostics hold an
// error the returned File is nil. Warnings (such as a file with no apps) come
// with a usable File.
//
// Expressions may call env("NAME"), which reads the agent's environment (an
// unset variable is the empty string). No variables are defined.
func Parse(filename string, src []byte) (*File, hcl.Diagnostics) {
	hf, diags := parseFile(filename, src)
	if diags.HasErrors() {
		return nil, sortDiagnostics(diags)
	}

	// Attributes are decoded as expressions and evaluated below, so gohcl
	// needs no EvalContext here; it checks the structure (unknown attributes
	// and blocks, labels) and records the ranges.
	var raw rawFile
	diags = append(diags, gohcl.DecodeBody(hf.Body, nil, &raw)...)

	d := &decoder{ctx: newEvalContext(os.Getenv)}
	in := d.read(filename, &raw)
	applyDefaults(&in)
	f := d.build(&in)

	diags = sortDiagnostics(append(diags, d.diags...))
	if diags.HasErrors() {
		return nil, diags
	}
	return f, diags
}

// The raw structs mirror the HCL schema. gohcl rejects anything they do not
// name (none of them has a "remain" field except rawRunner, whose body is
// decoded strictly once its kind is known).
type rawFile struct {
	Agents []rawAgent `hcl:"agent,block"`
	Apps   []rawApp   `hcl:"app,block"`
}

type rawAgent struct {
	StateDir  hcl.Expression `hcl:"state_dir,optional"`
	LogLevel  hcl.Expression `hcl:"log_level,optional"`
	LogFormat hcl.Expression `hcl:"log_format,optional"`
	Admin     hcl.Expression `hcl:"admin,optional"`
	Notify    hcl.Expression `hcl:"notify,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type rawApp struct {
	Name         string         `hcl:"name,label"`
	NameRange    hcl.Range      `hcl:"name,label_range"`
	Registry     hcl.Expression `hcl:"registry,optional"` // required; checked with a better message than gohcl's
	PreRelease   hcl.Expression `hcl:"pre_release,optional"`
	Artifact     hcl.Expression `hcl:"artifact,optional"`
	Interval     hcl.Expression `hcl:"interval,optional"`
	KeepReleases hcl.Expression `hcl:"keep_releases,optional"`
	Report       hcl.Expression `hcl:"report,optional"`
	Notify       hcl.Expression `hcl:"notify,optional"`
	Runners      []rawRunner    `hcl:"runner,block"`
	Hooks        []rawHooks     `hcl:"hooks,block"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type rawHooks struct {
	BeforeDeploy hcl.Expression `hcl:"before_deploy,optional"`
	AfterDeploy  hcl.Expression `hcl:"after_deploy,optional"`
	Timeout      hcl.Expression `hcl:"timeout,optional"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type rawRunner struct {
	Kind      string    `hcl:"kind,label"`
	KindRange hcl.Range `hcl:"kind,label_range"`
	Body      hcl.Body  `hcl:",remain"`
	DefRange  hcl.Range `hcl:",def_range"`
}

type rawAssets struct {
	Link hcl.Expression `hcl:"link,optional"`
}

type rawContainer struct {
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

type rawServer struct {
	Command       hcl.Expression `hcl:"command,optional"` // required; checked with a better message
	Dir           hcl.Expression `hcl:"dir,optional"`
	Ports         hcl.Expression `hcl:"ports,optional"`
	Env           hcl.Expression `hcl:"env,optional"`
	HealthPath    hcl.Expression `hcl:"health_path,optional"`
	HealthTimeout hcl.Expression `hcl:"health_timeout,optional"`
	StopSignal    hcl.Expression `hcl:"stop_signal,optional"`
	StopTimeout   hcl.Expression `hcl:"stop_timeout,optional"`
	Restart       hcl.Expression `hcl:"restart,optional"`
	CrashWindow   hcl.Expression `hcl:"crash_window,optional"`
}

// newEvalContext is the only context expressions see: the env function and no
// variables, so a reference to a variable or another function is an error.
func newEvalContext(getenv func(string) string) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env": envFunction(getenv),
		},
	}
}

// envFunction is env("NAME"): the agent's environment variable NAME, or "" when
// it is not set.
func envFunction(getenv func(string) string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable of the agent, or an empty string when it is not set.",
		Params: []function.Parameter{{
			Name: "name",
			Type: cty.String,
		}},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(getenv(args[0].AsString())), nil
		},
	})
}

// setting is one attribute after evaluation.
type setting[T any] struct {
	val T
	// set: the file gives the attribute a non-null value.
	set bool
	// bad: the expression could not be evaluated or converted; that is already
	// reported, and validation skips the setting.
	bad bool
	// rng is the expression's range, or the enclosing block's when the
	// attribute is not written.
	rng hcl.Range
}

// orDefault gives an unset setting its default value.
func (s *setting[T]) orDefault(v T) {
	if !s.set {
		s.val = v
	}
}

// The inputs are the file's values before defaults and validation.
type fileInput struct {
	filename string
	agent    agentInput
	apps     []appInput
}

type agentInput struct {
	stateDir, logLevel, logFormat, admin setting[string]
	notify                               setting[[]string]
}

type appInput struct {
	name                string
	nameRange, defRange hcl.Range
	registry            setting[string]
	preRelease          setting[bool]
	artifact            setting[string]
	interval            setting[string]
	keepReleases        setting[int]
	report              setting[bool]
	notify              setting[[]string]
	// hooks is nil when the app has no hooks block.
	hooks *hooksInput
	// runner is nil when the app has no usable runner block (reported).
	runner *runnerInput
}

type hooksInput struct {
	beforeDeploy, afterDeploy, timeout setting[string]
}

// runnerInput holds exactly one kind's settings, matching kind.
type runnerInput struct {
	kind      string
	defRange  hcl.Range
	assets    *assetsInput
	server    *serverInput
	container *containerInput
}

type containerInput struct {
	ports, volumes, command               setting[[]string]
	replicas                              setting[int]
	healthPath, user, network, memory     setting[string]
	healthTimeout, drainTime, crashWindow setting[string]
	env                                   setting[map[string]string]
	cpus                                  setting[float64]
}

type serverInput struct {
	command                    setting[[]string]
	dir, healthPath            setting[string]
	ports                      setting[[]int]
	env                        setting[map[string]string]
	healthTimeout, stopTimeout setting[string]
	crashWindow                setting[string]
	stopSignal, restart        setting[string]
}

type assetsInput struct {
	link setting[string]
}

// runnerKinds are the runner kinds of this build, for messages.
func runnerKinds() []string { return []string{"assets", "container", "server"} }

// applyDefaults gives every unset setting its default. It is the only place
// defaults live, and it runs before validation.
func applyDefaults(in *fileInput) {
	in.agent.stateDir.orDefault(DefaultStateDir)
	in.agent.logLevel.orDefault(DefaultLogLevel)
	in.agent.logFormat.orDefault(DefaultLogFormat)
	in.agent.admin.orDefault(DefaultAdmin)
	for i := range in.apps {
		app := &in.apps[i]
		app.preRelease.orDefault(false)
		if r := app.runner; r != nil && r.server != nil {
			r.server.healthTimeout.orDefault(DefaultHealthTimeout.String())
			r.server.stopTimeout.orDefault(DefaultStopTimeout.String())
			r.server.stopSignal.orDefault(DefaultStopSignal)
			r.server.restart.orDefault(DefaultRestart)
			r.server.crashWindow.orDefault(DefaultCrashWindow.String())
		}
		if r := app.runner; r != nil && r.container != nil {
			r.container.replicas.orDefault(DefaultReplicas)
			r.container.healthTimeout.orDefault(DefaultHealthTimeout.String())
			r.container.drainTime.orDefault(DefaultDrainTime.String())
			r.container.crashWindow.orDefault(DefaultCrashWindow.String())
		}
		app.artifact.orDefault("")
		app.interval.orDefault(DefaultInterval.String())
		app.keepReleases.orDefault(DefaultKeepReleases)
		app.report.orDefault(false)
		if app.hooks != nil {
			app.hooks.timeout.orDefault(DefaultHookTimeout.String())
		}
		// The assets runner has no defaults (no link unless one is given).
	}
}

// decoder evaluates expressions and collects diagnostics; it never stops at
// the first problem.
type decoder struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
}

// fail records an error at rng.
func (d *decoder) fail(rng hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng.Ptr(),
	})
}

// eval evaluates expr, the attribute name of the block at block, into a T.
// want says in words what T is, for the message when the value does not fit.
// A missing attribute and an explicit null are both "not set".
func eval[T any](d *decoder, expr hcl.Expression, name, want string, block hcl.Range) setting[T] {
	s := setting[T]{rng: block}
	if expr == nil {
		return s
	}
	val, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		s.bad = true
		s.rng = expr.Range()
		return s
	}
	if val.IsNull() {
		// Not written (gohcl's stand-in is a null), or written as null.
		return s
	}
	s.rng = expr.Range()
	ty, err := gocty.ImpliedType(&s.val)
	if err != nil {
		panic(fmt.Sprintf("config: no cty type for %T: %v", s.val, err)) // a bug in this package
	}
	conv, err := convert.Convert(val, ty)
	if err == nil {
		err = gocty.FromCtyValue(conv, &s.val)
	}
	if err != nil {
		s.bad = true
		d.fail(s.rng, "Invalid "+name, "%s must be %s.", name, want)
		return s
	}
	s.set = true
	return s
}

// read evaluates the raw file into inputs, checking block counts and runner
// kinds on the way.
func (d *decoder) read(filename string, raw *rawFile) fileInput {
	in := fileInput{filename: filename}

	if len(raw.Agents) > 0 {
		a := raw.Agents[0]
		in.agent = agentInput{
			stateDir:  eval[string](d, a.StateDir, "state_dir", "a string", a.DefRange),
			logLevel:  eval[string](d, a.LogLevel, "log_level", "a string", a.DefRange),
			logFormat: eval[string](d, a.LogFormat, "log_format", "a string", a.DefRange),
			admin:     eval[string](d, a.Admin, "admin", "a string", a.DefRange),
			notify:    eval[[]string](d, a.Notify, "notify", "a list of notifier URLs", a.DefRange),
		}
		for _, extra := range raw.Agents[1:] {
			d.fail(extra.DefRange, "Duplicate agent block",
				"a config file has at most one agent block and the first is at line %d; merge the settings into it.",
				a.DefRange.Start.Line)
		}
	}

	for _, ra := range raw.Apps {
		app := appInput{
			name:         ra.Name,
			nameRange:    ra.NameRange,
			defRange:     ra.DefRange,
			registry:     eval[string](d, ra.Registry, "registry", "a string", ra.DefRange),
			preRelease:   eval[bool](d, ra.PreRelease, "pre_release", "true or false", ra.DefRange),
			artifact:     eval[string](d, ra.Artifact, "artifact", "a string", ra.DefRange),
			interval:     eval[string](d, ra.Interval, "interval", `a duration string such as "30s"`, ra.DefRange),
			keepReleases: eval[int](d, ra.KeepReleases, "keep_releases", "a whole number", ra.DefRange),
			report:       eval[bool](d, ra.Report, "report", "true or false", ra.DefRange),
			notify:       eval[[]string](d, ra.Notify, "notify", "a list of notifier URLs", ra.DefRange),
		}
		app.runner = d.readRunners(ra)
		for i, h := range ra.Hooks {
			if i > 0 {
				d.fail(h.DefRange, "Duplicate hooks block",
					"app %q already has a hooks block at line %d; merge the hooks into it.", ra.Name, ra.Hooks[0].DefRange.Start.Line)
				continue
			}
			app.hooks = &hooksInput{
				beforeDeploy: eval[string](d, h.BeforeDeploy, "before_deploy", "a shell command string", h.DefRange),
				afterDeploy:  eval[string](d, h.AfterDeploy, "after_deploy", "a shell command string", h.DefRange),
				timeout:      eval[string](d, h.Timeout, "timeout", `a duration string such as "5m"`, h.DefRange),
			}
		}
		in.apps = append(in.apps, app)
	}
	return in
}

// readRunners checks that the app has exactly one runner block and decodes it.
func (d *decoder) readRunners(ra rawApp) *runnerInput {
	if len(ra.Runners) == 0 {
		d.fail(ra.DefRange, "Missing runner block",
			`app %q has no runner block; add runner "assets" {...} inside it (runner kinds in this build: %s).`,
			ra.Name, quoteList(runnerKinds()))
		return nil
	}
	first := ra.Runners[0]
	for _, extra := range ra.Runners[1:] {
		d.fail(extra.DefRange, "Duplicate runner block",
			"app %q already has a runner block at line %d and an app has exactly one runner; remove one of them.",
			ra.Name, first.DefRange.Start.Line)
	}
	return d.readRunner(first)
}

// readRunner decodes one runner block by its kind. Adding a kind is a case
// here, a struct for its settings, and a name in runnerKinds.
func (d *decoder) readRunner(r rawRunner) *runnerInput {
	switch r.Kind {
	case "assets":
		var ra rawAssets
		d.diags = append(d.diags, gohcl.DecodeBody(r.Body, nil, &ra)...)
		return &runnerInput{kind: r.Kind, defRange: r.DefRange, assets: &assetsInput{
			link: eval[string](d, ra.Link, "link", "a string", r.DefRange),
		}}
	case "container":
		var rc rawContainer
		d.diags = append(d.diags, gohcl.DecodeBody(r.Body, nil, &rc)...)
		refused := []struct {
			expr hcl.Expression
			name string
			why  string
		}{
			{rc.Privileged, "privileged", "a privileged container can take over the host"},
			{rc.PID, "pid", "sharing the host's process namespace lets the container see and signal every process"},
			{rc.CapAdd, "cap_add", "added capabilities weaken the container's isolation from the host"},
			{rc.Devices, "devices", "host devices give the container direct access to the host's hardware"},
		}
		for _, f := range refused {
			if f.expr == nil {
				continue
			}
			if v, _ := f.expr.Value(d.ctx); v.IsNull() {
				continue // not written
			}
			d.fail(f.expr.Range(), "Refused container setting",
				"%s is refused: %s, and a container the agent manages must not be able to break the agent or the host; remove it.", f.name, f.why)
		}
		return &runnerInput{kind: r.Kind, defRange: r.DefRange, container: &containerInput{
			ports:         eval[[]string](d, rc.Ports, "ports", `a list of "proxy" or "proxy:container" strings, e.g. ["8080:80"]`, r.DefRange),
			replicas:      eval[int](d, rc.Replicas, "replicas", "a whole number", r.DefRange),
			healthPath:    eval[string](d, rc.HealthPath, "health_path", "a string", r.DefRange),
			healthTimeout: eval[string](d, rc.HealthTimeout, "health_timeout", "a duration string such as \"30s\"", r.DefRange),
			drainTime:     eval[string](d, rc.DrainTime, "drain_time", "a duration string such as \"30s\"", r.DefRange),
			env:           eval[map[string]string](d, rc.Env, "env", "a map of strings, e.g. { APP_ENV = \"production\" }", r.DefRange),
			volumes:       eval[[]string](d, rc.Volumes, "volumes", `a list of strings, e.g. ["/data:/app/data"]`, r.DefRange),
			command:       eval[[]string](d, rc.Command, "command", "a list of strings", r.DefRange),
			user:          eval[string](d, rc.User, "user", "a string", r.DefRange),
			network:       eval[string](d, rc.Network, "network", "a string", r.DefRange),
			memory:        eval[string](d, rc.Memory, "memory", `a size string such as "512m"`, r.DefRange),
			cpus:          eval[float64](d, rc.CPUs, "cpus", "a number such as 0.5", r.DefRange),
			crashWindow:   eval[string](d, rc.CrashWindow, "crash_window", "a duration string such as \"10s\"", r.DefRange),
		}}
	case "server":
		var rs rawServer
		d.diags = append(d.diags, gohcl.DecodeBody(r.Body, nil, &rs)...)
		return &runnerInput{kind: r.Kind, defRange: r.DefRange, server: &serverInput{
			command:       eval[[]string](d, rs.Command, "command", "a list of strings, e.g. [\"./myapp\", \"-port\", \"8000\"]", r.DefRange),
			dir:           eval[string](d, rs.Dir, "dir", "a string", r.DefRange),
			ports:         eval[[]int](d, rs.Ports, "ports", "a list of port numbers, e.g. [8000, 8001]", r.DefRange),
			env:           eval[map[string]string](d, rs.Env, "env", "a map of strings, e.g. { APP_ENV = \"production\" }", r.DefRange),
			healthPath:    eval[string](d, rs.HealthPath, "health_path", "a string", r.DefRange),
			healthTimeout: eval[string](d, rs.HealthTimeout, "health_timeout", "a duration string such as \"30s\"", r.DefRange),
			stopSignal:    eval[string](d, rs.StopSignal, "stop_signal", "a signal name such as \"SIGTERM\"", r.DefRange),
			stopTimeout:   eval[string](d, rs.StopTimeout, "stop_timeout", "a duration string such as \"30s\"", r.DefRange),
			restart:       eval[string](d, rs.Restart, "restart", "a string", r.DefRange),
			crashWindow:   eval[string](d, rs.CrashWindow, "crash_window", "a duration string such as \"10s\"", r.DefRange),
		}}
	}
	d.fail(r.KindRange, "Unknown runner kind",
		"unknown runner kind %q (supported: %s); write for example runner \"assets\" {...}.", r.Kind, joinList(runnerKinds()))
	return nil
}

// baseDir is the folder a relative state_dir is resolved against: the config
// file's own folder, made absolute.
func baseDir(filename string) (string, error) {
	dir := filepath.Dir(filename)
	if filepath.IsAbs(dir) {
		return dir, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	return abs, nil
}
