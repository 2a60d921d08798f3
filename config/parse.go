package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/signing"
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
	// env() values are remembered: they are the secrets hook output is
	// scrubbed of.
	var secrets []string
	getenv := func(name string) string {
		v := os.Getenv(name)
		if v != "" && !slices.Contains(secrets, v) {
			secrets = append(secrets, v)
		}
		return v
	}
	ctx, known := hclsettings.NewEvalContextSecrets(getenv)
	f, diags := parse(filename, src, ctx)
	// Checks that see only a decoded value (a runner's, a source's) cannot
	// tell where it came from: no env() value leaves in a message.
	known.Scrub(diags)
	if f != nil {
		f.Secrets = secrets
	}
	return f, diags
}

// parse is Parse with the context expressions are evaluated in.
func parse(filename string, src []byte, ctx *hcl.EvalContext) (*File, hcl.Diagnostics) {
	hf, diags := parseFile(filename, src)
	if diags.HasErrors() {
		return nil, sortDiagnostics(diags)
	}

	// Attributes are decoded as expressions and evaluated below, so gohcl
	// needs no EvalContext here; it checks the structure (unknown attributes
	// and blocks, labels) and records the ranges.
	var raw rawFile
	diags = append(diags, gohcl.DecodeBody(hf.Body, nil, &raw)...)

	d := &decoder{Decoder: hclsettings.NewDecoder(ctx)}
	in := d.read(filename, &raw)
	applyDefaults(&in)
	f := d.build(&in)

	diags = sortDiagnostics(append(diags, d.Diags...))
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
	Fleets []rawFleet `hcl:"fleet,block"`
}

type rawAgent struct {
	StateDir   hcl.Expression `hcl:"state_dir,optional"`
	LogLevel   hcl.Expression `hcl:"log_level,optional"`
	LogFormat  hcl.Expression `hcl:"log_format,optional"`
	Admin      hcl.Expression `hcl:"admin,optional"`
	AdminToken hcl.Expression `hcl:"admin_token,optional"`
	Notify     hcl.Expression `hcl:"notify,optional"`
	KeepApps   hcl.Expression `hcl:"keep_apps_running_on_stop,optional"`
	// MinFreeSpace: see config/freespace.go.
	MinFreeSpace hcl.Expression `hcl:"min_free_space,optional"`
	// MaxParallelDeploys: max_parallel_deploys (see Agent).
	MaxParallelDeploys hcl.Expression `hcl:"max_parallel_deploys,optional"`
	DefRange           hcl.Range      `hcl:",def_range"`
}

