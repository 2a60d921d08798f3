package container

import (
	"context"
	"errors"
	"time"
)

// Engine is the part of a container engine the runner uses: exactly the calls
// its rollout, monitor, adoption and image pruning make. The runner holds only
// this interface; the Docker engine is the implementation it makes by default
// (see New), and tests give it a fake (WithEngine).
//
// Contract:
//   - Every method may be called from several goroutines at once and must
//     return soon after ctx is done, with an error.
//   - An error about a container or image that does not exist wraps ErrNotFound;
//     an error because the engine cannot be reached wraps ErrEngineUnavailable.
//   - StartContainer's error wraps ErrCannotRun when the engine refuses to run
//     the image's process (no such executable, wrong architecture): the image's
//     fault, not the host's.
//   - Containers are created with the restart policy "unless stopped": the
//     engine restarts one whose process exits, also after the host reboots,
//     and may publish its ports on other host ports when it does.
//   - Close releases the engine's connections; the runner calls it only on an
//     engine it made itself.
type Engine interface {
	// Platform is the engine's "os/arch" ("linux/amd64").
	Platform(ctx context.Context) (string, error)

	// InspectImage describes an image the engine has.
	InspectImage(ctx context.Context, ref string) (ImageInfo, error)
	// PullImage makes the image present. auth is the registry credential in
	// the engine's X-Registry-Auth encoding, "" for anonymous pulls.
	PullImage(ctx context.Context, ref, auth string) error
	// RemoveImage removes the reference to the image (and the image when
	// nothing else references it).
	RemoveImage(ctx context.Context, ref string) error

	// CreateContainer creates a container and returns its ID; it does not
	// start it.
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	// StartContainer starts a created container.
	StartContainer(ctx context.Context, id string) error
	// InspectContainer is the container's current state.
	InspectContainer(ctx context.Context, id string) (ContainerInfo, error)
	// StopContainer sends the image's stop signal, waits up to timeout, then
	// kills. A stopped container is not restarted by the engine.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	// RemoveContainer removes the container (killing it if it runs) with its
	// anonymous volumes.
	RemoveContainer(ctx context.Context, id string) error
	// ListContainers lists every container, running or not, that carries all
	// the labels given (key=value).
	ListContainers(ctx context.Context, labels map[string]string) ([]ContainerInfo, error)
	// Logs returns the container's last lines of output (stdout and stderr).
	Logs(ctx context.Context, id string, lines int) (string, error)
	// Events reports, until ctx is done, when a container carrying all the
	// labels given exits ("die") or is started ("start"), also by the engine's
	// restart policy. Events are sent in order; the error channel gets one
	// error when the stream fails or ctx is done, and nothing more is sent.
	Events(ctx context.Context, labels map[string]string) (<-chan ContainerEvent, <-chan error)

	// Close releases the engine's connections.
	Close() error
}

// Errors an Engine's errors wrap, see Engine.
var (
	ErrNotFound          = errors.New("no such object")
	ErrEngineUnavailable = errors.New("container engine unavailable")
	ErrCannotRun         = errors.New("the engine cannot run the image")
)

// ImageInfo describes an image.
type ImageInfo struct {
	// ID is the engine's image ID.
	ID string
	// ExposedPorts are the ports the image declares, "8080/tcp" or "53/udp".
	ExposedPorts []string
}

// ContainerSpec is how to create one replica.
type ContainerSpec struct {
	// Name is the container's name.
	Name string
	// Image is the image reference to run.
	Image string
	// Labels are put on the container.
	Labels map[string]string
	// Env are "KEY=value" entries on top of the image's environment.
	Env []string
	// Cmd replaces the image's CMD when not empty.
	Cmd []string
	// User runs the process as "user", "uid" or "uid:gid"; "" is the image's.
	User string
	// Ports are TCP container ports, each published on 127.0.0.1 on a free
	// host port of the engine's choosing.
	Ports []int
	// Binds are Docker binds ("/host:/container[:ro]", "volume:/container").
	Binds []string
	// Network is the network to attach to; "" is the engine's default.
	Network string
	// Memory limits the container, in bytes; 0 is no limit.
	Memory int64
	// NanoCPUs limits the container's CPU, in billionths of a CPU; 0 is no limit.
	NanoCPUs int64
}

// ContainerInfo is a container's state as the engine reports it. ListContainers
// fills ID, Name, Image (the reference it was created from), Labels and
// Running; InspectContainer fills every field, Image being the image ID.
type ContainerInfo struct {
	ID, Name string
	Image    string
	Labels   map[string]string

	// Status is the engine's word: "created", "running", "restarting",
	// "exited", ...
	Status     string
	Running    bool
	Restarting bool
	Pid        int
	ExitCode   int
	OOMKilled  bool
	// Error is the engine's message when it failed to start the process.
	Error string
	// RestartCount is how often the engine restarted the container.
	RestartCount int
	// StartedAt is when the engine last started it; zero if never.
	StartedAt time.Time
	// Ports maps each published container TCP port to its host address
	// ("127.0.0.1:<port>"), while the container runs.
	Ports map[int]string
}

// ContainerEvent is one change of a container's state, see Engine.Events.
type ContainerEvent struct {
	// ID is the container's.
	ID string
	// Action is the engine's word: "die" when its process exited, "start"
	// when it was started.
	Action string
}
