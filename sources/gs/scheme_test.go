package gs

import (
	"testing"

	"github.com/dewy-agent/dewy-agent/sources/sourcestest"
)

func TestSchemeDecode(t *testing.T) {
	sourcestest.Decode(t, Scheme(), []sourcestest.DecodeCase{
		{URL: "gs://my-releases/team/app/", Want: Config{Bucket: "my-releases", Prefix: "team/app"}},
		{URL: "gs://my-releases", Want: Config{Bucket: "my-releases"}},
		{URL: "gs:///app", WantErr: "fix the URL"},
		{URL: "gs://b/a//c", WantErr: `empty folder ("//")`},
		{URL: "gs://b/a/../c", WantErr: `has an empty, "." or ".." element`},
	})
}
