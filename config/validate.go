package config

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/notify"
)

// build validates the inputs (defaults already applied) and turns them into a
// File. Problems are recorded on d; the File is only meaningful without them.
func (d *decoder) build(in *fileInput) *File {
	f := &File{
		Path:  in.filename,
		Agent: d.buildAgent(in.filename, in.agent),
	}
	if len(in.apps) == 0 {
		start := hcl.Range{Filename: in.filename, Start: hcl.InitialPos, End: hcl.InitialPos}
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "No apps",
			Detail:   `the file declares no app blocks, so the agent has nothing to deploy; add app "name" { registry = "ghr://owner/repo" runner "assets" {} }.`,
			Subject:  &start,
		})
	}
	seen := map[string]hcl.Range{}
	for _, a := range in.apps {
		if first, ok := seen[a.name]; ok {
			d.fail(a.defRange, "Duplicate app",
				"an app named %q is already defined at line %d; app names must be unique, so rename or remove one of them.",
				a.name, first.Start.Line)
		} else {
			seen[a.name] = a.defRange
		}
		f.Apps = append(f.Apps, d.buildApp(a))
	}
	return f
}

func (d *decoder) buildAgent(filename string, in agentInput) Agent {
	a := Agent{
		StateDir:  in.stateDir.val,
		LogLevel:  in.logLevel.val,
		LogFormat: in.logFormat.val,
		Admin:     in.admin.val,
	}
	a.StateDir = d.checkStateDir(filename, in.stateDir)
	d.checkEnum(in.logLevel, "log_level", []string{"debug", "info", "warn", "error"})
	d.checkEnum(in.logFormat, "log_format", []string{"text", "json"})
	d.checkAdmin(in.admin)
	a.Notify = d.checkNotify(in.notify)
	return a
}

// checkRunnerRegistry pairs image registries with the container runner: an
// img:// registry holds container images, which only the container runner runs,
// and the container runner needs images.
func (d *decoder) checkRunnerRegistry(in appInput, app App) {
	if in.runner == nil || app.Registry.Scheme == "" {
		return
	}
	img := app.Registry.Scheme == "img"
	switch {
	case img && app.Runner.Kind != "container":
		d.fail(in.registry.rng, "Image registry needs the container runner",
			`an img:// registry holds container images; use runner "container" {...} with it (runner %q deploys files).`, app.Runner.Kind)
	case !img && app.Runner.Kind == "container":
		d.fail(in.runner.defRange, "Container runner needs an image registry",
			`runner "container" runs images from an img:// registry, e.g. registry = "img://ghcr.io/owner/app"; %s:// holds files.`, app.Registry.Scheme)
	case img && in.artifact.set:
		d.fail(in.artifact.rng, "Not available with img",
			"artifact cannot be used with an img:// registry: an image is chosen by its tag, for this host's platform; remove it.")
	}
	if img && app.Report {
		d.fail(in.report.rng, "Not available with img",
			"report cannot be used with an img:// registry: OCI registries have no place for deployment reports; remove it.")
	}
}

// checkNotify parses every notifier URL, so a typo is a diagnostic and not a
// runtime error. Messages never repeat a URL, which may hold a password.
func (d *decoder) checkNotify(s setting[[]string]) []string {
	if s.bad || len(s.val) == 0 {
		return nil
	}
	for i, raw := range s.val {
		if _, err := notify.Parse(raw); err != nil {
			d.fail(s.rng, "Invalid notifier", "notify[%d]: %v.", i, err)
		}
	}
	return s.val
}

// checkStateDir returns state_dir made absolute. A relative state_dir is taken
// relative to the folder of the config file (not the agent's working
// directory), so the same file means the same place however it is started.
func (d *decoder) checkStateDir(filename string, s setting[string]) string {
	if s.bad {
		return ""
	}
	if s.val == "" {
		d.fail(s.rng, "Empty state_dir",
			"state_dir is empty; give a folder such as %q, or remove the attribute to use that default.", DefaultStateDir)
		return ""
	}
	if filepath.IsAbs(s.val) {
		return filepath.Clean(s.val)
	}
	base, err := baseDir(filename)
	if err != nil {
		d.fail(s.rng, "Relative state_dir",
			"state_dir %q is relative and the config file's folder could not be found (%v); give an absolute path.", s.val, err)
		return ""
	}
	return filepath.Join(base, s.val)
}

