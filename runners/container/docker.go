package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/go-units"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/dewy-agent/dewy-agent/internal/tcpproxy"
	"github.com/dewy-agent/dewy-agent/runners"
)

// Labels the runner puts on its containers. Containers with LabelManaged=true and
// LabelApp=<app> belong to the app: the runner adopts, replaces and removes them.
const (
	LabelManaged = "dewy-agent.managed"
	LabelApp     = "dewy-agent.app"
	LabelVersion = "dewy-agent.version"
	LabelImage   = "dewy-agent.image"
	LabelConfig  = "dewy-agent.config"
)

// replica is one container of the app.
type replica struct {
	id, name, version, image, config string
	ports                            []int               // container ports, in Config.Ports order
	backends                         []*tcpproxy.Backend // one per proxy, same order

	// Guarded by Container.mu.
	running  bool
	pid      int
	restarts int
	retired  bool // taken out for good (replaced or removed); the monitor leaves it out
	out      bool // taken out of rotation by the monitor while not running
}

// isDigestRef reports a reference pinned by digest.
func isDigestRef(ref string) bool { return strings.Contains(ref, "@sha256:") }

// pull makes the image present in the engine. An image pinned by digest that is
// already present is not pulled again. It reports whether it pulled.
func (c *Container) pull(ctx context.Context, eng Engine, ref string) (bool, error) {
	if isDigestRef(ref) {
		if _, err := eng.InspectImage(ctx, ref); err == nil {
			return false, nil
		}
	}
	auth, err := registryAuth(ctx, ref)
	if err != nil {
		return false, err
	}
	if err := eng.PullImage(ctx, ref, auth); err != nil {
		return false, fmt.Errorf("pull %s: %w", ref, err)
	}
	if _, err := eng.InspectImage(ctx, ref); err != nil {
		return false, fmt.Errorf("pull %s: the engine does not have the image afterwards: %w", ref, err)
	}
	return true, nil
}

// registryAuth returns the engine's X-Registry-Auth value for the image's registry
// from Docker's config.json and credential helpers, or "" for anonymous pulls.
// The engine does not read the client's credentials itself.
func registryAuth(ctx context.Context, ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	a, err := authn.Resolve(ctx, authn.DefaultKeychain, r.Context())
	if err != nil {
		return "", fmt.Errorf("credentials for %s: %w", r.Context().RegistryStr(), err)
	}
	if a == authn.Anonymous {
		return "", nil
	}
	cfg, err := authn.Authorization(ctx, a)
	if err != nil {
		return "", fmt.Errorf("credentials for %s: %w", r.Context().RegistryStr(), err)
	}
	if *cfg == (authn.AuthConfig{}) {
		return "", nil
	}
	return registry.EncodeAuthConfig(registry.AuthConfig{
		Username:      cfg.Username,
		Password:      cfg.Password,
		Auth:          cfg.Auth,
		IdentityToken: cfg.IdentityToken,
		RegistryToken: cfg.RegistryToken,
		ServerAddress: r.Context().RegistryStr(),
	})
}

