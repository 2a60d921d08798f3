package runners

import (
	"context"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
)

// Kind is one runner kind: the name of its `runner "<name>" {}` block and the
// decoder of that block. Each runner package provides one (a value of its own
// type); config lists them in its table, so adding a runner is a new package
// and one line there.
type Kind interface {
	// Name is the block label, "server".
	Name() string
	// Decode evaluates, defaults and validates the block's settings. Every
	// problem is a diagnostic at its attribute's range. The Settings are
	// returned even when there are errors (for the app-level checks that
	// need the kind's Input), but must not be used to run anything then.
	Decode(b hclsettings.Block) (Settings, hcl.Diagnostics)
}

// NewKind is the Kind named name whose blocks decode reads: what a runner
// package returns for config's table. decode asks r for each attribute of
// the block (hclsettings.Get) and reports its problems through r; the kind
// rejects whatever else the block holds once decode returns.
func NewKind(name string, decode func(r *hclsettings.Reader) Settings) Kind {
	return kind{name: name, decode: decode}
}

type kind struct {
	name   string
	decode func(*hclsettings.Reader) Settings
}

func (k kind) Name() string { return k.name }

func (k kind) Decode(b hclsettings.Block) (Settings, hcl.Diagnostics) {
	r := hclsettings.NewDecoder(b.Ctx).Read(b.Body, b.DefRange)
	s := k.decode(r)
	r.Close()
	return s, r.Diags
}

// Lower bounds of the duration attributes the runners that check health and
// watch for crashes share: a shorter health_timeout or crash_window cannot
// tell a slow start or a crash from a healthy release.
const (
	MinHealthTimeout = time.Second
	MinCrashWindow   = time.Second
)

// Settings are one app's decoded runner block: plain comparable data (the
// agent compares an app's old and new settings with reflect.DeepEqual to
// decide whether to restart it), which builds the runner.
type Settings interface {
	// Kind is the block label, "server".
	Kind() string
	// Input says what the runner needs from a release.
	Input() Input
	// New builds the runner. It does no I/O.
	New(opts Options) (Runner, error)
}

// Platformer is implemented by runners that know the platform their workload
// runs on (the container runner asks its engine: "linux/arm64"). The agent
// picks images for that platform; without it, for this host's.
type Platformer interface {
	Platform(ctx context.Context) (string, error)
}
