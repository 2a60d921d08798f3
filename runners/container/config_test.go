package container

import (
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error, one per problem; none: valid
	}{
		{name: "zero", cfg: Config{}},
		{name: "full", cfg: Config{
			App: "web", Ports: []string{"8080:80", "9090", "0", "8443:443"}, Replicas: 3, HealthPath: "/health",
			HealthTimeout: time.Second, DrainTime: time.Second, Env: map[string]string{"A": "1"},
			Volumes: []string{"/data:/app/data", "/srv/conf:/conf:ro", "cache:/cache", "/var/lib/app:/x:ro,Z"},
			Command: []string{"serve", "-v"}, User: "1000:1000", Network: "backend", Memory: "512m", CPUs: 1.5,
		}},
		{name: "bad app name", cfg: Config{App: "-web"}, want: []string{`app name "-web"`}},
		{name: "bad ports", cfg: Config{Ports: []string{"x", "70000", "80:0", "80:x", "53/udp", "8080", "8080:81"}}, want: []string{
			`port "x" is not`, `port "70000" is not`, `port "80:0" is not`,
			`port "80:x" is not`, `port "53/udp" is not "proxy" or "proxy:container": write it without "/udp"`, "proxy port 8080 is listed twice",
		}},
		{name: "protocol suffix", cfg: Config{Ports: []string{"8443:443/tcp"}}, want: []string{`port "8443:443/tcp" is not "proxy" or "proxy:container": write it without "/tcp"`}},
		{name: "replicas", cfg: Config{Replicas: -1}, want: []string{"replicas is -1; it must be at least 1"}},
		{name: "too many replicas", cfg: Config{Replicas: 65}, want: []string{"replicas is 65; it must be at most 64"}},
		{name: "health path", cfg: Config{HealthPath: "health", Ports: []string{"80"}}, want: []string{`health_path "health" must start with "/"`}},
		{name: "health path without port", cfg: Config{HealthPath: "/health"}, want: []string{"health_path needs a port"}},
		{name: "negative durations", cfg: Config{HealthTimeout: -1, DrainTime: -1, StopTimeout: -1, SettleTime: -1, CrashWindow: -1}, want: []string{
			"health_timeout -1ns is negative", "drain_time -1ns is negative", "stop_timeout -1ns is negative", "settle_time -1ns is negative",
			"crash_window -1ns is negative",
		}},
		{name: "env names", cfg: Config{Env: map[string]string{"": "x", "A=B": "y"}}, want: []string{`env name ""`, `env name "A=B"`}},
		{name: "docker socket", cfg: Config{Volumes: []string{"/var/run/docker.sock:/var/run/docker.sock"}}, want: []string{"binding a socket is refused"}},
		{name: "folder holding the socket", cfg: Config{Volumes: []string{"/var/run:/host-run", "/run/:/r"}}, want: []string{
			"binding /var/run is refused", "binding /run is refused",
		}},
		{name: "engine data and kernel folders", cfg: Config{Volumes: []string{"/var/lib/docker/volumes:/v", "/:/host", "/proc:/p", "/var:/v", "/dev/sda:/disk:ro"}}, want: []string{
			"binding /var/lib/docker/volumes is refused", "binding the host's root folder", "binding /proc is refused",
			"binding /var is refused", "binding /dev/sda is refused",
		}},
		{name: "system folders read-only", cfg: Config{Volumes: []string{"/etc/localtime:/etc/localtime:ro", "/etc/ssl/certs:/etc/ssl/certs:ro,z"}}},
		{name: "system folders writable", cfg: Config{Volumes: []string{"/etc:/host-etc", "/usr/local/bin:/b:rw"}}, want: []string{
			"/etc is a system folder of the host", "/usr/local/bin is a system folder",
		}},
		{name: "bad volumes", cfg: Config{Volumes: []string{"/data", "./data:/d", "/a:rel", "/a:/b:rshared", "a:b:c:d", ":/x"}}, want: []string{
			`volume "/data": write`, `volume "./data:/d": the source "./data"`, `volume "/a:rel": the container path`,
			`volume "/a:/b:rshared": option "rshared"`, `volume "a:b:c:d": write`, `volume ":/x": source and destination`,
		}},
		{name: "host network", cfg: Config{Network: "host"}, want: []string{`network "host" is refused`}},
		{name: "container network", cfg: Config{Network: "container:db"}, want: []string{`network "container:db" is refused`}},
		{name: "none network with ports", cfg: Config{Network: "none", Ports: []string{"80"}}, want: []string{`network "none" cannot publish ports`}},
		{name: "none network without ports", cfg: Config{Network: "none"}},
		{name: "bad network name", cfg: Config{Network: "a b"}, want: []string{`network "a b" is not a Docker network name`}},
		{name: "memory", cfg: Config{Memory: "lots"}, want: []string{`memory "lots" is not a size`}},
		{name: "tiny memory", cfg: Config{Memory: "1m"}, want: []string{`memory "1m" is below`}},
		{name: "cpus", cfg: Config{CPUs: -1}, want: []string{"cpus is -1; it must be positive"}},
		{name: "empty command", cfg: Config{Command: []string{""}}, want: []string{"command's first element is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if testkit.ExpectError(t, err, tt.want...) {
				return
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(lines), len(tt.want), err)
			}
		})
	}
}

func TestConfigHash(t *testing.T) {
	base := Config{Ports: []string{"80"}, Env: map[string]string{"A": "1", "B": "2"}}
	tests := []struct {
		name string
		cfg  Config
		same bool
	}{
		{name: "equal", cfg: Config{Ports: []string{"80"}, Env: map[string]string{"B": "2", "A": "1"}}, same: true},
		{name: "health and replicas do not shape containers", cfg: Config{Ports: []string{"80"}, Env: map[string]string{"A": "1", "B": "2"}, Replicas: 3, HealthPath: "/h", DrainTime: time.Second}, same: true},
		{name: "env changed", cfg: Config{Ports: []string{"80"}, Env: map[string]string{"A": "1", "B": "3"}}},
		{name: "port changed", cfg: Config{Ports: []string{"81"}, Env: map[string]string{"A": "1", "B": "2"}}},
		{name: "memory added", cfg: Config{Ports: []string{"80"}, Env: map[string]string{"A": "1", "B": "2"}, Memory: "64m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.hash() == base.hash(); got != tt.same {
				t.Errorf("hash equal = %v, want %v", got, tt.same)
			}
		})
	}
}
