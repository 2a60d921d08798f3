package file

import (
	"testing"

	"github.com/dewy-agent/dewy-agent/sources/sourcestest"
)

func TestSchemeDecode(t *testing.T) {
	sourcestest.Decode(t, Scheme(), []sourcestest.DecodeCase{
		{URL: "file:///srv/my%20releases/./site/", Want: Config{Path: "/srv/my releases/site"}},
		{URL: "file://releases/site", WantErr: "Invalid file registry"},
		{URL: "file:releases/site", WantErr: "Relative file registry"},
		{URL: "file://", WantErr: "Invalid file registry"},
	})
}