func (d *decoder) checkEnum(s setting[string], name string, allowed []string) {
	if s.bad || slices.Contains(allowed, s.val) {
		return
	}
	d.fail(s.rng, "Invalid "+name,
		"%s %q is not one of %s; use one of them.", name, s.val, quoteList(allowed))
}

// checkAdmin accepts "" (admin API off) or host:port with a numeric port; port
// 0 asks the system for a free port. The host may be empty (all interfaces).
func (d *decoder) checkAdmin(s setting[string]) {
	if s.bad || s.val == "" {
		return
	}
	const advice = `use host:port such as "127.0.0.1:17539", or "" to turn the admin API off`
	_, port, err := net.SplitHostPort(s.val)
	if err != nil {
		d.fail(s.rng, "Invalid admin address", "admin %q is not host:port; %s.", s.val, advice)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.fail(s.rng, "Invalid admin address", "admin %q has port %q, which is not a number from 0 to 65535; %s.", s.val, port, advice)
	}
}

func (d *decoder) buildApp(in appInput) App {
	app := App{
		Name:         in.name,
		PreRelease:   in.preRelease.val,
		Artifact:     in.artifact.val,
		KeepReleases: in.keepReleases.val,
		Report:       in.report.val,
	}
	d.checkName(in)
	d.buildRegistry(in, &app)
	app.Interval = d.checkInterval(in.interval)
	if !in.keepReleases.bad && in.keepReleases.val < 1 {
		d.fail(in.keepReleases.rng, "Invalid keep_releases",
			"keep_releases is %d; it must be at least 1 (the current release is always kept).", in.keepReleases.val)
	}
	d.checkArtifactName(in.artifact, "artifact")
	if in.runner != nil {
		app.Runner = d.buildRunner(*in.runner)
	}
	d.checkRunnerRegistry(in, app)
	app.Notify = d.checkNotify(in.notify)
	if h := in.hooks; h != nil {
		app.Hooks = Hooks{BeforeDeploy: h.beforeDeploy.val, AfterDeploy: h.afterDeploy.val}
		app.Hooks.Timeout = d.checkDuration(h.timeout, "timeout", time.Second)
	}
	return app
}

// checkName makes sure the app name is safe as a directory name.
func (d *decoder) checkName(in appInput) {
	if validAppName(in.name) {
		return
	}
	d.fail(in.nameRange, "Invalid app name",
		`app name %q cannot be used; the name becomes a folder name, so use 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit.`,
		in.name)
}

// validAppName reports whether name matches ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$
// and is not "." or "..".
func validAppName(name string) bool {
	if name == "" || len(name) > 63 || name == "." || name == ".." {
		return false
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			return false
		}
	}
	return true
}

func (d *decoder) checkInterval(s setting[string]) time.Duration {
	if s.bad {
		return 0
	}
	iv, err := time.ParseDuration(s.val)
	if err != nil {
		d.fail(s.rng, "Invalid interval", `interval: %q is not a duration; use e.g. "30s", "5m".`, s.val)
		return 0
	}
	if iv < MinInterval {
		d.fail(s.rng, "Interval too short", `interval: %q is shorter than %q; use at least %q.`, s.val, MinInterval, MinInterval)
	}
	return iv
}

