package container

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
)

// Config is the `runner "container" {}` block. Zero values mean the defaults
// below. Every container setting comes from here: nothing is copied from a running
// container.
type Config struct {
	// App is the app's name: the value of the dewy-agent.app label and the prefix
	// of container names. "" is the base name of runners.Options.AppDir.
	App string
	// Ports are "proxy" or "proxy:container" ("8080:80"), TCP. The runner listens
	// on the proxy port on all interfaces and forwards to the replicas. With only
	// the proxy port, the container port is the single port the image exposes.
	// Proxy port 0 listens on a free port (see Container.Addrs). None for workers.
	Ports []string
	// Replicas is how many containers serve at once. Default 1.
	Replicas int
	// HealthPath, when set, is requested on each new replica through the first
	// port; a 2xx answer means healthy. "" means healthy = still running after
	// SettleTime.
	HealthPath string
	// HealthTimeout bounds the wait for a new replica to be healthy. Default 30s.
	HealthTimeout time.Duration
	// DrainTime is how long a replica taken out of the proxy may finish its open
	// connections before it is stopped. Default 30s.
	DrainTime time.Duration
	// Env is the containers' environment (on top of the image's).
	Env map[string]string
	// Volumes are Docker binds, "/host/path:/container/path[:ro]" or
	// "name:/container/path[:ro]" for a named volume.
	Volumes []string
	// Command replaces the image's CMD (the entrypoint stays).
	Command []string
	// User runs the container's process as "user", "uid" or "uid:gid".
	User string
	// Network is a Docker network to attach to; "" is Docker's default bridge.
	Network string
	// Memory limits each container: "512m", "1g" (bytes with b, k, m or g).
	Memory string
	// CPUs limits each container to this many CPUs (0.5, 2); 0 means no limit.
	CPUs float64

	// The settings below are not HCL attributes yet; zero means the default.

	// StopTimeout is how long `docker stop` waits after the stop signal before
	// SIGKILL. Default 10s.
	StopTimeout time.Duration
	// SettleTime: without HealthPath, a replica still running after this long is
	// healthy. Default 2s.
	SettleTime time.Duration
	// CrashWindow: a new replica that exits within this long after entering the
	// rotation rolls the deploy back to the old replicas, which are kept running
	// (out of rotation, draining) until it has passed. Default 10s.
	CrashWindow time.Duration
	// KeepImages is how many of the app's newest images are kept (the running one
	// included); older images this runner pulled are removed. Default 3.
	KeepImages int
}

// Defaults of Config's zero values.
const (
	DefaultReplicas      = 1
	DefaultHealthTimeout = 30 * time.Second
	DefaultDrainTime     = 30 * time.Second
	DefaultStopTimeout   = 10 * time.Second
	DefaultSettleTime    = 2 * time.Second
	DefaultCrashWindow   = 10 * time.Second
	DefaultKeepImages    = 3
)

// MaxReplicas bounds Replicas: every replica has its own published port and the
// rollout doubles the count for a moment.
const MaxReplicas = 64

// minMemory is Docker's own lower bound for a memory limit.
const minMemory = 6 * 1024 * 1024

func (c Config) withDefaults() Config {
	c.Replicas = cmp.Or(c.Replicas, DefaultReplicas)
	c.HealthTimeout = cmp.Or(c.HealthTimeout, DefaultHealthTimeout)
	c.DrainTime = cmp.Or(c.DrainTime, DefaultDrainTime)
	c.StopTimeout = cmp.Or(c.StopTimeout, DefaultStopTimeout)
	c.SettleTime = cmp.Or(c.SettleTime, DefaultSettleTime)
	c.CrashWindow = cmp.Or(c.CrashWindow, DefaultCrashWindow)
	c.KeepImages = cmp.Or(c.KeepImages, DefaultKeepImages)
	return c
}

// portSpec is one entry of Config.Ports.
type portSpec struct {
	proxy     int // 0: a free port (programs only; a config file names a real port)
	container int // 0: the image's single exposed port
}

