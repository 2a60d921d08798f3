package version_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestPickChecksum(t *testing.T) {
	const art = "myapp_linux_amd64.tar.gz"
	tests := []struct {
		name     string
		artifact string
		assets   []string
		want     string // "" for nil
	}{
		{name: "artifact.sha256 beats SHA256SUMS listed first", artifact: art, assets: []string{"SHA256SUMS", art, art + ".sha256"}, want: art + ".sha256"},
		{name: "artifact.sha256 case-insensitive", artifact: art, assets: []string{"checksums.txt", "MYAPP_LINUX_AMD64.TAR.GZ.SHA256"}, want: "MYAPP_LINUX_AMD64.TAR.GZ.SHA256"},
		{name: "artifact.sha256sum beats SHA256SUMS", artifact: art, assets: []string{"SHA256SUMS", art + ".sha256sum"}, want: art + ".sha256sum"},
		{name: "SHA256SUMS beats checksums.txt", artifact: art, assets: []string{"checksums.txt", "SHA256SUMS"}, want: "SHA256SUMS"},
		{name: "sha256sums.txt", artifact: art, assets: []string{"myapp_1.0.0_checksums.txt", "sha256sums.txt"}, want: "sha256sums.txt"},
		{name: "checksums.txt beats goreleaser's name", artifact: art, assets: []string{"myapp_1.0.0_checksums.txt", "Checksums.txt"}, want: "Checksums.txt"},
		{name: "goreleaser's name", artifact: art, assets: []string{art, "myapp_1.0.0_checksums.txt"}, want: "myapp_1.0.0_checksums.txt"},
		{name: "dashed checksums name", artifact: art, assets: []string{"myapp-1.0.0-checksums.txt"}, want: "myapp-1.0.0-checksums.txt"},
		{name: "hashicorp's name, not its signature", artifact: art, assets: []string{"tool_1.5.0_SHA256SUMS.sig", "tool_1.5.0_SHA256SUMS"}, want: "tool_1.5.0_SHA256SUMS"},
		{name: "first of one kind wins", artifact: art, assets: []string{"a_checksums.txt", "b_checksums.txt"}, want: "a_checksums.txt"},
		{name: "another artifact's sha256 is not ours", artifact: art, assets: []string{"myapp_darwin_arm64.tar.gz.sha256"}},
		{name: "SHA512SUMS is not picked", artifact: art, assets: []string{"SHA512SUMS", art + ".sha512", art + ".md5"}},
		{name: "signature of SHA256SUMS is not picked", artifact: art, assets: []string{"SHA256SUMS.sig", "SHA256SUMS.asc"}},
		{name: "none", artifact: art, assets: []string{art, "README.md"}},
		{name: "no artifact name", artifact: "", assets: []string{"SHA256SUMS", ".sha256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assets := make([]version.Asset, len(tt.assets))
			for i, n := range tt.assets {
				assets[i] = version.Asset{Name: n, Ref: "ref/" + n}
			}
			got := version.PickChecksum(assets, tt.artifact)
			if tt.want == "" {
				if got != nil {
					t.Fatalf("PickChecksum = %q, want nil", got.Name)
				}
				return
			}
			if got == nil {
				t.Fatalf("PickChecksum = nil, want %q", tt.want)
			}
			if got.Name != tt.want || got.Ref != "ref/"+tt.want {
				t.Errorf("PickChecksum = %+v, want %q", got, tt.want)
			}
		})
	}
}