// containerPorts resolves Config.Ports to container ports for the image: an entry
// without a container port takes the image's single exposed TCP port.
func (c *Container) containerPorts(ctx context.Context, eng Engine, img string) ([]int, error) {
	ports := make([]int, len(c.specs))
	var exposed []int
	var inspected bool
	for i, s := range c.specs {
		if s.container != 0 {
			ports[i] = s.container
			continue
		}
		if !inspected {
			info, err := eng.InspectImage(ctx, img)
			if err != nil {
				return nil, fmt.Errorf("inspect image %s: %w", img, err)
			}
			inspected = true
			for _, p := range info.ExposedPorts {
				port, proto, _ := strings.Cut(p, "/")
				n, err := strconv.Atoi(port)
				if err == nil && (proto == "" || proto == "tcp") {
					exposed = append(exposed, n)
				}
			}
			slices.Sort(exposed)
		}
		switch len(exposed) {
		case 1:
			ports[i] = exposed[0]
		case 0:
			return nil, fmt.Errorf("%w: port %q names no container port and image %s exposes none: write ports = [\"%d:<container port>\"]",
				runners.ErrBadRelease, c.cfg.Ports[i], img, s.proxy)
		default:
			return nil, fmt.Errorf("%w: port %q names no container port and image %s exposes %d (%s): write ports = [\"%d:<container port>\"]",
				runners.ErrBadRelease, c.cfg.Ports[i], img, len(exposed), joinInts(exposed), s.proxy)
		}
	}
	return ports, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// start creates and starts one replica of the image and learns its published
// ports. It is not in any proxy's rotation yet. Its error wraps
// runners.ErrBadRelease when the image is at fault: the engine cannot run it,
// or it exits at once.
func (c *Container) start(ctx context.Context, eng Engine, version, img string, ports []int) (*replica, error) {
	env := make([]string, 0, len(c.cfg.Env))
	for _, k := range slices.Sorted(maps.Keys(c.cfg.Env)) {
		env = append(env, k+"="+c.cfg.Env[k])
	}
	var mem int64
	if c.cfg.Memory != "" {
		mem, _ = units.RAMInBytes(c.cfg.Memory) // Validate checked it
	}
	name := c.app + "-" + nameSafe(version) + "-" + randomHex(3)
	spec := ContainerSpec{
		Name:  name,
		Image: img,
		Labels: map[string]string{
			LabelManaged: "true",
			LabelApp:     c.app,
			LabelVersion: version,
			LabelImage:   img,
			LabelConfig:  c.cfg.hash(),
		},
		Env:      env,
		Cmd:      slices.Clone(c.cfg.Command),
		User:     c.cfg.User,
		Ports:    slices.Clone(ports),
		Binds:    slices.Clone(c.cfg.Volumes),
		Network:  c.cfg.Network,
		Memory:   mem,
		NanoCPUs: int64(c.cfg.CPUs * 1e9),
	}
	id, err := eng.CreateContainer(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	r := &replica{id: id, name: name, version: version, image: img, config: c.cfg.hash(), ports: ports}
	detached := context.WithoutCancel(ctx)
	if err := eng.StartContainer(ctx, id); err != nil {
		msg := ""
		if errors.Is(err, ErrCannotRun) {
			msg = c.logsTail(detached, eng, id)
			err = fmt.Errorf("%w: %w", runners.ErrBadRelease, err)
		}
		c.removeContainer(detached, eng, r)
		return nil, fmt.Errorf("start container %s: %w%s", name, err, msg)
	}
	ins, err := eng.InspectContainer(ctx, id)
	if err != nil {
		c.removeContainer(detached, eng, r)
		return nil, fmt.Errorf("inspect container %s: %w", name, err)
	}
	if failed(ins) {
		msg := c.logsTail(detached, eng, r.id)
		c.removeContainer(detached, eng, r)
		return nil, fmt.Errorf("%w: replica %s exited%s%s", runners.ErrBadRelease, name, exitDetail(ins), msg)
	}
	if err := c.bind(r, ins); err != nil {
		msg := c.logsTail(detached, eng, r.id)
		c.removeContainer(detached, eng, r)
		return nil, fmt.Errorf("replica %s: %w%s", name, err, msg)
	}
	return r, nil
}

// bind makes the replica's backends from the ports the engine published.
func (c *Container) bind(r *replica, ins ContainerInfo) error {
	addrs, err := publishedAddrs(ins, r.ports)
	if err != nil {
		return err
	}
	r.backends = make([]*tcpproxy.Backend, len(addrs))
	for i, a := range addrs {
		r.backends[i] = tcpproxy.NewBackend(r.name, a)
	}
	r.running, r.pid, r.restarts = ins.Running, ins.Pid, ins.RestartCount
	return nil
}

// publishedAddrs are the "127.0.0.1:<port>" addresses the container ports are
// published on.
func publishedAddrs(ins ContainerInfo, ports []int) ([]string, error) {
	addrs := make([]string, len(ports))
	for i, p := range ports {
		addrs[i] = ins.Ports[p]
		if addrs[i] == "" {
			state := "not running"
			if ins.Status != "" {
				state = ins.Status
				if ins.Status == "exited" {
					state += " with code " + strconv.Itoa(ins.ExitCode)
				}
			}
			return nil, fmt.Errorf("port %d/tcp is not published (container %s)", p, state)
		}
	}
	return addrs, nil
}

// waitHealthy waits for the replica to be healthy: a 2xx from HealthPath through
// its first port, or still running after SettleTime without HealthPath. A
// container that exits (or is restarted by the engine) fails at once. Its error
// wraps runners.ErrBadRelease when the replica is at fault, not when the engine
// fails to answer or ctx is done.
func (c *Container) waitHealthy(ctx context.Context, eng Engine, r *replica) error {
	hctx, cancel := context.WithTimeout(ctx, c.cfg.HealthTimeout)
	defer cancel()
	started := time.Now()
	tick := time.NewTicker(c.healthEvery)
	defer tick.Stop()
	last := "no answer"
	for {
		ins, err := eng.InspectContainer(hctx, r.id)
		switch {
		case err != nil && hctx.Err() == nil:
			return fmt.Errorf("inspect %s: %w", r.name, err)
		case err != nil:
		case failed(ins):
			return fmt.Errorf("%w: replica %s exited%s%s", runners.ErrBadRelease, r.name, exitDetail(ins), c.logsTail(context.WithoutCancel(ctx), eng, r.id))
		case c.cfg.HealthPath == "":
			if time.Since(started) >= c.cfg.SettleTime {
				return nil
			}
		default:
			ok, msg := c.probe(hctx, r)
			if ok {
				return nil
			}
			last = msg
		}
		select {
		case <-hctx.Done():
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("replica %s: %w", r.name, err)
			}
			if c.cfg.HealthPath == "" {
				return fmt.Errorf("replica %s: no answer from the engine within %s", r.name, c.cfg.HealthTimeout)
			}
			return fmt.Errorf("%w: replica %s is not healthy after %s: GET %s: %s%s", runners.ErrBadRelease, r.name, c.cfg.HealthTimeout, c.cfg.HealthPath, last,
				c.logsTail(context.WithoutCancel(ctx), eng, r.id))
		case <-tick.C:
		}
	}
}

// probe sends one health request to the replica's first port.
func (c *Container) probe(ctx context.Context, r *replica) (bool, string) {
	if len(r.backends) == 0 {
		return false, "no port"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.backends[0].Addr()+c.cfg.HealthPath, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := c.health.Do(req)
	if err != nil {
		return false, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, resp.Status
	}
	return true, ""
}

func newHealthClient() *http.Client {
	return &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, judged by its status
		},
	}
}

