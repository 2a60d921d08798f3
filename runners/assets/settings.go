package assets

import (
	"path/filepath"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	"github.com/dewy-agent/dewy-agent/runners"
)

// KindName is the block label of this runner: runner "assets" {}.
const KindName = "assets"

// Kind is the assets runner kind, for config's table.
func Kind() runners.Kind { return runners.NewKind(KindName, decode) }

// decode reads runner "assets" {}: link, an absolute path, is optional and has
// no default.
func decode(r *hclsettings.Reader) runners.Settings {
	link := hclsettings.Get[string](r, "link", "a string")
	c := Config{Link: link.Val}
	if !link.Bad && link.Val != "" {
		if filepath.IsAbs(link.Val) {
			c.Link = filepath.Clean(link.Val)
		} else {
			r.Fail(link.Range, "Relative link", "link %s is relative; give an absolute path such as \"/var/www/html\".", link.Show())
		}
	}
	return c
}

// Kind is "assets".
func (Config) Kind() string { return KindName }

// Input: the assets runner deploys files.
func (Config) Input() runners.Input { return runners.Files }

// New builds the runner.
func (c Config) New(opts runners.Options) (runners.Runner, error) { return New(c, opts), nil }

var _ runners.Settings = Config{}