func TestParseChecksums(t *testing.T) {
	const (
		art   = "myapp_linux_amd64.tar.gz"
		sum   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		other = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	)
	upper := strings.ToUpper(sum)
	tests := []struct {
		name     string
		artifact string // art when empty
		file     string
		reader   io.Reader // used instead of file when set
		want     string
		wantErr  error  // a sentinel the error must wrap
		errText  string // a substring the error must hold
	}{
		{name: "sha256sum text mode", file: other + "  myapp_darwin_arm64.tar.gz\n" + sum + "  " + art + "\n", want: sum},
		{name: "sha256sum binary mode", file: sum + " *" + art + "\n", want: sum},
		{name: "one space", file: sum + " " + art, want: sum},
		{name: "tab", file: sum + "\t" + art, want: sum},
		{name: "BSD style", file: "SHA256 (myapp_darwin_arm64.tar.gz) = " + other + "\nSHA256 (" + art + ") = " + sum + "\n", want: sum},
		{name: "BSD style skips other algorithms", file: "MD5 (" + art + ") = d41d8cd98f00b204e9800998ecf8427e\nSHA256 (" + art + ") = " + sum, want: sum},
		{name: "openssl style", file: "SHA2-256(" + art + ")= " + sum, want: sum},
		{name: "BSD style name with parentheses", artifact: "app (1).zip", file: "SHA256 (app (1).zip) = " + sum, want: sum},
		{name: "lone digest", file: sum + "\n", want: sum},
		{name: "lone digest without newline", file: sum, want: sum},
		{name: "digest with its name", file: sum + "  " + art, want: sum},
		{name: "upper-case hex comes back lower-case", file: upper + "  " + art, want: sum},
		{name: "CRLF line endings", file: other + "  a.zip\r\n" + sum + "  " + art + "\r\n", want: sum},
		{name: "byte order mark", file: "\ufeff" + sum + "  " + art, want: sum},
		{name: "comments and blank lines", file: "# made by CI\n\n" + sum + "  " + art + "\n\n", want: sum},
		{name: "leading ./", file: sum + "  ./" + art, want: sum},
		{name: "path prefix matched by last element", file: sum + "  dist/" + art, want: sum},
		{name: "exact name beats path match", file: other + "  dist/" + art + "\n" + sum + "  " + art, want: sum},
		{name: "exact name beats lone digest", file: other + "\n" + sum + "  " + art, want: sum},
		{name: "name with spaces", artifact: "my app.zip", file: sum + "  my app.zip", want: sum},
		{name: "escaped name", artifact: `dir\app.zip`, file: `\` + sum + `  dir\\app.zip`, want: sum},
		{name: "same digest listed twice", file: sum + "  " + art + "\n" + upper + " *" + art, want: sum},
		{name: "name is case-sensitive", file: sum + "  MYAPP_LINUX_AMD64.TAR.GZ", wantErr: version.ErrNoChecksum},
		{name: "artifact not listed", file: other + "  myapp_darwin_arm64.tar.gz\n", wantErr: version.ErrNoChecksum, errText: art},
		{name: "digest with another name", file: sum + "  " + "myapp.zip", wantErr: version.ErrNoChecksum},
		{name: "empty file", file: "", wantErr: version.ErrNoChecksum},
		{name: "only comments", file: "# nothing\n", wantErr: version.ErrNoChecksum},
		{name: "conflicting digests", file: sum + "  " + art + "\n" + other + "  " + art, errText: "different SHA-256 digests"},
		{name: "conflicting lone digests", file: sum + "\n" + other, errText: "different SHA-256 digests"},
		{name: "short digest", file: sum[:63] + "  " + art, errText: "line 1"},
		{name: "non-hex digest", file: "g" + sum[1:] + "  " + art, errText: "not a SHA-256 digest"},
		{name: "malformed line for another file", file: sum + "  " + art + "\nxyz  other.zip", errText: "line 2"},
		{name: "SHA-512 digest", file: sum + other + "  " + art, errText: "not a SHA-256 digest"},
		{name: "BSD style with a bad digest", file: "SHA256 (" + art + ") = 1234", errText: "not a SHA-256 digest"},
		{name: "BSD style without =", file: "SHA256 (" + art + ") " + sum, errText: "malformed line"},
		{name: "HTML error page", file: "<html><body>Not Found</body></html>", errText: "line 1"},
		{name: "larger than the limit", file: strings.Repeat("#\n", version.MaxChecksumFile/2) + sum + "  " + art, errText: "larger than"},
		{name: "read error", reader: iotest.ErrReader(errors.New("connection reset")), errText: "connection reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			artifact := tt.artifact
			if artifact == "" {
				artifact = art
			}
			r := tt.reader
			if r == nil {
				r = strings.NewReader(tt.file)
			}
			got, err := version.ParseChecksums(r, artifact)
			wantFail := tt.wantErr != nil || tt.errText != ""
			if !wantFail {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got != tt.want {
					t.Errorf("ParseChecksums = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseChecksums = %q, want an error", got)
			}
			if got != "" {
				t.Errorf("ParseChecksums returned %q with an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want one wrapping %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && errors.Is(err, version.ErrNoChecksum) {
				t.Errorf("err = %v wraps ErrNoChecksum; a malformed file is not a missing entry", err)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
		})
	}
}

// TestParseChecksumsReadsBounded checks that a huge stream is not read to its end.
func TestParseChecksumsReadsBounded(t *testing.T) {
	r := &countingReader{}
	if _, err := version.ParseChecksums(r, "a.zip"); err == nil {
		t.Fatal("want an error for an endless checksum file")
	}
	if r.n > version.MaxChecksumFile+64*1024 {
		t.Errorf("read %d bytes, want about %d at most", r.n, version.MaxChecksumFile)
	}
}

// countingReader is an endless stream of comment lines that counts what was read.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		if i%2 == 0 {
			p[i] = '#'
		} else {
			p[i] = '\n'
		}
	}
	c.n += len(p)
	return len(p), nil
}
