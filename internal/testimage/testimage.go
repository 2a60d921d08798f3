// Package testimage builds small container images for tests and benchmarks, and
// serves them from an in-process registry. Its words:
//
//   - App: the module's testdata/imageapp, an HTTP server answering /version
//     and /health (see its doc), compiled as a static binary (CGO_ENABLED=0).
//   - Image: that binary as /app in one layer on an empty base, with the
//     entrypoint, exposed port, environment and labels set in the config. Images
//     of different versions share the layer and differ only in their config.
//   - Registry: go-containerregistry's registry served by httptest on 127.0.0.1,
//     which the local Docker engine pulls from without TLS (127.0.0.0/8 is an
//     insecure registry by default).
//
// The binary is built once per source, toolchain and platform and kept in the
// system's temporary folder, so that several test packages and runs share it.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultPort is the port the app listens on and the image exposes.
const DefaultPort = 8080

// Options shape an image. The zero value is an image for the host's platform that
// exposes DefaultPort.
type Options struct {
	// Platform is "os/arch[/variant]"; "" is linux and the host's GOARCH. The
	// binary is compiled for it.
	Platform string
	// Port is the port the app listens on (PORT) and the image exposes; 0 is
	// DefaultPort.
	Port int
	// ExtraPorts are exposed too, without anything listening (to test images that
	// expose several ports).
	ExtraPorts []int
	// NoExpose leaves ExposedPorts empty.
	NoExpose bool
	// Env is added to the image's environment ("FAIL_HEALTH=1", "EXIT_AFTER=1s").
	Env []string
	// Labels are the image's labels.
	Labels map[string]string
}

// Build is Image for tests: it fails the test on error.
func Build(t testing.TB, version string, opts Options) v1.Image {
	t.Helper()
	img, err := Image(version, opts)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return img
}

// Image returns an image of the app that answers /version with version.
func Image(version string, opts Options) (v1.Image, error) {
	plat, err := platform(opts.Platform)
	if err != nil {
		return nil, err
	}
	bin, err := binary(plat)
	if err != nil {
		return nil, err
	}
	layer, err := appLayer(bin)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	// Start from the image's own config: a fresh one would lose the layer's diff ID.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	port := opts.Port
	if port == 0 {
		port = DefaultPort
	}
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = []string{"/app"}
	cf.Config.Env = append([]string{"APP_VERSION=" + version, "PORT=" + strconv.Itoa(port)}, opts.Env...)
	if !opts.NoExpose {
		cf.Config.ExposedPorts = map[string]struct{}{strconv.Itoa(port) + "/tcp": {}}
		for _, p := range opts.ExtraPorts {
			cf.Config.ExposedPorts[strconv.Itoa(p)+"/tcp"] = struct{}{}
		}
	}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.version": version}
	for k, v := range opts.Labels {
		cf.Config.Labels[k] = v
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// platform parses "os/arch[/variant]", "" being linux/GOARCH.
func platform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("platform %q: %w", s, err)
	}
	return *p, nil
}

// Platformed is one entry of a multi-platform index.
type Platformed struct {
	Platform v1.Platform
	Image    v1.Image
}

// Index returns an OCI image index of the images, each under its platform.
func Index(entries ...Platformed) v1.ImageIndex {
	adds := make([]mutate.IndexAddendum, 0, len(entries))
	for _, e := range entries {
		p := e.Platform
		adds = append(adds, mutate.IndexAddendum{Add: e.Image, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
}

// appLayer is a one-file layer holding bin as /app, uncompressed (an OCI layer
// may be): gzip costs seconds per image under the race detector, and the bytes
// only travel over loopback. The tar is deterministic, so every image built from
// the same binary shares the layer.
func appLayer(bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read app binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Name: "app", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg,
		ModTime: time.Unix(0, 0), Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer), nil
}

// binary returns the path of the app compiled for the platform, building it on
// first use. The cache key covers the source, the toolchain and the platform.
func binary(p v1.Platform) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the dewy-agent module (go env GOMOD is empty)")
	}
	root := filepath.Dir(mod)
	src := filepath.Join(root, "testdata", "imageapp")
	goarm := strings.TrimPrefix(p.Variant, "v")
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", runtime.Version(), p.OS, p.Architecture, goarm)
	// The app's source and the module package it imports.
	for _, f := range []string{filepath.Join(src, "main.go"), filepath.Join(root, "internal", "graceful", "graceful.go")} {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read app source: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
		h.Write(b)
	}
	dir := filepath.Join(os.TempDir(), "dewy-testimage-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "app")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "app-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Architecture == "arm" && goarm != "" {
		cmd.Env = append(cmd.Env, "GOARM="+goarm)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build app for %s: %w\n%s", p.String(), err, out)
	}
	// Rename is atomic: concurrent builders each install a whole binary.
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Registry is an in-process OCI registry on 127.0.0.1.
type Registry struct {
	// Host is "127.0.0.1:<port>", the registry part of image references.
	Host string
	srv  *httptest.Server
}

// NewRegistry serves a registry for the test and closes it at cleanup.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	r := Serve()
	t.Cleanup(r.Close)
	return r
}

// Serve starts a registry; Close stops it.
func Serve() *Registry {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv}
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// Repository is "<Host>/<repo>".
func (r *Registry) Repository(repo string) string { return r.Host + "/" + repo }

// Push writes img as repo:tag and returns "<Host>/<repo>@<digest>".
func (r *Registry) Push(ctx context.Context, repo, tag string, img v1.Image) (string, error) {
	return r.push(repo, tag, img.Digest, func(ref name.Reference) error {
		return remote.Write(ref, img, remote.WithContext(ctx))
	})
}

// PushIndex writes idx as repo:tag and returns "<Host>/<repo>@<index digest>".
func (r *Registry) PushIndex(ctx context.Context, repo, tag string, idx v1.ImageIndex) (string, error) {
	return r.push(repo, tag, idx.Digest, func(ref name.Reference) error {
		return remote.WriteIndex(ref, idx, remote.WithContext(ctx))
	})
}

// push writes what write writes as repo:tag and returns its reference by
// digest.
func (r *Registry) push(repo, tag string, digest func() (v1.Hash, error), write func(name.Reference) error) (string, error) {
	ref, err := name.ParseReference(r.Repository(repo)+":"+tag, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := write(ref); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := digest()
	if err != nil {
		return "", err
	}
	return r.Repository(repo) + "@" + d.String(), nil
}

// MustPush is Push for tests.
func (r *Registry) MustPush(t testing.TB, repo, tag string, img v1.Image) string {
	t.Helper()
	return mustRef(t)(r.Push(t.Context(), repo, tag, img))
}

// MustPushIndex is PushIndex for tests.
func (r *Registry) MustPushIndex(t testing.TB, repo, tag string, idx v1.ImageIndex) string {
	t.Helper()
	return mustRef(t)(r.PushIndex(t.Context(), repo, tag, idx))
}

// mustRef returns what takes a push's results and returns its reference,
// failing t when the push failed.
func mustRef(t testing.TB) func(ref string, err error) string {
	return func(ref string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("testimage: %v", err)
		}
		return ref
	}
}