// parsePort reads "proxy" or "proxy:container". No protocol is written: the
// proxy forwards TCP only, so "8080/tcp" would say nothing and "53/udp" could
// not be kept.
func parsePort(s string) (portSpec, error) {
	if _, proto, ok := strings.Cut(s, "/"); ok {
		return portSpec{}, fmt.Errorf(`port %q is not "proxy" or "proxy:container": write it without "/%s", as the proxy forwards TCP only and ports name no protocol, e.g. "8080:80"`, s, proto)
	}
	proxy, ctr, hasCtr := strings.Cut(s, ":")
	var p portSpec
	var err error
	bad := fmt.Errorf(`port %q is not "proxy" or "proxy:container" with numbers from 1 to 65535, e.g. "8080:80"`, s)
	if p.proxy, err = strconv.Atoi(proxy); err != nil || p.proxy < 0 || p.proxy > 65535 {
		return portSpec{}, bad
	}
	if hasCtr {
		if p.container, err = strconv.Atoi(ctr); err != nil || p.container < 1 || p.container > 65535 {
			return portSpec{}, bad
		}
	}
	return p, nil
}

// Validate checks a Config built by a program (a config file's is checked
// when it is decoded, with the same rules and positions) and returns every
// problem found. It refuses what would break the runner's management of the
// containers or the host's safety: the host network (the proxy needs a
// published port per replica), joining another container's network, and binds
// of the Docker socket or of system folders.
func (c Config) Validate() error {
	var probs []hclsettings.Problem
	if c.App != "" && !validName(c.App) {
		probs = append(probs, hclsettings.Problem{Attr: "app", Detail: fmt.Sprintf("app name %q cannot name containers: use letters, digits, \"_\", \".\" or \"-\", starting with a letter or digit", c.App)})
	}
	return hclsettings.Err(append(probs, c.problems(false)...))
}

