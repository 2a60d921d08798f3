package version

import (
	"iter"
	"runtime"
	"strings"

	"github.com/dewy-agent/dewy-agent/internal/archive"
)

// Format is how an artifact file is packed, judged by its name alone.
type Format string

// The formats an artifact can have. Auto-selection only picks names with a
// format other than FormatNone.
const (
	// FormatNone is not an artifact: a checksum list, a signature, an OS package
	// (.deb, .rpm, .msi, ...) or any other extension not listed below.
	FormatNone Format = ""
	// FormatTarGz is .tar.gz or .tgz.
	FormatTarGz = Format(archive.TarGz)
	// FormatTarBz2 is .tar.bz2, .tbz2 or .tbz.
	FormatTarBz2 = Format(archive.TarBz2)
	// FormatTarXz is .tar.xz or .txz.
	FormatTarXz = Format(archive.TarXz)
	// FormatTar is .tar.
	FormatTar = Format(archive.Tar)
	// FormatZip is .zip.
	FormatZip = Format(archive.Zip)
	// FormatBinary is a bare executable: .exe, or a name without an extension.
	FormatBinary Format = "binary"
)

// FormatOf tells how the file name is packed, case-insensitively.
//
// A name has no extension when it has no dot, or when its last dot-separated
// part is not a plain word: it holds a separator ("myapp-1.2.3-linux-amd64"), is
// a number ("myapp-linux-amd64-1.2.3") or is an OS or architecture
// ("myapp.linux.amd64"). Such a name is a bare executable unless it is a
// checksum list by its words ("SHA256SUMS", "myapp_1.0_checksums"). Any other
// extension (.sha256, .sig, .asc, .pem, .json, .txt, .deb, .gz, ...) is
// FormatNone.
func FormatOf(name string) Format {
	return formatOfLower(strings.ToLower(name))
}

// signatureSuffixes are the names of the signature files the agent checks
// beside an artifact (package signing's MinisignSuffix, SSHSuffix and
// SigstoreSuffix; a test keeps them equal). version does not import signing,
// which every source would then build.
var signatureSuffixes = []string{".minisig", ".sig", ".sigstore.json"}

// IsSignature reports whether name, case-insensitively, is a signature file
// (ends in .minisig, .sig or .sigstore.json): it is never an artifact, neither
// picked nor accepted as an exact artifact name.
func IsSignature(name string) bool {
	lower := strings.ToLower(name)
	for _, s := range signatureSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// formatOfLower is FormatOf for a name already lower-cased.
func formatOfLower(lower string) Format {
	if IsSignature(lower) {
		return FormatNone
	}
	if f := archive.Of(lower); f != archive.None {
		return Format(f)
	}
	if strings.HasSuffix(lower, ".exe") {
		return FormatBinary
	}
	if dot := strings.LastIndexByte(lower, '.'); dot >= 0 && isExtension(lower[dot+1:]) {
		return FormatNone
	}
	for t := range words(lower) {
		if isChecksumWord(t) {
			return FormatNone
		}
	}
	return FormatBinary
}

// isExtension reports whether the last dot-separated part of a lower-cased
// name is a file extension rather than the end of a bare executable's name.
func isExtension(seg string) bool {
	if seg == "" {
		return true // "name." is nothing we know how to run
	}
	letter := false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= 'a' && c <= 'z':
			letter = true
		case c >= '0' && c <= '9':
		default:
			return false // "3-linux-amd64": a separator, so not an extension
		}
	}
	return letter && tokenOS(seg) == "" && tokenArch(seg) == ""
}

// isChecksumWord reports words that make an extension-less name a checksum list.
func isChecksumWord(t string) bool {
	switch t {
	case "sha256sums", "sha512sums", "sha1sums", "md5sums", "checksums", "checksum",
		"sha256sum", "sha512sum", "sha256", "sha512", "sha1", "md5", "sbom":
		return true
	}
	return false
}

