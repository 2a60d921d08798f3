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
package config

import (
	"reflect"
	"time"
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
}

// Agent is the `agent {}` block.
type Agent struct {
	StateDir  string // state_dir, always absolute (a relative one is resolved against the file's folder)
	LogLevel  string // log_level: debug | info | warn | error
	LogFormat string // log_format: text | json
	Admin     string // admin: host:port of the status API; "" turns it off
	// Notify are notifier URLs for every app's events.
	Notify []string
}

// App is one `app "name" {}` block.
type App struct {
	Name         string
	Registry     Registry
	PreRelease   bool          // pre_release, or ?pre-release=true
	Artifact     string        // artifact, or ?artifact=; "" picks by OS and architecture
	Interval     time.Duration // interval
	KeepReleases int           // keep_releases
	Report       bool          // report
	Runner       Runner
	// Hooks are the app's hooks {} block; zero when it has none.
	Hooks Hooks
	// Notify are notifier URLs for this app's events, besides the agent's.
	Notify []string
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
}

// DefaultHookTimeout bounds a hook that sets no timeout.
const DefaultHookTimeout = 5 * time.Minute

// Registry is a parsed registry URL. Query options that map to app attributes
// (pre-release, artifact) are folded into App and removed from Options.
type Registry struct {
	// URL is the registry as written, with any credentials removed.
	URL string
	// Scheme is "ghr" or "file" in this build ("s3", "gs", "img" and "grpc"
	// are known to the product and rejected with a clear diagnostic).
	Scheme string
	// Host is the URL's host part: the owner (ghr), region (s3), bucket (gs),
	// registry host (img), host:port (grpc); empty for file.
	Host string
	// Path is the rest without the leading slash: repo (ghr), bucket/prefix (s3),
	// prefix (gs), repository (img); for file, the absolute folder path.
	Path string
	// Options are the scheme-specific query options left after folding (for
	// example no-tls for grpc, endpoint for s3), already checked against the
	// scheme's allowed set. Nil when none are left.
	Options map[string]string
}

// Runner is the app's one `runner "<kind>" {}` block. Exactly one of the kind
// fields is set, matching Kind. This build knows one kind, "assets"; a new kind
// is a new field here, a struct for its settings and a case in the decoder.
type Runner struct {
	Kind      string // "assets", "server", "container"
	Assets    *AssetsRunner
	Server    *ServerRunner
	Container *ContainerRunner
}

// AssetsRunner is `runner "assets" {}`.
type AssetsRunner struct {
	// Link, when set, is an absolute path kept as a symlink pointing at the
	// current release. Empty means no link.
	Link string
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

// ServerRunner is `runner "server" {}`: a binary restarted with zero downtime.
type ServerRunner struct {
	// Command is the argv; a relative program path ("./myapp") resolves inside
	// the deployed release.
	Command []string
	// Dir is the working directory; "" is the release directory, and a relative
	// path resolves inside it.
	Dir string
	// Ports are held by the agent and handed to every generation.
	Ports []int
	// Env is added to the agent's environment for the app.
	Env map[string]string
	// HealthPath, when set, is checked over HTTP (2xx) before a new generation
	// takes over.
	HealthPath    string
	HealthTimeout time.Duration
	// StopSignal is a signal name such as "SIGTERM".
	StopSignal  string
	StopTimeout time.Duration
	// Restart is "always", "on-failure" or "never".
	Restart string
	// CrashWindow is how long a new generation must keep running after the old
	// one stopped for the deploy to stand; an exit within it rolls back.
	CrashWindow time.Duration
}

// Server runner defaults.
const (
	DefaultHealthTimeout = 30 * time.Second
	DefaultStopTimeout   = 30 * time.Second
	DefaultStopSignal    = "SIGTERM"
	DefaultRestart       = "always"
	DefaultCrashWindow   = 10 * time.Second
)

// StopSignals are the signal names stop_signal accepts.
var StopSignals = []string{"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"}

// ContainerRunner is `runner "container" {}`: containers updated by rolling
// deploys behind the agent's TCP proxy. Used with img:// registries.
type ContainerRunner struct {
	// Ports are "proxy" or "proxy:container" ("8080:80").
	Ports    []string
	Replicas int
	// HealthPath, when set, is checked over HTTP (2xx) on each new replica.
	HealthPath    string
	HealthTimeout time.Duration
	// DrainTime is how long an old replica may finish open connections.
	DrainTime time.Duration
	Env       map[string]string
	// Volumes are Docker binds, "/host:/container[:ro]" or "name:/container".
	Volumes []string
	// Command replaces the image's CMD.
	Command []string
	User    string
	Network string
	// Memory limits each container ("512m"); CPUs too (0.5); zero: no limit.
	Memory string
	CPUs   float64
	// CrashWindow: a new replica that exits within it rolls the deploy back.
	CrashWindow time.Duration
}

// Container runner defaults.
const (
	DefaultReplicas  = 1
	DefaultDrainTime = 30 * time.Second
)