// checkArtifactName rejects artifact names that are paths: an artifact is a
// file name inside a release.
func (d *decoder) checkArtifactName(s setting[string], name string) {
	if s.bad || !strings.ContainsAny(s.val, `/\`) {
		return
	}
	d.fail(s.rng, "Invalid "+name, "%s %q is a path; give the file name of the release asset only.", name, s.val)
}

// buildRegistry parses the registry URL and folds its pre-release and
// artifact options into app, reporting a conflict with the attributes.
func (d *decoder) buildRegistry(in appInput, app *App) {
	if in.registry.bad {
		return
	}
	if !in.registry.set {
		d.fail(in.defRange, "Missing registry",
			`app %q has no registry; add registry = "ghr://owner/repo" (or "file:///path/to/releases").`, in.name)
		return
	}
	p, problems := parseRegistry(in.registry.val)
	for _, pr := range problems {
		d.fail(in.registry.rng, pr.summary, "%s", pr.detail)
	}
	app.Registry = p.registry
	if p.registry.Scheme == "grpc" {
		// The seed: a gRPC server chooses the version and the artifact itself.
		const detail = "%s cannot be used with a grpc:// registry: its server chooses the version and the artifact; remove it."
		if in.preRelease.set {
			d.fail(in.preRelease.rng, "Not available with grpc", detail, "pre_release")
		}
		if in.artifact.set {
			d.fail(in.artifact.rng, "Not available with grpc", detail, "artifact")
		}
	}

	if p.preRelease != nil {
		if in.preRelease.set && !in.preRelease.bad && in.preRelease.val != *p.preRelease {
			d.fail(in.preRelease.rng, "Conflicting pre_release",
				"pre_release = %t here, but the registry URL has ?pre-release=%t; both are set, so keep only one of them.",
				in.preRelease.val, *p.preRelease)
		}
		app.PreRelease = *p.preRelease
	}
	if p.artifact != nil {
		if in.artifact.set && !in.artifact.bad && in.artifact.val != *p.artifact {
			d.fail(in.artifact.rng, "Conflicting artifact",
				"artifact = %q here, but the registry URL has ?artifact=%s; both are set, so keep only one of them.",
				in.artifact.val, *p.artifact)
		}
		app.Artifact = *p.artifact
	}
}

// buildRunner validates one runner's settings by kind.
func (d *decoder) buildRunner(in runnerInput) Runner {
	r := Runner{Kind: in.kind}
	switch in.kind {
	case "assets":
		link := in.assets.link
		a := &AssetsRunner{Link: link.val}
		if !link.bad && link.val != "" {
			if filepath.IsAbs(link.val) {
				a.Link = filepath.Clean(link.val)
			} else {
				d.fail(link.rng, "Relative link",
					"link %q is relative; give an absolute path such as \"/var/www/html\".", link.val)
			}
		}
		r.Assets = a
	case "server":
		r.Server = d.buildServer(in)
	case "container":
		r.Container = d.buildContainer(in)
	}
	return r
}

// buildContainer validates `runner "container" {}`. What needs Docker's own
// rules (volume safety, sizes) is checked again by the runner when the agent
// builds it, before anything runs.
func (d *decoder) buildContainer(in runnerInput) *ContainerRunner {
	c := in.container
	out := &ContainerRunner{
		Ports: c.ports.val, Replicas: c.replicas.val, HealthPath: c.healthPath.val, Env: c.env.val,
		Volumes: c.volumes.val, Command: c.command.val, User: c.user.val, Network: c.network.val,
		Memory: c.memory.val, CPUs: c.cpus.val,
	}
	for _, p := range c.ports.val {
		nums := strings.Split(p, ":")
		ok := len(nums) <= 2
		for _, n := range nums {
			if v, err := strconv.Atoi(n); err != nil || v < 0 || v > 65535 {
				ok = false
			}
		}
		if !ok {
			d.fail(c.ports.rng, "Invalid port", `port %q is not "proxy" or "proxy:container" with numbers from 0 to 65535, e.g. "8080:80".`, p)
		}
	}
	if !c.replicas.bad && c.replicas.val < 1 {
		d.fail(c.replicas.rng, "Invalid replicas", "replicas is %d; it must be at least 1.", c.replicas.val)
	}
	if !c.healthPath.bad && c.healthPath.val != "" && !strings.HasPrefix(c.healthPath.val, "/") {
		d.fail(c.healthPath.rng, "Invalid health_path", "health_path %q must start with \"/\", e.g. \"/health\".", c.healthPath.val)
	}
	if !c.cpus.bad && c.cpus.val < 0 {
		d.fail(c.cpus.rng, "Invalid cpus", "cpus is %g; it must be positive (or 0 for no limit).", c.cpus.val)
	}
	if !c.network.bad && (c.network.val == "host" || strings.HasPrefix(c.network.val, "container:")) {
		d.fail(c.network.rng, "Refused network", "network %q is refused: the agent's proxy needs each replica on its own published port; use a bridge network.", c.network.val)
	}
	out.HealthTimeout = d.checkDuration(c.healthTimeout, "health_timeout", time.Second)
	out.DrainTime = d.checkDuration(c.drainTime, "drain_time", 0)
	out.CrashWindow = d.checkDuration(c.crashWindow, "crash_window", time.Second)
	return out
}

// buildServer validates `runner "server" {}`.
func (d *decoder) buildServer(in runnerInput) *ServerRunner {
	s := in.server
	out := &ServerRunner{
		Command:    s.command.val,
		Dir:        s.dir.val,
		Ports:      s.ports.val,
		Env:        s.env.val,
		HealthPath: s.healthPath.val,
		StopSignal: strings.ToUpper(s.stopSignal.val),
		Restart:    s.restart.val,
	}
	switch {
	case s.command.bad:
	case !s.command.set || len(s.command.val) == 0 || s.command.val[0] == "":
		d.fail(s.command.rng, "Missing command",
			`runner "server" needs command, the program and its arguments, e.g. command = ["./myapp", "-listen-from-env"]; a relative program path resolves inside the deployed release.`)
	}
	if !s.dir.bad && !filepath.IsAbs(s.dir.val) && s.dir.val != "" && !filepath.IsLocal(s.dir.val) {
		d.fail(s.dir.rng, "Invalid dir", "dir %q leaves the release directory; give an absolute path or a folder inside the release.", s.dir.val)
	}
	seen := map[int]bool{}
	for _, p := range s.ports.val {
		switch {
		case p < 1 || p > 65535:
			d.fail(s.ports.rng, "Invalid port", "port %d is not a number from 1 to 65535.", p)
		case seen[p]:
			d.fail(s.ports.rng, "Duplicate port", "port %d is listed twice; list each port once.", p)
		}
		seen[p] = true
	}
	if !s.healthPath.bad && s.healthPath.val != "" && !strings.HasPrefix(s.healthPath.val, "/") {
		d.fail(s.healthPath.rng, "Invalid health_path", "health_path %q must start with \"/\", e.g. \"/health\".", s.healthPath.val)
	}
	if s.healthPath.val != "" && len(s.ports.val) == 0 && !s.ports.bad {
		d.fail(s.healthPath.rng, "health_path without ports",
			"health_path is checked over HTTP on the app's inherited sockets, so it needs ports; add ports = [8000] or remove health_path.")
	}
	out.HealthTimeout = d.checkDuration(s.healthTimeout, "health_timeout", time.Second)
	out.StopTimeout = d.checkDuration(s.stopTimeout, "stop_timeout", 0)
	out.CrashWindow = d.checkDuration(s.crashWindow, "crash_window", time.Second)
	if !s.stopSignal.bad && !slices.Contains(StopSignals, out.StopSignal) {
		d.fail(s.stopSignal.rng, "Invalid stop_signal", "stop_signal %q is not one of %s.", s.stopSignal.val, joinList(StopSignals))
	}
	d.checkEnum(s.restart, "restart", []string{"always", "on-failure", "never"})
	return out
}

// checkDuration parses a duration setting that must be at least min.
func (d *decoder) checkDuration(s setting[string], name string, min time.Duration) time.Duration {
	if s.bad {
		return 0
	}
	v, err := time.ParseDuration(s.val)
	if err != nil {
		d.fail(s.rng, "Invalid "+name, `%s: %q is not a duration; use e.g. "30s", "5m".`, name, s.val)
		return 0
	}
	if v < min {
		d.fail(s.rng, "Invalid "+name, `%s: %q is shorter than %q.`, name, s.val, min)
	}
	return v
}

// quoteList renders ["a", "b"] as `"a", "b"`.
func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// joinList renders ["a", "b"] as "a, b".
func joinList(items []string) string { return strings.Join(items, ", ") }

// sortDiagnostics orders diagnostics by file and position (those without a
// range first), so output is stable and reads top to bottom.
func sortDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		}
		if c := strings.Compare(a.Subject.Filename, b.Subject.Filename); c != 0 {
			return c
		}
		return a.Subject.Start.Byte - b.Subject.Start.Byte
	})
	return diags
}
