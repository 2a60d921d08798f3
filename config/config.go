// Package config is the config file's schema: parsing, defaults, validation and
// diagnostics. The file is HCL, HCL's JSON syntax or YAML, chosen by its name
// (see SyntaxOf); one schema and one decoder serve all three. Its words:
//
//   - File: one decoded config file: the agent block and the apps.
//   - App: one `app "name" {}` block, with its registry and exactly one runner.
//   - Registry: the parsed registry URL with its query options folded into the app.
//
// Every error is an hcl.Diagnostic that points at the source range, and every
// error in a file is reported at once. The decoded values are plain comparable
// data: "changed" is reflect.DeepEqual (App.Equal).
//
// Decoding runs in four steps: parseFile parses the text (YAML is rewritten as
// HCL's JSON syntax, keeping positions); gohcl checks the
// structure into private raw structs that keep each attribute's expression;
// the expressions are evaluated (env("NAME") is the only function, and there
// are no variables) into settings that know whether they were written;
// applyDefaults fills the rest, and validation turns them into a File.
//
// config owns the file, agent and app level. Each runner block and each
// registry URL belongs to the package of its kind or scheme, which decodes,
// defaults and validates it (see table.go); config keeps the result as
// runners.Settings and sources.Settings.
package config

import (
	"reflect"
	"time"

	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources"
)

// Defaults, applied in one place (applyDefaults) before validation.
// Interval and KeepReleases also have lower bounds (MinInterval, 1).
const (
	DefaultStateDir     = "/var/lib/dewy-agent"
	DefaultLogLevel     = "info"
	DefaultLogFormat    = "text"
	DefaultAdmin        = "127.0.0.1:17539"
	DefaultInterval     = 30 * time.Second
	DefaultKeepReleases = 7

	// MinInterval is the shortest poll interval an app may ask for.
	MinInterval = time.Second
)

// File is one decoded config file.
type File struct {
	// Path is the file the config was read from.
	Path  string
	Agent Agent
	// Apps in the order they appear in the file. Names are unique.
	Apps []App
	// Secrets are the non-empty values env() returned while the file was
	// decoded: what hook output is scrubbed of before it is logged.
	Secrets []string
	// Fleet is the `fleet {}` block (config/fleet.go); nil without one.
	// HostID is "" when the file gives none (see FleetOf).
	Fleet *fleet.Fleet
}

// Agent is the `agent {}` block.
type Agent struct {
	StateDir  string // state_dir, always absolute (a relative one is resolved against the file's folder)
	LogLevel  string // log_level: debug | info | warn | error
	LogFormat string // log_format: text | json
	Admin     string // admin: host:port of the status API; "" turns it off
	// AdminToken is admin_token: when set, every admin API request but GET
	// /healthz must carry "Authorization: Bearer <token>". Required when
	// Admin binds beyond loopback.
	AdminToken string
	// Notify are notifier URLs for every app's events.
	Notify []string
	// MinFreeSpace is min_free_space: what the state directory's file
	// system keeps free while releases are prepared. Zero: the default.
	MinFreeSpace FreeSpace
	// KeepAppsRunningOnStop (keep_apps_running_on_stop): a planned stop of the
	// agent leaves server apps running for the next agent to adopt, which makes
	// an agent upgrade a zero-downtime operation. Default false: a stop stops them.
	KeepAppsRunningOnStop bool
	// MaxParallelDeploys (max_parallel_deploys) bounds the deploys in flight
	// for the whole agent; 0 means the agent's default (from the CPU count).
	MaxParallelDeploys int
}

// App is one `app "name" {}` block.
type App struct {
	Name         string
	Registry     Registry
	PreRelease   bool          // pre_release, or ?pre-release=true
	Artifact     string        // artifact, or ?artifact=; "" picks by OS and architecture
	CalVer       string        // calver, or ?calver=: the CalVer format of tags; "" means SemVer
	Slot         string        // slot: only versions whose build metadata is this ("blue")
	Interval     time.Duration // interval
	KeepReleases int           // keep_releases
	Report       bool          // report
	// Runner is the app's one runner "<kind>" {} block, decoded by the
	// kind's package (assets.Config, server.Config, container.Config).
	Runner runners.Settings
	// Hooks are the app's hooks {} block; zero when it has none.
	Hooks Hooks
	// Notify are notifier URLs for this app's events, besides the agent's.
	Notify []string
	// Rollout is the app's `rollout {}` block with fleet's defaults; nil
	// without one (the app still shares the fleet's poll and bad versions).
	Rollout *fleet.Rollout
	// Verify is the app's `verify {}` block, decoded by package signing
	// (the keys it names already read); nil without one: releases are
	// deployed unsigned, as before.
	Verify *signing.Settings
}

// Hooks is an app's `hooks {}` block.
type Hooks struct {
	// BeforeDeploy runs after the artifact is downloaded and verified, before
	// anything is switched; a failure aborts the deploy.
	BeforeDeploy string
	// AfterDeploy runs once the new version is live; a failure is reported and
	// the deploy stands.
	AfterDeploy string
	// Timeout bounds each hook.
	Timeout time.Duration
	// Env is the hooks block's env: variables set for each hook, besides
	// PATH, HOME, LANG, TZ, USER and DEWY_* (a hook sees nothing else of
	// the agent's environment).
	Env map[string]string
}

// DefaultHookTimeout bounds a hook that sets no timeout.
const DefaultHookTimeout = 5 * time.Minute

// Registry is a parsed registry URL. Query options that map to app attributes
// (pre-release, artifact) are folded into App; the rest belong to the scheme,
// whose package decoded the URL into Settings.
type Registry struct {
	// URL is the registry as written, with any credentials removed.
	URL string
	// Scheme is the URL's scheme, lower case: "ghr", "file", "s3", "gs",
	// "img" or "grpc" (see table.go).
	Scheme string
	// Settings are the scheme's settings (ghr.Config, s3.Config, ...), which
	// build the app's source.
	Settings sources.Settings
}

// App returns the app named name, and whether the file has one.
func (f *File) App(name string) (App, bool) {
	for _, a := range f.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// Equal reports whether a and b are the same app with the same settings. The
// agent's reload restarts an app only when its old and new App are not Equal.
func (a App) Equal(b App) bool {
	return reflect.DeepEqual(a, b)
}
