package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// addFixtures seeds f with every config fixture of testdata whose name ends
// in one of exts.
func addFixtures(f *testing.F, exts ...string) {
	ents, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		for _, ext := range exts {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ext) {
				b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
}

// fuzzParse checks what every decoder owes any input: no panic, and either
// a File or error diagnostics, each error with a range in the file.
func fuzzParse(t *testing.T, name string, src []byte) {
	file, diags := Parse(name, src)
	if diags.HasErrors() {
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %+v", d)
			}
		}
		return
	}
	if file == nil {
		t.Fatal("no File and no error")
	}
	for _, a := range file.Apps {
		if a.Runner == nil || a.Registry.Settings == nil {
			t.Fatalf("app %q accepted without a runner or registry", a.Name)
		}
	}
}

func FuzzParseHCL(f *testing.F) {
	addFixtures(f, ".hcl")
	f.Fuzz(func(t *testing.T, src []byte) { fuzzParse(t, "/etc/dewy/dewy.hcl", src) })
}

func FuzzParseJSON(f *testing.F) {
	addFixtures(f, ".json")
	f.Fuzz(func(t *testing.T, src []byte) { fuzzParse(t, "/etc/dewy/dewy.hcl.json", src) })
}

func FuzzParseYAML(f *testing.F) {
	addFixtures(f, ".yaml", ".yml")
	f.Fuzz(func(t *testing.T, src []byte) { fuzzParse(t, "/etc/dewy/dewy.yaml", src) })
}

// FuzzRegistryURL: any string as a registry URL is accepted or refused with
// diagnostics, never with a panic, and a diagnostic never repeats a
// password the URL carried.
func FuzzRegistryURL(f *testing.F) {
	for _, s := range []string{
		"ghr://owner/repo", "s3://eu-west-1/bucket/prefix?endpoint=http://127.0.0.1:9000",
		"gs://bucket/prefix", "file:///srv/releases/app", "grpc://127.0.0.1:9000?no-tls=true",
		"img://ghcr.io/owner/app", "ghr://user:hunter2secret@owner/repo", "s3://a/b?pre-release=true&artifact=x.tar.gz",
		"file://relative/path", "%zz", "ghr://owner/repo#frag", "unknown://x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, diags := parseRegistry(raw, hcl.Range{Filename: "dewy.hcl"})
		const secret = "hunter2secret"
		if strings.Contains(raw, secret) {
			for _, d := range diags {
				if strings.Contains(d.Detail, secret) || strings.Contains(d.Summary, secret) {
					t.Fatalf("diagnostic repeats the password: %s: %s", d.Summary, d.Detail)
				}
			}
		}
	})
}

func FuzzParseFreeSpace(f *testing.F) {
	for _, s := range []string{"1GiB", "500MB", "5%", "0.5%", "100%", "-1", "1e400", "NaN%", "12 kb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseFreeSpace(s)
		if err == nil && (v.Bytes <= 0 && (v.Percent <= 0 || v.Percent >= 100)) {
			t.Fatalf("ParseFreeSpace(%q) = %+v, accepted without a reserve", s, v)
		}
	})
}
