package version

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse: any tag parses or is refused without a panic, and a parsed
// version equals itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"v1.2.3", "1.2.3-rc.1+build.5", "v01.2.3", "latest", "v1.2", "v1.2.3-beta.01", "", "v9999999999999999999.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		v, ok := Parse(tag)
		if ok && Compare(v, v) != 0 {
			t.Fatalf("%q does not equal itself", tag)
		}
	})
}

// FuzzSelect: any list of tags selects without a panic, and what it picks
// is one of them and never below another allowed version.
func FuzzSelect(f *testing.F) {
	f.Add("v1.0.0\nv1.1.0\nv1.1.0-rc.1\nlatest", false)
	f.Add("1.0.0\nv1.0.0\nv2.0.0-alpha", true)
	f.Fuzz(func(t *testing.T, tags string, pre bool) {
		var rels []Release
		for _, tag := range strings.Split(tags, "\n") {
			rels = append(rels, Release{Tag: tag, Assets: []Asset{{Name: "app_linux_amd64.tar.gz", Size: 10}}})
		}
		sel, err := Select(rels, Policy{PreRelease: pre, Artifact: "app_linux_amd64.tar.gz"}, time.Now())
		if err != nil || sel.Candidate == nil {
			return
		}
		got := sel.Candidate.Version
		for _, r := range rels {
			if v, ok := Parse(r.Tag); ok && (pre || v.Prerelease() == "") && CompareVersions(FromSemver(v), got) > 0 {
				t.Fatalf("picked %s over %s", got.Original(), r.Tag)
			}
		}
	})
}

// FuzzParseChecksums: any checksum file is read or refused without a panic,
// and a digest it returns is 64 lower-case hex digits.
func FuzzParseChecksums(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	f.Add(sum+"  app.tar.gz\n", "app.tar.gz")
	f.Add("SHA256 (app.tar.gz) = "+sum+"\n", "app.tar.gz")
	f.Add(sum+" *dist/app.tar.gz\n# comment\n", "app.tar.gz")
	f.Add("<html>not found</html>", "app.tar.gz")
	f.Fuzz(func(t *testing.T, data, artifact string) {
		got, err := ParseChecksums(strings.NewReader(data), artifact)
		if err == nil && (len(got) != 64 || strings.Trim(got, "0123456789abcdef") != "") {
			t.Fatalf("digest %q is not 64 lower-case hex digits", got)
		}
	})
}
