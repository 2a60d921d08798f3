package config

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/notify"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// build validates the inputs (defaults already applied) and turns them into a
// File. Problems are recorded on d; the File is only meaningful without them.
func (d *decoder) build(in *fileInput) *File {
	f := &File{
		Path:  in.filename,
		Agent: d.buildAgent(in.filename, in.agent),
		Fleet: in.fleet,
	}
	if len(in.apps) == 0 {
		start := hcl.Range{Filename: in.filename, Start: hcl.InitialPos, End: hcl.InitialPos}
		d.Diags = append(d.Diags, &hcl.Diagnostic{
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
		StateDir:  in.stateDir.Val,
		LogLevel:  in.logLevel.Val,
		LogFormat: in.logFormat.Val,
		Admin:     in.admin.Val,

		KeepAppsRunningOnStop: in.keepApps.Val,
	}
	a.AdminToken = d.checkAdminToken(in.admin, in.adminToken)
	a.StateDir = d.checkStateDir(filename, in.stateDir)
	d.checkEnum(in.logLevel, "log_level", []string{"debug", "info", "warn", "error"})
	d.checkEnum(in.logFormat, "log_format", []string{"text", "json"})
	d.checkAdmin(in.admin)
	a.Notify = d.checkNotify(in.notify)
	a.MinFreeSpace = d.checkFreeSpace(in.minFreeSpace)
	if m := in.maxParallelDeploys; m.Set && !m.Bad {
		if m.Val < 1 {
			d.fail(m.Range, "Invalid max_parallel_deploys",
				"max_parallel_deploys is %s; it must be at least 1.", m.Show())
		}
		a.MaxParallelDeploys = m.Val
	}
	return a
}

// checkRunnerRegistry pairs the registry with the runner: a registry of
// images needs a runner of images (the container runner), and a runner of
// images needs such a registry. It also refuses the app attributes the
// registry has no use for.
func (d *decoder) checkRunnerRegistry(in appInput, app App, traits sources.Traits) {
	if in.runner == nil || in.runner.settings == nil || app.Registry.Scheme == "" {
		return
	}
	images := traits.Images
	kind, input := in.runner.kind, in.runner.settings.Input()
	switch {
	case images && input != runners.Image:
		d.fail(in.registry.Range, "Image registry needs the container runner",
			`an %s:// registry holds container images; use runner "container" {...} with it (runner %q deploys files).`, app.Registry.Scheme, kind)
	case !images && input == runners.Image && !traits.Decides:
		// A deciding registry (grpc://) may answer img:// for a container runner.
		d.fail(in.runner.defRange, "Container runner needs an image registry",
			`runner %q runs images from an img:// registry, e.g. registry = "img://ghcr.io/owner/app"; %s:// holds files.`, kind, app.Registry.Scheme)
	case images && in.artifact.Set:
		d.fail(in.artifact.Range, "Not available with img",
			"artifact cannot be used with an %s:// registry: an image is chosen by its tag, for this host's platform; remove it.", app.Registry.Scheme)
	}
	if traits.NoReports && app.Report {
		d.fail(in.report.Range, "Not available with img",
			"report cannot be used with an %s:// registry: OCI registries have no place for deployment reports; remove it.", app.Registry.Scheme)
	}
}

// checkVerify pairs the verify block with what the app deploys: an image
// app needs cosign_public_key, a file app a file method (minisign, ssh or
// sigstore). A block with only the other kind would verify nothing.
func (d *decoder) checkVerify(in appInput, app App) {
	v := app.Verify
	if v == nil || in.runner == nil || in.runner.settings == nil {
		return
	}
	images := in.runner.settings.Input() == runners.Image
	switch {
	case images && !v.Images():
		d.fail(in.verifyRange, "Verify block checks no image",
			`app %q runs images (runner %q), which are checked with a cosign signature; add cosign_public_key = "/etc/dewy-agent/cosign.pub" to the verify block (minisign, ssh and sigstore check files).`, app.Name, in.runner.kind)
	case !images && !v.Files():
		d.fail(in.verifyRange, "Verify block checks no file",
			`app %q deploys files (runner %q), which are checked with a signature beside the artifact; add minisign_public_keys, ssh_allowed_signers or a sigstore block to the verify block (cosign_public_key checks images only).`, app.Name, in.runner.kind)
	}
}

// checkNotify parses every notifier URL, so a typo is a diagnostic and not a
// runtime error. Messages never repeat a URL, which may hold a password.
func (d *decoder) checkNotify(s setting[[]string]) []string {
	if s.Bad || len(s.Val) == 0 {
		return nil
	}
	for i, raw := range s.Val {
		if _, err := notify.Parse(raw); err != nil {
			d.fail(s.Range, "Invalid notifier", "notify[%d]: %v.", i, err)
		}
	}
	return s.Val
}

// checkStateDir returns state_dir made absolute. A relative state_dir is taken
// relative to the folder of the config file (not the agent's working
// directory), so the same file means the same place however it is started.
func (d *decoder) checkStateDir(filename string, s setting[string]) string {
	if s.Bad {
		return ""
	}
	if s.Val == "" {
		d.fail(s.Range, "Empty state_dir",
			"state_dir is empty; give a folder such as %q, or remove the attribute to use that default.", DefaultStateDir)
		return ""
	}
	if filepath.IsAbs(s.Val) {
		return filepath.Clean(s.Val)
	}
	base, err := baseDir(filename)
	if err != nil {
		d.fail(s.Range, "Relative state_dir",
			"state_dir %s is relative and the config file's folder could not be found (%v); give an absolute path.", s.Show(), err)
		return ""
	}
	return filepath.Join(base, s.Val)
}

func (d *decoder) checkEnum(s setting[string], name string, allowed []string) {
	d.Enum(s, name, allowed)
}

// checkAdmin accepts "" (admin API off) or host:port with a numeric port; port
// 0 asks the system for a free port. The host may be empty (all interfaces).
func (d *decoder) checkAdmin(s setting[string]) {
	if s.Bad || s.Val == "" {
		return
	}
	const advice = `use host:port such as "127.0.0.1:17539", a unix socket such as "unix:///run/dewy-agent/admin.sock", or "" to turn the admin API off`
	if path, ok := strings.CutPrefix(s.Val, "unix://"); ok {
		if !filepath.IsAbs(path) {
			d.fail(s.Range, "Invalid admin address", "admin %q names a unix socket by a relative path; give an absolute one, e.g. \"unix:///run/dewy-agent/admin.sock\".", s.Val)
		}
		return
	}
	_, port, err := net.SplitHostPort(s.Val)
	if err != nil {
		d.fail(s.Range, "Invalid admin address", "admin %s is not host:port; %s.", s.Show(), advice)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		if s.Sensitive {
			port = "its port"
		} else {
			port = strconv.Quote(port)
		}
		d.fail(s.Range, "Invalid admin address", "admin %s has port %s, which is not a number from 0 to 65535; %s.", s.Show(), port, advice)
	}
}

func (d *decoder) buildApp(in appInput) App {
	app := App{
		Name:         in.name,
		PreRelease:   in.preRelease.Val,
		Artifact:     in.artifact.Val,
		CalVer:       in.calver.Val,
		Slot:         in.slot.Val,
		KeepReleases: in.keepReleases.Val,
		Report:       in.report.Val,
	}
	d.checkName(in)
	traits := d.buildRegistry(in, &app)
	app.Interval = d.checkInterval(in.interval)
	if !in.keepReleases.Bad && in.keepReleases.Val < 1 {
		d.fail(in.keepReleases.Range, "Invalid keep_releases",
			"keep_releases is %d; it must be at least 1 (the current release is always kept).", in.keepReleases.Val)
	}
	d.checkArtifactName(in.artifact, "artifact")
	d.checkCalVerSlot(in)
	if in.runner != nil {
		app.Runner = in.runner.settings
	}
	d.checkRunnerRegistry(in, app, traits)
	app.Verify = in.verify
	d.checkVerify(in, app)
	app.Notify = d.checkNotify(in.notify)
	app.Rollout = in.rollout
	if h := in.hooks; h != nil {
		app.Hooks = Hooks{BeforeDeploy: h.beforeDeploy.Val, AfterDeploy: h.afterDeploy.Val}
		app.Hooks.Timeout = d.Duration(h.timeout, "timeout", time.Second)
		app.Hooks.Env = d.checkHookEnv(h.env)
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
	if s.Bad {
		return 0
	}
	iv, err := time.ParseDuration(s.Val)
	if err != nil {
		d.fail(s.Range, "Invalid interval", `interval: %s is not a duration; use e.g. "30s", "5m".`, s.Show())
		return 0
	}
	if iv < MinInterval {
		d.fail(s.Range, "Interval too short", `interval: %s is shorter than %q; use at least %q.`, s.Show(), MinInterval, MinInterval)
	}
	return iv
}

// checkArtifactName rejects artifact names that are paths: an artifact is a
// file name inside a release.
// It also rejects signature files (.minisig, .sig, .sigstore.json): they are
// checked beside the artifact, never deployed.
func (d *decoder) checkArtifactName(s setting[string], name string) {
	switch {
	case s.Bad:
	case strings.ContainsAny(s.Val, `/\`):
		d.fail(s.Range, "Invalid "+name, "%s %s is a path; give the file name of the release asset only.", name, s.Show())
	case version.IsSignature(s.Val):
		d.fail(s.Range, "Invalid "+name, "%s %s names a signature file; name the artifact it signs (the agent checks the signature beside it when the app has a verify block).", name, s.Show())
	}
}

// buildRegistry parses the registry URL, has its scheme decode the rest, and
// folds its pre-release and artifact options into app, reporting a conflict
// with the attributes. It returns the scheme's traits (zero when the scheme
// is unknown).
func (d *decoder) buildRegistry(in appInput, app *App) sources.Traits {
	if in.registry.Bad {
		return sources.Traits{}
	}
	if !in.registry.Set {
		d.fail(in.defRange, "Missing registry",
			`app %q has no registry; add registry = "ghr://owner/repo" (or "file:///path/to/releases").`, in.name)
		return sources.Traits{}
	}
	p, diags := parseRegistry(in.registry.Val, in.registry.Range)
	d.Diags = append(d.Diags, diags...)
	app.Registry = p.registry
	if p.traits.Decides {
		// The seed: a gRPC server chooses the version and the artifact itself.
		const detail = "%s cannot be used with a %s:// registry: its server chooses the version and the artifact; remove it."
		summary := "Not available with " + p.registry.Scheme
		if in.preRelease.Set {
			d.fail(in.preRelease.Range, summary, detail, "pre_release", p.registry.Scheme)
		}
		if in.slot.Set {
			d.fail(in.slot.Range, summary, detail, "slot", p.registry.Scheme)
		}
	}
	if p.traits.Images && in.slot.Set {
		d.fail(in.slot.Range, "Not available with "+p.registry.Scheme,
			"slot cannot be used with an %s:// registry: image tags cannot carry build metadata (\"+blue\"); remove it.", p.registry.Scheme)
	}

	urlOption(d, in.preRelease, p.preRelease, "pre_release", "pre-release", &app.PreRelease)
	urlOption(d, in.artifact, p.artifact, "artifact", "artifact", &app.Artifact)
	urlOption(d, in.calver, p.calver, "calver", "calver", &app.CalVer)
	return p.traits
}

// urlOption folds the registry URL's ?option= (fromURL, nil when absent) into
// dst, reporting a conflict with the attribute attr that sets it too.
func urlOption[T comparable](d *decoder, s setting[T], fromURL *T, attr, option string, dst *T) {
	if fromURL == nil {
		return
	}
	if s.Set && !s.Bad && s.Val != *fromURL {
		// %#v quotes a string attribute as HCL writes it and leaves a bool bare.
		d.fail(s.Range, "Conflicting "+attr,
			"%s = %#v here, but the registry URL has ?%s=%v; both are set, so keep only one of them.",
			attr, s.Val, option, *fromURL)
	}
	*dst = *fromURL
}

// quoteList renders ["a", "b"] as `"a", "b"`.
func quoteList(items []string) string { return hclsettings.QuoteList(items) }

// joinList renders ["a", "b"] as "a, b".
func joinList(items []string) string { return hclsettings.JoinList(items) }

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

// checkCalVerSlot checks the calver format and the slot name where they are
// written.
func (d *decoder) checkCalVerSlot(in appInput) {
	if in.calver.Set && !in.calver.Bad {
		if err := checkCalVer(in.calver.Val); err != nil {
			d.fail(in.calver.Range, "Invalid calver", "calver: %v.", err)
		}
	}
	if !in.slot.Set || in.slot.Bad {
		return
	}
	if !validSlot(in.slot.Val) {
		d.fail(in.slot.Range, "Invalid slot",
			`slot %q cannot be build metadata; use letters, digits and "-" (dot-separated), such as "blue" or "green".`, in.slot.Val)
	}
}

// checkCalVer reads a CalVer format; the error says what is wrong with it.
func checkCalVer(format string) error {
	_, err := version.ParseCalVer(format)
	return err
}

// validSlot reports whether s is valid SemVer build metadata: dot-separated
// non-empty identifiers of ASCII letters, digits and "-".
func validSlot(s string) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for _, c := range id {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