// PickArtifact chooses the asset to download from one release.
//
// When p.Artifact is set, only the asset with exactly that name (case-sensitive)
// is chosen, whatever its format, unless it is a signature file (IsSignature):
// those are never chosen.
//
// Otherwise the asset's lower-cased name is split into words at every character
// that is not a letter or digit ("x86_64" and "x86-64" stay one word), and an
// asset matches when FormatOf is not FormatNone and one word names the host's
// OS and one names its architecture (p.OS and p.Arch, or runtime.GOOS and
// runtime.GOARCH when empty). Words are compared whole, so "arm" never matches
// "arm64", "x86" never matches "x86_64" and "amd64v3" does not match "amd64".
// The aliases:
//
//	darwin   darwin, macos, macosx, osx, mac
//	windows  windows, win, win32, win64 (win64 also means amd64)
//	amd64    amd64, x86_64, x86-64, x64
//	arm64    arm64, aarch64
//	386      386, i386, i686, x86, ia32
//	arm      arm, armv6, armv6l, armv7, armv7l, armhf, armel
//	ppc64le  ppc64le, powerpc64le
//	loong64  loong64, loongarch64
//
// Any other OS or architecture matches its GOOS or GOARCH name only.
//
// The first matching asset in the registry's order wins, as the seed says;
// archives are not preferred over bare executables. On darwin only, when no
// asset names the architecture, the first one named "universal" or "all"
// (goreleaser's universal binaries) is chosen.
func PickArtifact(assets []Asset, p Policy) (Asset, bool) {
	if p.Artifact != "" {
		if IsSignature(p.Artifact) {
			return Asset{}, false
		}
		for _, a := range assets {
			if a.Name == p.Artifact {
				return a, true
			}
		}
		return Asset{}, false
	}
	goos, goarch := host(p)
	universal := -1
	for i, a := range assets {
		lower := strings.ToLower(a.Name)
		if formatOfLower(lower) == FormatNone {
			continue
		}
		var osOK, archOK, uni bool
		for t := range words(lower) {
			osOK = osOK || t == goos || tokenOS(t) == goos
			archOK = archOK || t == goarch || tokenArch(t) == goarch
			uni = uni || t == "universal" || t == "all"
		}
		if osOK && archOK {
			return a, true
		}
		if osOK && uni && goos == "darwin" && universal < 0 {
			universal = i
		}
	}
	if universal >= 0 {
		return assets[universal], true
	}
	return Asset{}, false
}

// host is the OS and architecture the policy asks for, lower-cased, with the
// running program's as the default.
func host(p Policy) (goos, goarch string) {
	goos, goarch = strings.ToLower(p.OS), strings.ToLower(p.Arch)
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	return goos, goarch
}

// words yields the words of a lower-cased name: runs of ASCII letters and
// digits. "x86_64" and "x86-64" are yielded as the one word "x86_64".
func words(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := 0; i < len(s); {
			if !isAlnum(s[i]) {
				i++
				continue
			}
			j := i
			for j < len(s) && isAlnum(s[j]) {
				j++
			}
			w := s[i:j]
			if w == "x86" && j+3 <= len(s) && (s[j] == '_' || s[j] == '-') && s[j+1:j+3] == "64" &&
				(j+3 == len(s) || !isAlnum(s[j+3])) {
				w, j = "x86_64", j+3
			}
			if !yield(w) {
				return
			}
			i = j
		}
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
}

// tokenOS is the GOOS a file-name word names, or "".
func tokenOS(t string) string {
	switch t {
	case "darwin", "macos", "macosx", "osx", "mac":
		return "darwin"
	case "windows", "win", "win32", "win64":
		return "windows"
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly", "solaris", "illumos",
		"aix", "plan9", "android", "ios", "hurd", "js", "wasip1", "zos":
		return t
	}
	return ""
}

// tokenArch is the GOARCH a file-name word names, or "".
func tokenArch(t string) string {
	switch t {
	case "amd64", "x86_64", "x64", "win64":
		return "amd64"
	case "arm64", "aarch64":
		return "arm64"
	case "386", "i386", "i686", "x86", "ia32":
		return "386"
	case "arm", "armv6", "armv6l", "armv7", "armv7l", "armhf", "armel":
		return "arm"
	case "ppc64le", "powerpc64le":
		return "ppc64le"
	case "loong64", "loongarch64":
		return "loong64"
	case "ppc64", "mips", "mipsle", "mips64", "mips64le", "riscv64", "s390x", "wasm", "sparc64":
		return t
	}
	return ""
}