type rawApp struct {
	Name         string         `hcl:"name,label"`
	NameRange    hcl.Range      `hcl:"name,label_range"`
	Registry     hcl.Expression `hcl:"registry,optional"` // required; checked with a better message than gohcl's
	PreRelease   hcl.Expression `hcl:"pre_release,optional"`
	Artifact     hcl.Expression `hcl:"artifact,optional"`
	CalVer       hcl.Expression `hcl:"calver,optional"`
	Slot         hcl.Expression `hcl:"slot,optional"`
	Interval     hcl.Expression `hcl:"interval,optional"`
	KeepReleases hcl.Expression `hcl:"keep_releases,optional"`
	Report       hcl.Expression `hcl:"report,optional"`
	Notify       hcl.Expression `hcl:"notify,optional"`
	Runners      []rawRunner    `hcl:"runner,block"`
	Hooks        []rawHooks     `hcl:"hooks,block"`
	Rollouts     []rawRollout   `hcl:"rollout,block"`
	Verifies     []rawVerify    `hcl:"verify,block"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

// rawVerify is an app's verify block, whose body package signing decodes.
type rawVerify struct {
	Body     hcl.Body  `hcl:",remain"`
	DefRange hcl.Range `hcl:",def_range"`
}

type rawHooks struct {
	BeforeDeploy hcl.Expression `hcl:"before_deploy,optional"`
	AfterDeploy  hcl.Expression `hcl:"after_deploy,optional"`
	Timeout      hcl.Expression `hcl:"timeout,optional"`
	Env          hcl.Expression `hcl:"env,optional"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type rawRunner struct {
	Kind      string    `hcl:"kind,label"`
	KindRange hcl.Range `hcl:"kind,label_range"`
	Body      hcl.Body  `hcl:",remain"`
	DefRange  hcl.Range `hcl:",def_range"`
}

// setting is one attribute after evaluation (see hclsettings.Setting).
type setting[T any] = hclsettings.Setting[T]

// The inputs are the file's values before defaults and validation.
type fileInput struct {
	filename string
	agent    agentInput
	apps     []appInput
	fleet    *fleet.Fleet // nil without a fleet block
}

type agentInput struct {
	stateDir, logLevel, logFormat, admin, adminToken setting[string]
	notify                                           setting[[]string]
	minFreeSpace                                     setting[string]
	keepApps                                         setting[bool]
	maxParallelDeploys                               setting[int]
}

type appInput struct {
	name                string
	nameRange, defRange hcl.Range
	registry            setting[string]
	preRelease          setting[bool]
	artifact            setting[string]
	calver, slot        setting[string]
	interval            setting[string]
	keepReleases        setting[int]
	report              setting[bool]
	notify              setting[[]string]
	// hooks is nil when the app has no hooks block.
	hooks *hooksInput
	// runner is nil when the app has no usable runner block (reported).
	runner *runnerInput
	// rollout is nil when the app has no rollout block (config/fleet.go).
	rollout      *fleet.Rollout
	rolloutRange hcl.Range
	// verify is the verify block decoded by package signing; nil without
	// one (or when it has errors, which are reported).
	verify      *signing.Settings
	verifyRange hcl.Range
}

type hooksInput struct {
	beforeDeploy, afterDeploy, timeout setting[string]
	env                                setting[map[string]string]
}

// runnerInput is the app's runner block, decoded by its kind.
type runnerInput struct {
	kind     string
	defRange hcl.Range
	settings runners.Settings
}

// applyDefaults gives every unset setting its default. It is the only place
// defaults live, and it runs before validation.
func applyDefaults(in *fileInput) {
	in.agent.stateDir.OrDefault(DefaultStateDir)
	in.agent.logLevel.OrDefault(DefaultLogLevel)
	in.agent.logFormat.OrDefault(DefaultLogFormat)
	in.agent.admin.OrDefault(DefaultAdmin)
	for i := range in.apps {
		app := &in.apps[i]
		app.preRelease.OrDefault(false)
		app.artifact.OrDefault("")
		app.calver.OrDefault("")
		app.slot.OrDefault("")
		app.interval.OrDefault(DefaultInterval.String())
		app.keepReleases.OrDefault(DefaultKeepReleases)
		app.report.OrDefault(false)
		if app.hooks != nil {
			app.hooks.timeout.OrDefault(DefaultHookTimeout.String())
		}
		// Each runner kind applies its own defaults when it decodes its block.
	}
}

// decoder evaluates expressions and collects diagnostics; it never stops at
// the first problem.
type decoder struct {
	*hclsettings.Decoder
}

// fail records an error at rng.
func (d *decoder) fail(rng hcl.Range, summary, detail string, args ...any) {
	d.Fail(rng, summary, detail, args...)
}

// eval evaluates expr into a T (see hclsettings.Eval).
func eval[T any](d *decoder, expr hcl.Expression, name, want string, block hcl.Range) setting[T] {
	return hclsettings.Eval[T](d.Decoder, expr, name, want, block)
}

// read evaluates the raw file into inputs, checking block counts and runner
// kinds on the way.
func (d *decoder) read(filename string, raw *rawFile) fileInput {
	in := fileInput{filename: filename}

	if len(raw.Agents) > 0 {
		a := raw.Agents[0]
		in.agent = agentInput{
			stateDir:           eval[string](d, a.StateDir, "state_dir", "a string", a.DefRange),
			logLevel:           eval[string](d, a.LogLevel, "log_level", "a string", a.DefRange),
			logFormat:          eval[string](d, a.LogFormat, "log_format", "a string", a.DefRange),
			admin:              eval[string](d, a.Admin, "admin", "a string", a.DefRange),
			adminToken:         eval[string](d, a.AdminToken, "admin_token", "a string", a.DefRange),
			notify:             eval[[]string](d, a.Notify, "notify", "a list of notifier URLs", a.DefRange),
			minFreeSpace:       eval[string](d, a.MinFreeSpace, "min_free_space", `a size such as "1GiB" or a percentage such as "5%"`, a.DefRange),
			keepApps:           eval[bool](d, a.KeepApps, "keep_apps_running_on_stop", "true or false", a.DefRange),
			maxParallelDeploys: eval[int](d, a.MaxParallelDeploys, "max_parallel_deploys", "a whole number", a.DefRange),
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
			calver:       eval[string](d, ra.CalVer, "calver", `a CalVer format string such as "YYYY.0M.MICRO"`, ra.DefRange),
			slot:         eval[string](d, ra.Slot, "slot", `a string such as "blue"`, ra.DefRange),
			interval:     eval[string](d, ra.Interval, "interval", `a duration string such as "30s"`, ra.DefRange),
			keepReleases: eval[int](d, ra.KeepReleases, "keep_releases", "a whole number", ra.DefRange),
			report:       eval[bool](d, ra.Report, "report", "true or false", ra.DefRange),
			notify:       eval[[]string](d, ra.Notify, "notify", "a list of notifier URLs", ra.DefRange),
		}
		app.runner = d.readRunners(ra)
		app.rollout, app.rolloutRange = d.readRollout(ra)
		app.verify, app.verifyRange = d.readVerify(filename, ra)
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
				env:          eval[map[string]string](d, h.Env, "env", `a map of strings such as { LOG_DIR = "/var/log/app" }`, h.DefRange),
			}
		}
		in.apps = append(in.apps, app)
	}
	in.fleet = d.readFleet(raw.Fleets)
	d.checkRolloutsNeedFleet(in.fleet, in.apps)
	return in
}