// problems checks c. A config file (file) must name real proxy ports (1 to
// 65535); a program may ask for port 0 (any free port).
func (c Config) problems(file bool) []hclsettings.Problem {
	var probs []hclsettings.Problem
	add := func(attr, summary, detail string, args ...any) {
		probs = append(probs, hclsettings.Problem{Attr: attr, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	seen := map[int]bool{}
	for _, s := range c.Ports {
		p, err := parsePort(s)
		if err == nil && file && p.proxy == 0 {
			err = fmt.Errorf(`port %q is not "proxy" or "proxy:container" with numbers from 1 to 65535, e.g. "8080:80"`, s)
		}
		if err != nil {
			add("ports", "Invalid port", "%v.", err)
			continue
		}
		if p.proxy != 0 && seen[p.proxy] {
			add("ports", "Duplicate port", "proxy port %d is listed twice; list each port once.", p.proxy)
		}
		seen[p.proxy] = true
	}
	switch {
	case c.Replicas < 0 || (file && c.Replicas < 1):
		add("replicas", "Invalid replicas", "replicas is %d; it must be at least 1.", c.Replicas)
	case c.Replicas > MaxReplicas:
		add("replicas", "Invalid replicas", "replicas is %d; it must be at most %d: every replica publishes its own port and a rollout doubles them for a moment.", c.Replicas, MaxReplicas)
	}
	if c.HealthPath != "" {
		if c.HealthPath[0] != '/' {
			add("health_path", "Invalid health_path", `health_path %q must start with "/", e.g. "/health".`, c.HealthPath)
		}
		if len(c.Ports) == 0 {
			add("health_path", "health_path without ports", "health_path needs a port to check: set ports, or remove health_path to check that the container keeps running.")
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"health_timeout", c.HealthTimeout}, {"drain_time", c.DrainTime},
		{"stop_timeout", c.StopTimeout}, {"settle_time", c.SettleTime}, {"crash_window", c.CrashWindow},
	} {
		if d.v < 0 {
			add(d.name, "Invalid "+d.name, "%s %s is negative.", d.name, d.v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			add("env", "Invalid env", "env name %q is not a variable name.", k)
		}
	}
	for _, v := range c.Volumes {
		if err := checkVolume(v); err != nil {
			add("volumes", "Refused volume", "%v.", err)
		}
	}
	if len(c.Command) > 0 && c.Command[0] == "" {
		add("command", "Invalid command", "command's first element is empty.")
	}
	switch n := c.Network; {
	case n == "host":
		add("network", "Refused network", `network "host" is refused: the agent's proxy needs each replica on its own published port; use "" (Docker's bridge) or a network you created.`)
	case strings.HasPrefix(n, "container:"):
		add("network", "Refused network", "network %q is refused: a replica cannot share another container's network and still publish its own port; use a bridge network.", n)
	case n == "none" && len(c.Ports) > 0:
		add("network", "Invalid network", `network "none" cannot publish ports; remove ports or use another network.`)
	case n != "" && !validName(n):
		add("network", "Invalid network", "network %q is not a Docker network name.", n)
	}
	if c.Memory != "" {
		if m, err := units.RAMInBytes(c.Memory); err != nil {
			add("memory", "Invalid memory", `memory %q is not a size like "512m" or "1g".`, c.Memory)
		} else if m < minMemory {
			add("memory", "Invalid memory", "memory %q is below Docker's minimum of 6m.", c.Memory)
		}
	}
	if c.CPUs < 0 {
		add("cpus", "Invalid cpus", "cpus is %g; it must be positive (or 0 for no limit).", c.CPUs)
	}
	if c.KeepImages < 0 {
		add("keep_images", "Invalid keep_images", "keep_images %d is negative.", c.KeepImages)
	}
	return probs
}

// protectedPaths are host paths that a bind must not expose, nor a folder that
// holds them: the Docker and containerd sockets and data (a container holding them
// controls the host and this runner's containers), and the kernel's trees.
var protectedPaths = []string{
	"/var/run/docker.sock", "/run/docker.sock", "/run/containerd", "/var/run/containerd",
	"/var/lib/docker", "/var/lib/containerd", "/run/podman", "/var/run/podman",
	"/proc", "/sys", "/dev",
}

// readOnlyPaths are the host's system folders: a bind inside them must be ":ro"
// (/etc/localtime and /etc/ssl/certs are common and harmless read-only).
var readOnlyPaths = []string{"/etc", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib64"}

// checkVolume checks one bind: "src:dst[:options]".
func checkVolume(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf(`volume %q: write "/host/path:/container/path" or "name:/container/path", optionally with ":ro"`, v)
	}
	src, dst := parts[0], parts[1]
	if src == "" || dst == "" {
		return fmt.Errorf("volume %q: source and destination must not be empty", v)
	}
	if !path.IsAbs(dst) {
		return fmt.Errorf("volume %q: the container path %q must be absolute", v, dst)
	}
	readOnly := false
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			readOnly = readOnly || o == "ro"
			switch o {
			case "ro", "rw", "z", "Z", "nocopy":
			default:
				return fmt.Errorf("volume %q: option %q is not one of ro, rw, z, Z, nocopy", v, o)
			}
		}
	}
	if !strings.HasPrefix(src, "/") {
		if !validName(src) {
			return fmt.Errorf("volume %q: the source %q is neither an absolute host path nor a volume name", v, src)
		}
		return nil
	}
	clean := path.Clean(src)
	if clean == "/" {
		return fmt.Errorf("volume %q: binding the host's root folder is refused", v)
	}
	if strings.HasSuffix(clean, ".sock") {
		return fmt.Errorf("volume %q: binding a socket is refused: a container holding the Docker socket controls the host", v)
	}
	for _, p := range protectedPaths {
		// The bind exposes p when it is p, inside p, or a folder holding p.
		if clean == p || strings.HasPrefix(clean, p+"/") || strings.HasPrefix(p, clean+"/") {
			return fmt.Errorf("volume %q: binding %s is refused: it exposes %s (the container engine or the kernel)", v, clean, p)
		}
	}
	for _, p := range readOnlyPaths {
		if (clean == p || strings.HasPrefix(clean, p+"/")) && !readOnly {
			return fmt.Errorf("volume %q: %s is a system folder of the host: bind it read-only (add \":ro\")", v, clean)
		}
	}
	return nil
}

// validName matches ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$, Docker's rule for container,
// network and volume names.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// hash identifies the settings that shape a container, for the
// dewy-agent.config label: a container made with other settings is replaced on
// Resume.
func (c Config) hash() string {
	shape := struct {
		Ports, Volumes, Command []string
		Env                     map[string]string
		User, Network, Memory   string
		CPUs                    float64
	}{c.Ports, c.Volumes, c.Command, c.Env, c.User, c.Network, c.Memory, c.CPUs}
	b, _ := json.Marshal(shape) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
