package version_test

import (
	"testing"

	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestPickArtifact(t *testing.T) {
	tests := []struct {
		name     string
		os, arch string
		artifact string
		assets   []string
		want     string // "" when nothing is picked
	}{
		{name: "linux amd64", os: "linux", arch: "amd64", assets: []string{"myapp_darwin_amd64.tar.gz", "myapp_linux_amd64.tar.gz"}, want: "myapp_linux_amd64.tar.gz"},
		{name: "goreleaser x86_64 in title case", os: "linux", arch: "amd64", assets: []string{"myapp_Darwin_x86_64.tar.gz", "myapp_Linux_x86_64.tar.gz"}, want: "myapp_Linux_x86_64.tar.gz"},
		{name: "x86-64 with a dash", os: "linux", arch: "amd64", assets: []string{"myapp-linux-x86-64.tar.xz"}, want: "myapp-linux-x86-64.tar.xz"},
		{name: "x64", os: "linux", arch: "amd64", assets: []string{"myapp-linux-arm64.tgz", "myapp-linux-x64.tgz"}, want: "myapp-linux-x64.tgz"},
		{name: "rust triple aarch64", os: "linux", arch: "arm64", assets: []string{"myapp-x86_64-unknown-linux-gnu.tar.gz", "myapp-aarch64-unknown-linux-gnu.tar.gz"}, want: "myapp-aarch64-unknown-linux-gnu.tar.gz"},
		{name: "arm64 never takes arm", os: "linux", arch: "arm64", assets: []string{"myapp_linux_arm.tar.gz", "myapp_linux_arm64.tar.gz"}, want: "myapp_linux_arm64.tar.gz"},
		{name: "arm never takes arm64", os: "linux", arch: "arm", assets: []string{"myapp_linux_arm64.tar.gz", "myapp_linux_aarch64.tar.gz", "myapp_linux_arm.tar.gz"}, want: "myapp_linux_arm.tar.gz"},
		{name: "arm takes armv7", os: "linux", arch: "arm", assets: []string{"myapp_linux_arm64.tar.gz", "myapp_linux_armv7.tar.gz"}, want: "myapp_linux_armv7.tar.gz"},
		{name: "arm takes armhf", os: "linux", arch: "arm", assets: []string{"myapp-linux-armhf.tbz2"}, want: "myapp-linux-armhf.tbz2"},
		{name: "arm alone has no match", os: "linux", arch: "arm", assets: []string{"myapp_linux_arm64.tar.gz"}},
		{name: "darwin as macos", os: "darwin", arch: "arm64", assets: []string{"myapp-linux-arm64.zip", "myapp-macos-arm64.zip"}, want: "myapp-macos-arm64.zip"},
		{name: "darwin as osx with x86_64", os: "darwin", arch: "amd64", assets: []string{"myapp-osx-x86_64.tar.gz"}, want: "myapp-osx-x86_64.tar.gz"},
		{name: "darwin as apple-darwin triple", os: "darwin", arch: "arm64", assets: []string{"myapp-aarch64-apple-darwin.tar.gz"}, want: "myapp-aarch64-apple-darwin.tar.gz"},
		{name: "darwin universal when no exact arch", os: "darwin", arch: "arm64", assets: []string{"myapp_linux_arm64.tar.gz", "myapp_darwin_all.tar.gz"}, want: "myapp_darwin_all.tar.gz"},
		{name: "darwin exact arch beats universal listed first", os: "darwin", arch: "arm64", assets: []string{"myapp-macos-universal.zip", "myapp-macos-arm64.zip"}, want: "myapp-macos-arm64.zip"},
		{name: "universal is for darwin only", os: "linux", arch: "amd64", assets: []string{"myapp_linux_all.tar.gz"}},
		{name: "windows exe", os: "windows", arch: "amd64", assets: []string{"myapp-linux-amd64", "myapp-windows-amd64.exe"}, want: "myapp-windows-amd64.exe"},
		{name: "windows win64", os: "windows", arch: "amd64", assets: []string{"myapp-win64.zip"}, want: "myapp-win64.zip"},
		{name: "windows win with x64", os: "windows", arch: "amd64", assets: []string{"myapp-win-arm64.zip", "myapp-win-x64.zip"}, want: "myapp-win-x64.zip"},
		{name: "win64 is not arm64", os: "windows", arch: "arm64", assets: []string{"myapp-win64.zip"}},
		{name: "386 takes i386, not x86_64", os: "linux", arch: "386", assets: []string{"myapp_linux_x86_64.tar.gz", "myapp_linux_i386.tar.gz"}, want: "myapp_linux_i386.tar.gz"},
		{name: "386 takes x86", os: "linux", arch: "386", assets: []string{"myapp-linux-x86-64.zip", "myapp-linux-x86.zip"}, want: "myapp-linux-x86.zip"},
		{name: "amd64 never takes x86", os: "linux", arch: "amd64", assets: []string{"myapp-linux-x86.zip", "myapp-linux-i686.zip"}},
		{name: "checksum file listed before its artifact", os: "linux", arch: "amd64", assets: []string{"myapp_linux_amd64.tar.gz.sha256", "myapp_linux_amd64.tar.gz"}, want: "myapp_linux_amd64.tar.gz"},
		{
			name: "signatures and metadata never picked", os: "linux", arch: "amd64",
			assets: []string{
				"myapp_linux_amd64.tar.gz.sig", "myapp_linux_amd64.tar.gz.asc", "myapp_linux_amd64.pem",
				"myapp_linux_amd64.crt", "myapp_linux_amd64.sbom.json", "myapp_linux_amd64.spdx",
				"myapp_linux_amd64.tar.gz.intoto.jsonl", "myapp_linux_amd64.pub", "myapp_linux_amd64.sha512",
				"myapp_linux_amd64.md5", "myapp_linux_amd64.txt", "myapp_linux_amd64.tar.gz.sha256sum",
			},
		},
		{
			name: "checksum lists never picked", os: "linux", arch: "amd64",
			assets: []string{"SHA256SUMS", "checksums.txt", "myapp_1.0.0_linux_amd64_checksums", "myapp_linux_amd64_SHA256SUMS"},
		},
		{
			name: "OS packages never picked", os: "linux", arch: "amd64",
			assets: []string{
				"myapp_linux_amd64.deb", "myapp_linux_amd64.rpm", "myapp_linux_amd64.apk",
				"myapp_linux_amd64.msi", "myapp_linux_amd64.dmg", "myapp_linux_amd64.pkg", "myapp_linux_amd64.gz",
			},
		},
		{name: "bare executable with a version", os: "linux", arch: "amd64", assets: []string{"myapp-1.2.3-linux-amd64.sig", "myapp-1.2.3-linux-amd64"}, want: "myapp-1.2.3-linux-amd64"},
		{name: "bare executable ending in a version", os: "linux", arch: "amd64", assets: []string{"myapp-linux-amd64-1.2.3"}, want: "myapp-linux-amd64-1.2.3"},
		{name: "bare executable with dots", os: "linux", arch: "amd64", assets: []string{"myapp.linux.amd64"}, want: "myapp.linux.amd64"},
		{name: "case differences", os: "linux", arch: "amd64", assets: []string{"MyApp-LINUX-AMD64.TAR.GZ"}, want: "MyApp-LINUX-AMD64.TAR.GZ"},
		{name: "policy in upper case", os: "Linux", arch: "AMD64", assets: []string{"myapp_linux_amd64.zip"}, want: "myapp_linux_amd64.zip"},
		{name: "amd64v3 is not amd64", os: "linux", arch: "amd64", assets: []string{"myapp_linux_amd64v3.tar.gz"}},
		{name: "amd64 chosen next to amd64v3", os: "linux", arch: "amd64", assets: []string{"myapp_linux_amd64v3.tar.gz", "myapp_linux_amd64.tar.gz"}, want: "myapp_linux_amd64.tar.gz"},
		{name: "registry order: first match wins", os: "linux", arch: "amd64", assets: []string{"myapp_linux_amd64.zip", "myapp_linux_amd64.tar.gz"}, want: "myapp_linux_amd64.zip"},
		{name: "registry order: bare executable before archive wins", os: "linux", arch: "amd64", assets: []string{"myapp_linux_amd64", "myapp_linux_amd64.tar.gz"}, want: "myapp_linux_amd64"},
		{name: "OS mismatch", os: "darwin", arch: "amd64", assets: []string{"myapp_linux_amd64.tar.gz"}},
		{name: "arch without OS", os: "linux", arch: "amd64", assets: []string{"myapp-amd64.tar.gz"}},
		{name: "OS without arch", os: "linux", arch: "amd64", assets: []string{"myapp-linux.tar.gz"}},
		{name: "OS name inside a longer word does not count", os: "darwin", arch: "amd64", assets: []string{"darwinia_linux_amd64.tar.gz", "myapp_linuxish_amd64.tar.gz"}},
		{name: "other GOOS by its own name", os: "freebsd", arch: "amd64", assets: []string{"myapp_linux_amd64.tar.gz", "myapp_freebsd_amd64.tar.gz"}, want: "myapp_freebsd_amd64.tar.gz"},
		{name: "every archive kind", os: "linux", arch: "arm64", assets: []string{"a_linux_amd64.tar", "a_linux_arm64.tar"}, want: "a_linux_arm64.tar"},
		{name: "exact artifact", os: "linux", arch: "amd64", artifact: "myapp-server.tar.gz", assets: []string{"myapp_linux_amd64.tar.gz", "myapp-server.tar.gz"}, want: "myapp-server.tar.gz"},
		{name: "exact artifact is case-sensitive", os: "linux", arch: "amd64", artifact: "myapp-server.tar.gz", assets: []string{"MyApp-Server.tar.gz", "myapp_linux_amd64.tar.gz"}},
		{name: "exact artifact may be any kind of file", os: "linux", arch: "amd64", artifact: "myapp.deb", assets: []string{"myapp.deb"}, want: "myapp.deb"},
		{name: "no assets", os: "linux", arch: "amd64"},
		{
			name: "signature files never picked", os: "linux", arch: "amd64",
			assets: []string{"myapp_linux_amd64.tar.gz.minisig", "myapp_linux_amd64.tar.gz.sigstore.json", "myapp_linux_amd64.sig", "myapp_linux_amd64.MINISIG"},
		},
		{name: "exact artifact never a minisign signature", os: "linux", arch: "amd64", artifact: "myapp.tar.gz.minisig", assets: []string{"myapp.tar.gz", "myapp.tar.gz.minisig"}},
		{name: "exact artifact never an SSH signature", os: "linux", arch: "amd64", artifact: "myapp.sig", assets: []string{"myapp.sig"}},
		{name: "exact artifact never a sigstore bundle", os: "linux", arch: "amd64", artifact: "myapp.sigstore.json", assets: []string{"myapp.sigstore.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assets := make([]version.Asset, len(tt.assets))
			for i, n := range tt.assets {
				assets[i] = version.Asset{Name: n, Ref: "ref/" + n, Size: int64(i)}
			}
			got, ok := version.PickArtifact(assets, version.Policy{OS: tt.os, Arch: tt.arch, Artifact: tt.artifact})
			if ok != (tt.want != "") {
				t.Fatalf("PickArtifact = %q, %v; want %q", got.Name, ok, tt.want)
			}
			if !ok {
				if got != (version.Asset{}) {
					t.Errorf("PickArtifact returned %+v with ok = false", got)
				}
				return
			}
			if got.Name != tt.want || got.Ref != "ref/"+tt.want {
				t.Errorf("PickArtifact = %+v, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatOf(t *testing.T) {
	tests := []struct {
		name string
		file string
		want version.Format
	}{
		{name: "tar.gz", file: "a_linux_amd64.tar.gz", want: version.FormatTarGz},
		{name: "tgz upper case", file: "A_LINUX_AMD64.TGZ", want: version.FormatTarGz},
		{name: "tar.bz2", file: "a.tar.bz2", want: version.FormatTarBz2},
		{name: "tbz2", file: "a.tbz2", want: version.FormatTarBz2},
		{name: "tbz", file: "a.tbz", want: version.FormatTarBz2},
		{name: "tar.xz", file: "a.tar.xz", want: version.FormatTarXz},
		{name: "txz", file: "a.txz", want: version.FormatTarXz},
		{name: "tar", file: "a.tar", want: version.FormatTar},
		{name: "zip", file: "a.zip", want: version.FormatZip},
		{name: "exe", file: "a.exe", want: version.FormatBinary},
		{name: "no dot", file: "myapp", want: version.FormatBinary},
		{name: "dash after the last dot", file: "myapp-1.2.3-linux-amd64", want: version.FormatBinary},
		{name: "underscore after the last dot", file: "myapp_1.2.3_linux_x86_64", want: version.FormatBinary},
		{name: "number after the last dot", file: "myapp-linux-amd64-1.2.3", want: version.FormatBinary},
		{name: "arch after the last dot", file: "myapp.linux.arm64", want: version.FormatBinary},
		{name: "OS after the last dot", file: "myapp.amd64.linux", want: version.FormatBinary},
		{name: "sha256 of an archive", file: "a.tar.gz.sha256", want: version.FormatNone},
		{name: "signature of an archive", file: "a.zip.sig", want: version.FormatNone},
		{name: "bare gzip", file: "a.gz", want: version.FormatNone},
		{name: "json", file: "a.json", want: version.FormatNone},
		{name: "unknown extension", file: "a.AppImage", want: version.FormatNone},
		{name: "trailing dot", file: "a.", want: version.FormatNone},
		{name: "SHA256SUMS", file: "SHA256SUMS", want: version.FormatNone},
		{name: "checksum list with a version", file: "myapp_1.2.3_SHA256SUMS", want: version.FormatNone},
		{name: "sbom without extension", file: "myapp-1.2.3-sbom", want: version.FormatNone},
		{name: "minisign signature", file: "myapp-linux-amd64.minisig", want: version.FormatNone},
		{name: "sigstore bundle", file: "myapp-linux-amd64.sigstore.json", want: version.FormatNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := version.FormatOf(tt.file); got != tt.want {
				t.Errorf("FormatOf(%q) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

// TestSignatureSuffixes keeps version's list of signature names equal to the
// suffixes package signing fetches.
func TestSignatureSuffixes(t *testing.T) {
	for _, s := range []string{signing.MinisignSuffix, signing.SSHSuffix, signing.SigstoreSuffix} {
		if !version.IsSignature("myapp_linux_amd64.tar.gz" + s) {
			t.Errorf("IsSignature(%q) = false; signing fetches that suffix", "myapp_linux_amd64.tar.gz"+s)
		}
	}
	if version.IsSignature("myapp_linux_amd64.tar.gz") || version.IsSignature("myapp.signature") {
		t.Error("IsSignature is true for a name that is no signature")
	}
}
