package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/dewy-agent/dewy-agent/internal/errmark"
)

// dockerEngine is the Engine of a Docker engine, through its API client.
type dockerEngine struct {
	cli *client.Client
	// negotiated: the API version was agreed once, before any concurrent
	// use. The client negotiates lazily on each first request and writes its
	// version while Events' goroutine reads it, a data race in the client.
	negotiated sync.Once
}

// negotiate agrees on the API version with the engine once, before the
// client is used from more than one goroutine.
func (d *dockerEngine) negotiate(ctx context.Context) {
	d.negotiated.Do(func() { d.cli.NegotiateAPIVersion(ctx) })
}

// newDockerEngine connects as the docker CLI does: DOCKER_HOST,
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION, else the local
// socket. No I/O until used.
func newDockerEngine() (Engine, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	return &dockerEngine{cli: cli}, nil
}

// classify marks the client's error with the Engine error it means, if any.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case client.IsErrConnectionFailed(err) || cerrdefs.IsUnavailable(err):
		return errmark.With(err, ErrEngineUnavailable)
	case cerrdefs.IsNotFound(err):
		return errmark.With(err, ErrNotFound)
	}
	return err
}

// cannotRun reports a start error that is the image's fault. The engine answers
// 400 for a missing executable; an image of another architecture fails with
// "exec format error" as a server error.
func cannotRun(err error) bool {
	if cerrdefs.IsInvalidArgument(err) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"exec format error", "executable file not found", "no such file or directory", "permission denied"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (d *dockerEngine) Platform(ctx context.Context) (string, error) {
	d.negotiate(ctx)
	v, err := d.cli.ServerVersion(ctx)
	if err != nil {
		return "", classify(err)
	}
	return v.Os + "/" + v.Arch, nil
}

func (d *dockerEngine) InspectImage(ctx context.Context, ref string) (ImageInfo, error) {
	d.negotiate(ctx)
	ins, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return ImageInfo{}, classify(err)
	}
	info := ImageInfo{ID: ins.ID}
	if ins.Config != nil {
		for p := range ins.Config.ExposedPorts {
			info.ExposedPorts = append(info.ExposedPorts, string(p))
		}
		slices.Sort(info.ExposedPorts)
	}
	return info, nil
}

func (d *dockerEngine) PullImage(ctx context.Context, ref, auth string) error {
	d.negotiate(ctx)
	rc, err := d.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return classify(err)
	}
	defer rc.Close()
	// The engine reports failures inside the stream; the call itself succeeded.
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("read progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

func (d *dockerEngine) RemoveImage(ctx context.Context, ref string) error {
	d.negotiate(ctx)
	_, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	return classify(err)
}

func (d *dockerEngine) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	d.negotiate(ctx)
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, p := range spec.Ports {
		port := nat.Port(strconv.Itoa(p) + "/tcp")
		exposed[port] = struct{}{}
		// HostPort "" publishes on a free port of the engine's choosing.
		bindings[port] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: ""}}
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Env:          spec.Env,
		User:         spec.User,
		ExposedPorts: exposed,
		Labels:       spec.Labels,
	}
	if len(spec.Cmd) > 0 {
		cfg.Cmd = slices.Clone(spec.Cmd)
	}
	host := &container.HostConfig{
		PortBindings:  bindings,
		Binds:         slices.Clone(spec.Binds),
		NetworkMode:   container.NetworkMode(spec.Network),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Resources:     container.Resources{Memory: spec.Memory, NanoCPUs: spec.NanoCPUs},
	}
	created, err := d.cli.ContainerCreate(ctx, cfg, host, nil, nil, spec.Name)
	if err != nil {
		return "", classify(err)
	}
	return created.ID, nil
}

func (d *dockerEngine) StartContainer(ctx context.Context, id string) error {
	d.negotiate(ctx)
	err := d.cli.ContainerStart(ctx, id, container.StartOptions{})
	if err == nil {
		return nil
	}
	if c := classify(err); c != err {
		return c
	}
	if cannotRun(err) {
		return errmark.With(err, ErrCannotRun)
	}
	return err
}

func (d *dockerEngine) InspectContainer(ctx context.Context, id string) (ContainerInfo, error) {
	d.negotiate(ctx)
	ins, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return ContainerInfo{}, classify(err)
	}
	info := ContainerInfo{ID: ins.ID}
	if ins.Config != nil {
		info.Labels = ins.Config.Labels
	}
	if ins.ContainerJSONBase != nil {
		info.Name = strings.TrimPrefix(ins.Name, "/")
		info.Image = ins.Image
		info.RestartCount = ins.RestartCount
		if st := ins.State; st != nil {
			info.Status = string(st.Status)
			info.Running, info.Restarting, info.Pid = st.Running, st.Restarting, st.Pid
			info.ExitCode, info.OOMKilled, info.Error = st.ExitCode, st.OOMKilled, st.Error
			if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && t.Year() > 1 {
				info.StartedAt = t
			}
		}
	}
	if ins.NetworkSettings != nil {
		for port, bs := range ins.NetworkSettings.Ports {
			if port.Proto() != "tcp" {
				continue
			}
			for _, b := range bs {
				if b.HostPort != "" && (b.HostIP == "127.0.0.1" || b.HostIP == "0.0.0.0" || b.HostIP == "") {
					if info.Ports == nil {
						info.Ports = map[int]string{}
					}
					info.Ports[port.Int()] = net.JoinHostPort("127.0.0.1", b.HostPort)
					break
				}
			}
		}
	}
	return info, nil
}

func (d *dockerEngine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	d.negotiate(ctx)
	secs := int(timeout.Round(time.Second) / time.Second)
	return classify(d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}))
}

func (d *dockerEngine) RemoveContainer(ctx context.Context, id string) error {
	d.negotiate(ctx)
	return classify(d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}))
}

func (d *dockerEngine) ListContainers(ctx context.Context, labels map[string]string) ([]ContainerInfo, error) {
	d.negotiate(ctx)
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, classify(err)
	}
	out := make([]ContainerInfo, 0, len(list))
	for _, s := range list {
		info := ContainerInfo{ID: s.ID, Image: s.Image, Labels: s.Labels, Status: string(s.State), Running: s.State == "running"}
		if len(s.Names) > 0 {
			info.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, info)
	}
	return out, nil
}

func (d *dockerEngine) Logs(ctx context.Context, id string, lines int) (string, error) {
	d.negotiate(ctx)
	rc, err := d.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)})
	if err != nil {
		return "", classify(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 16<<10)); err != nil && out.Len() == 0 {
		return "", err
	}
	return out.String(), nil
}

func (d *dockerEngine) Events(ctx context.Context, labels map[string]string) (<-chan ContainerEvent, <-chan error) {
	d.negotiate(ctx)
	args := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionDie)), filters.Arg("event", string(events.ActionStart)))
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	msgs, errs := d.cli.Events(ctx, events.ListOptions{Filters: args})
	out := make(chan ContainerEvent)
	outErr := make(chan error, 1)
	go func() {
		for {
			select {
			case m := <-msgs:
				select {
				case out <- ContainerEvent{ID: m.Actor.ID, Action: string(m.Action)}:
				case <-ctx.Done():
					outErr <- ctx.Err()
					return
				}
			case err := <-errs:
				outErr <- classify(err)
				return
			}
		}
	}()
	return out, outErr
}

func (d *dockerEngine) Close() error { return d.cli.Close() }

var _ Engine = (*dockerEngine)(nil)
