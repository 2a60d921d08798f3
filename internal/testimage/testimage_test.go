package testimage

import (
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestBuildAndPush(t *testing.T) {
	reg := NewRegistry(t)
	tests := []struct {
		name      string
		opts      Options
		wantPorts []string
		wantArch  string
	}{
		{name: "default", wantPorts: []string{"8080/tcp"}, wantArch: runtime.GOARCH},
		{name: "port and extra port", opts: Options{Port: 9000, ExtraPorts: []int{9001}}, wantPorts: []string{"9000/tcp", "9001/tcp"}, wantArch: runtime.GOARCH},
		{name: "no expose", opts: Options{NoExpose: true}, wantArch: runtime.GOARCH},
		{name: "other platform", opts: Options{Platform: "linux/arm64"}, wantPorts: []string{"8080/tcp"}, wantArch: "arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := Build(t, "v1.0.0", tt.opts)
			pinned := reg.MustPush(t, "app", "v1.0.0", img)
			ref, err := name.ParseReference(pinned, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			got, err := remote.Image(ref, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			cf, err := got.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Architecture != tt.wantArch || cf.OS != "linux" {
				t.Errorf("platform = %s/%s, want linux/%s", cf.OS, cf.Architecture, tt.wantArch)
			}
			if len(cf.Config.ExposedPorts) != len(tt.wantPorts) {
				t.Errorf("exposed ports = %v, want %v", cf.Config.ExposedPorts, tt.wantPorts)
			}
			for _, p := range tt.wantPorts {
				if _, ok := cf.Config.ExposedPorts[p]; !ok {
					t.Errorf("port %s not exposed: %v", p, cf.Config.ExposedPorts)
				}
			}
			if len(cf.RootFS.DiffIDs) != 1 {
				t.Errorf("diff IDs = %v, want one layer", cf.RootFS.DiffIDs)
			}
			if cf.Config.Entrypoint[0] != "/app" {
				t.Errorf("entrypoint = %v", cf.Config.Entrypoint)
			}
		})
	}
}

func TestIndex(t *testing.T) {
	reg := NewRegistry(t)
	amd := Build(t, "v1.0.0", Options{Platform: "linux/amd64"})
	arm := Build(t, "v1.0.0", Options{Platform: "linux/arm64"})
	reg.MustPushIndex(t, "multi", "v1.0.0", Index(
		Platformed{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: amd},
		Platformed{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Image: arm},
	))
	ref, err := name.ParseReference(reg.Repository("multi")+":v1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		arch string
		want v1.Image
	}{
		{name: "amd64", arch: "amd64", want: amd},
		{name: "arm64", arch: "arm64", want: arm},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img, err := remote.Image(ref, remote.WithContext(t.Context()), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: tt.arch}))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := img.Digest()
			want, _ := tt.want.Digest()
			if got != want {
				t.Errorf("digest = %s, want %s", got, want)
			}
		})
	}
}
