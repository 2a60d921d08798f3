package container

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
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
	ports                            []int      // container ports, in Config.Ports order
	backends                         []*backend // one per proxy, same order

	// Guarded by Container.mu.
	running  bool
	pid      int
	restarts int
	retired  bool // taken out for good (replaced or removed); the monitor leaves it out
	out      bool // taken out of rotation by the monitor while not running
}

// newDockerClient connects as the docker CLI does: DOCKER_HOST, DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH, DOCKER_API_VERSION, else the local socket. No I/O until used.
func newDockerClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}

// isDigestRef reports a reference pinned by digest.
func isDigestRef(ref string) bool { return strings.Contains(ref, "@sha256:") }

// pull makes the image present in the engine. An image pinned by digest that is
// already present is not pulled again. It reports whether it pulled.
func (c *Container) pull(ctx context.Context, cli *client.Client, ref string) (bool, error) {
	if isDigestRef(ref) {
		if _, err := cli.ImageInspect(ctx, ref); err == nil {
			return false, nil
		}
	}
	auth, err := registryAuth(ctx, ref)
	if err != nil {
		return false, err
	}
	rc, err := cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return false, fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	// The engine reports failures inside the stream; the call itself succeeded.
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Status      string `json:"status"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if cerr := ctx.Err(); cerr != nil {
				return false, fmt.Errorf("pull %s: %w", ref, cerr)
			}
			return false, fmt.Errorf("pull %s: read progress: %w", ref, err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return false, fmt.Errorf("pull %s: %s", ref, m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return false, fmt.Errorf("pull %s: %s", ref, m.Error)
		}
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
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
func (c *Container) containerPorts(ctx context.Context, cli *client.Client, img string) ([]int, error) {
	ports := make([]int, len(c.specs))
	var exposed []int
	var inspected bool
	for i, s := range c.specs {
		if s.container != 0 {
			ports[i] = s.container
			continue
		}
		if !inspected {
			ins, err := cli.ImageInspect(ctx, img)
			if err != nil {
				return nil, fmt.Errorf("inspect image %s: %w", img, err)
			}
			inspected = true
			if ins.Config != nil {
				for p := range ins.Config.ExposedPorts {
					port, proto, _ := strings.Cut(p, "/")
					n, err := strconv.Atoi(port)
					if err == nil && (proto == "" || proto == "tcp") {
						exposed = append(exposed, n)
					}
				}
			}
			slices.Sort(exposed)
		}
		switch len(exposed) {
		case 1:
			ports[i] = exposed[0]
		case 0:
			return nil, fmt.Errorf("port %q names no container port and image %s exposes none: write ports = [\"%d:<container port>\"]", c.cfg.Ports[i], img, s.proxy)
		default:
			return nil, fmt.Errorf("port %q names no container port and image %s exposes %d (%s): write ports = [\"%d:<container port>\"]",
				c.cfg.Ports[i], img, len(exposed), joinInts(exposed), s.proxy)
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
// ports. It is not in any proxy's rotation yet.
func (c *Container) start(ctx context.Context, cli *client.Client, version, img string, ports []int) (*replica, error) {
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, p := range ports {
		port := nat.Port(strconv.Itoa(p) + "/tcp")
		exposed[port] = struct{}{}
		// HostPort "" publishes on a free port of the engine's choosing.
		bindings[port] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: ""}}
	}
	env := make([]string, 0, len(c.cfg.Env))
	for _, k := range slices.Sorted(maps.Keys(c.cfg.Env)) {
		env = append(env, k+"="+c.cfg.Env[k])
	}
	var mem int64
	if c.cfg.Memory != "" {
		mem, _ = units.RAMInBytes(c.cfg.Memory) // Validate checked it
	}
	cfg := &container.Config{
		Image:        img,
		Env:          env,
		User:         c.cfg.User,
		ExposedPorts: exposed,
		Labels: map[string]string{
			LabelManaged: "true",
			LabelApp:     c.app,
			LabelVersion: version,
			LabelImage:   img,
			LabelConfig:  c.cfg.hash(),
		},
	}
	if len(c.cfg.Command) > 0 {
		cfg.Cmd = slices.Clone(c.cfg.Command)
	}
	host := &container.HostConfig{
		PortBindings: bindings,
		Binds:        slices.Clone(c.cfg.Volumes),
		NetworkMode:  container.NetworkMode(c.cfg.Network),
		// Restarted by the engine when it crashes or the host reboots, also while
		// the agent is down; the monitor follows the port it gets.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Resources: container.Resources{
			Memory:   mem,
			NanoCPUs: int64(c.cfg.CPUs * 1e9),
		},
	}
	name := c.app + "-" + nameSafe(version) + "-" + randomHex(3)
	created, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	r := &replica{id: created.ID, name: name, version: version, image: img, config: c.cfg.hash(), ports: ports}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		c.removeContainer(context.WithoutCancel(ctx), cli, r)
		return nil, fmt.Errorf("start container %s: %w", name, err)
	}
	ins, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		c.removeContainer(context.WithoutCancel(ctx), cli, r)
		return nil, fmt.Errorf("inspect container %s: %w", name, err)
	}
	if failed(ins) {
		msg := c.logsTail(context.WithoutCancel(ctx), cli, r.id)
		c.removeContainer(context.WithoutCancel(ctx), cli, r)
		return nil, fmt.Errorf("replica %s exited%s%s", name, exitDetail(ins), msg)
	}
	if err := c.bind(r, ins); err != nil {
		msg := c.logsTail(context.WithoutCancel(ctx), cli, r.id)
		c.removeContainer(context.WithoutCancel(ctx), cli, r)
		return nil, fmt.Errorf("replica %s: %w%s", name, err, msg)
	}
	return r, nil
}

// bind makes the replica's backends from the ports the engine published.
func (c *Container) bind(r *replica, ins container.InspectResponse) error {
	addrs, err := publishedAddrs(ins, r.ports)
	if err != nil {
		return err
	}
	r.backends = make([]*backend, len(addrs))
	for i, a := range addrs {
		r.backends[i] = newBackend(r.name, a)
	}
	if ins.ContainerJSONBase != nil && ins.State != nil {
		r.running, r.pid, r.restarts = ins.State.Running, ins.State.Pid, ins.RestartCount
	}
	return nil
}

// publishedAddrs are the "127.0.0.1:<port>" addresses the container ports are
// published on.
func publishedAddrs(ins container.InspectResponse, ports []int) ([]string, error) {
	addrs := make([]string, len(ports))
	for i, p := range ports {
		var bs []nat.PortBinding
		if ins.NetworkSettings != nil {
			bs = ins.NetworkSettings.Ports[nat.Port(strconv.Itoa(p)+"/tcp")]
		}
		for _, b := range bs {
			if b.HostPort != "" && (b.HostIP == "127.0.0.1" || b.HostIP == "0.0.0.0" || b.HostIP == "") {
				addrs[i] = net.JoinHostPort("127.0.0.1", b.HostPort)
				break
			}
		}
		if addrs[i] == "" {
			state := "not running"
			if ins.ContainerJSONBase != nil && ins.State != nil {
				state = string(ins.State.Status)
				if ins.State.Status == "exited" {
					state += " with code " + strconv.Itoa(ins.State.ExitCode)
				}
			}
			return nil, fmt.Errorf("port %d/tcp is not published (container %s)", p, state)
		}
	}
	return addrs, nil
}

// waitHealthy waits for the replica to be healthy: a 2xx from HealthPath through
// its first port, or still running after SettleTime without HealthPath. A
// container that exits (or is restarted by the engine) fails at once.
func (c *Container) waitHealthy(ctx context.Context, cli *client.Client, r *replica) error {
	hctx, cancel := context.WithTimeout(ctx, c.cfg.HealthTimeout)
	defer cancel()
	started := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		ins, err := cli.ContainerInspect(hctx, r.id)
		switch {
		case err != nil && hctx.Err() == nil:
			return fmt.Errorf("inspect %s: %w", r.name, err)
		case err != nil:
		case failed(ins):
			return fmt.Errorf("replica %s exited%s%s", r.name, exitDetail(ins), c.logsTail(context.WithoutCancel(ctx), cli, r.id))
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
			return fmt.Errorf("replica %s is not healthy after %s: GET %s: %s%s", r.name, c.cfg.HealthTimeout, c.cfg.HealthPath, last,
				c.logsTail(context.WithoutCancel(ctx), cli, r.id))
		case <-tick.C:
		}
	}
}

// probe sends one health request to the replica's first port.
func (c *Container) probe(ctx context.Context, r *replica) (bool, string) {
	if len(r.backends) == 0 {
		return false, "no port"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*r.backends[0].addr.Load()+c.cfg.HealthPath, nil)
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
func failed(ins container.InspectResponse) bool {
	return ins.ContainerJSONBase == nil || ins.State == nil || !ins.State.Running || ins.State.Restarting || ins.RestartCount > 0
}

// exitDetail says how a container ended, for errors.
func exitDetail(ins container.InspectResponse) string {
	if ins.ContainerJSONBase == nil || ins.State == nil {
		return ""
	}
	st := ins.State
	var s string
	switch {
	case st.Restarting || ins.RestartCount > 0:
		s = fmt.Sprintf(" with code %d and is being restarted (%d restarts)", st.ExitCode, ins.RestartCount)
	case st.OOMKilled:
		s = " (killed: out of memory; raise memory)"
	default:
		s = fmt.Sprintf(" with code %d", st.ExitCode)
	}
	if st.Error != "" {
		s += ": " + st.Error
	}
	return s
}

// logsTail returns the container's last output lines, formatted to end an error,
// or "" when there is none.
func (c *Container) logsTail(ctx context.Context, cli *client.Client, id string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "10"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 16<<10)); err != nil && out.Len() == 0 {
		return ""
	}
	s := strings.TrimSpace(out.String())
	if s == "" {
		return ""
	}
	return "; last output:\n" + s
}

// removeContainer stops the container (stop signal, StopTimeout, then SIGKILL)
// and removes it with its anonymous volumes.
func (c *Container) removeContainer(ctx context.Context, cli *client.Client, r *replica) error {
	secs := int(c.cfg.StopTimeout.Round(time.Second) / time.Second)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StopTimeout+30*time.Second)
	defer cancel()
	err := cli.ContainerStop(ctx, r.id, container.StopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		c.logger.Warn("stop container", "container", r.name, "err", err)
	}
	if err := cli.ContainerRemove(ctx, r.id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", r.name, err)
	}
	return nil
}

// removeAll removes the replicas in parallel and returns every failure.
func (c *Container) removeAll(ctx context.Context, cli *client.Client, rs []*replica) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = c.removeContainer(ctx, cli, r) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// appContainers lists the app's containers, running or not.
func (c *Container) appContainers(ctx context.Context, cli *client.Client) ([]container.Summary, error) {
	list, err := cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true"), filters.Arg("label", LabelApp+"="+c.app)),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return list, nil
}

// summaryReplica is a listed container as a replica to remove (no backends).
func summaryReplica(s container.Summary) *replica {
	n := s.ID[:min(12, len(s.ID))]
	if len(s.Names) > 0 {
		n = strings.TrimPrefix(s.Names[0], "/")
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
