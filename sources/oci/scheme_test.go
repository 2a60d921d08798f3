package oci_test

import (
	"testing"

	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/sourcestest"
)

func TestSchemeDecode(t *testing.T) {
	sourcestest.Decode(t, oci.Scheme(), []sourcestest.DecodeCase{
		{URL: "img://ghcr.io/acme/app", Want: oci.Config{Repository: "ghcr.io/acme/app"}},
		{URL: "img://nginx", Want: oci.Config{Repository: "nginx"}},
		{URL: "img://127.0.0.1:5000/team/app", Want: oci.Config{Repository: "127.0.0.1:5000/team/app"}},
		{URL: "img://ghcr.io/acme/app:v1", WantErr: "without a tag or digest"},
		{URL: "img://ghcr.io/acme//app", WantErr: `empty part ("//")`},
		{URL: "img://ghcr.io/Acme/App", WantErr: "Invalid img registry"},
	})
	if tr := oci.Scheme().Traits(); !tr.Images || !tr.NoReports {
		t.Errorf("traits = %+v, want images without reports", tr)
	}
}