// readRunners checks that the app has exactly one runner block and decodes it.
func (d *decoder) readRunners(ra rawApp) *runnerInput {
	if len(ra.Runners) == 0 {
		d.fail(ra.DefRange, "Missing runner block",
			`app %q has no runner block; add runner "assets" {...} inside it (runner kinds in this build: %s).`,
			ra.Name, quoteList(runnerKindNames()))
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

// readRunner hands one runner block to the kind that owns it (table.go).
func (d *decoder) readRunner(r rawRunner) *runnerInput {
	k, ok := runnerKind(r.Kind)
	if !ok {
		d.fail(r.KindRange, "Unknown runner kind",
			"unknown runner kind %q (supported: %s); write for example runner \"assets\" {...}.", r.Kind, joinList(runnerKindNames()))
		return nil
	}
	settings, diags := k.Decode(hclsettings.Block{Body: r.Body, DefRange: r.DefRange, Ctx: d.Ctx})
	d.Diags = append(d.Diags, diags...)
	return &runnerInput{kind: r.Kind, defRange: r.DefRange, settings: settings}
}

// readVerify hands the app's verify block (at most one) to package signing,
// which owns its schema and reads the keys it names, relative paths from the
// config file's folder.
func (d *decoder) readVerify(filename string, ra rawApp) (*signing.Settings, hcl.Range) {
	if len(ra.Verifies) == 0 {
		return nil, hcl.Range{}
	}
	first := firstBlock(d, ra.Verifies, func(b rawVerify) hcl.Range { return b.DefRange }, ra.Name, "verify", "merge the keys into it")
	base, err := baseDir(filename)
	if err != nil {
		d.fail(first.DefRange, "Verify block without a folder",
			"the config file's folder could not be found (%v), so the key files the verify block names cannot be found; start the agent with an absolute -config path.", err)
		return nil, first.DefRange
	}
	s, diags := signing.Decode(hclsettings.Block{Body: first.Body, DefRange: first.DefRange, Ctx: d.Ctx}, base)
	d.Diags = append(d.Diags, diags...)
	if diags.HasErrors() {
		return nil, first.DefRange
	}
	return s, first.DefRange
}

// firstBlock returns the first of an app's blocks of a kind that it may
// have once, reporting every other one at its range.
func firstBlock[T any](d *decoder, blocks []T, rng func(T) hcl.Range, app, kind, advice string) T {
	first := blocks[0]
	for _, extra := range blocks[1:] {
		d.fail(rng(extra), "Duplicate "+kind+" block",
			"app %q already has a %s block at line %d; %s.", app, kind, rng(first).Start.Line, advice)
	}
	return first
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