// failed reports a new replica that is not running or that the engine has
// restarted: it exited at least once.
func failed(ins ContainerInfo) bool {
	return !ins.Running || ins.Restarting || ins.RestartCount > 0
}

// exitDetail says how a container ended, for errors.
func exitDetail(ins ContainerInfo) string {
	var s string
	switch {
	case ins.Restarting || ins.RestartCount > 0:
		s = fmt.Sprintf(" with code %d and is being restarted (%d restarts)", ins.ExitCode, ins.RestartCount)
	case ins.OOMKilled:
		s = " (killed: out of memory; raise memory)"
	default:
		s = fmt.Sprintf(" with code %d", ins.ExitCode)
	}
	if ins.Error != "" {
		s += ": " + ins.Error
	}
	return s
}

// logsTail returns the container's last output lines, formatted to end an error,
// or "" when there is none.
func (c *Container) logsTail(ctx context.Context, eng Engine, id string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := eng.Logs(ctx, id, 10)
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(out)
	if len(s) > 16<<10 {
		s = s[len(s)-16<<10:]
	}
	if s == "" {
		return ""
	}
	return "; last output:\n" + s
}

// removeContainer stops the container (stop signal, StopTimeout, then SIGKILL)
// and removes it with its anonymous volumes.
func (c *Container) removeContainer(ctx context.Context, eng Engine, r *replica) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StopTimeout+30*time.Second)
	defer cancel()
	err := eng.StopContainer(ctx, r.id, c.cfg.StopTimeout)
	if err != nil && !errors.Is(err, ErrNotFound) {
		c.logger.Warn("stop container", "container", r.name, "err", err)
	}
	if err := eng.RemoveContainer(ctx, r.id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove container %s: %w", r.name, err)
	}
	return nil
}

// removeAll removes the replicas in parallel and returns every failure.
func (c *Container) removeAll(ctx context.Context, eng Engine, rs []*replica) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = c.removeContainer(ctx, eng, r) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// appContainers lists the app's containers, running or not.
func (c *Container) appContainers(ctx context.Context, eng Engine) ([]ContainerInfo, error) {
	list, err := eng.ListContainers(ctx, map[string]string{LabelManaged: "true", LabelApp: c.app})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return list, nil
}

// summaryReplica is a listed container as a replica to remove (no backends).
func summaryReplica(s ContainerInfo) *replica {
	n := s.Name
	if n == "" {
		n = s.ID[:min(12, len(s.ID))]
	}
	return &replica{id: s.ID, name: n, version: s.Labels[LabelVersion], image: s.Labels[LabelImage], config: s.Labels[LabelConfig]}
}

// nameSafe turns a version into a container-name part.
func nameSafe(v string) string {
	b := []byte(v)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '.' || ch == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
