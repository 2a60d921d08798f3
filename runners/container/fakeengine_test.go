package container

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeImage is what a fake image's process does. Its replicas are HTTP servers
// on 127.0.0.1 answering /version with Version, /health with Health (200 when
// 0) and /hold by waiting until the test releases it or the connection ends.
type fakeImage struct {
	Version string
	// Exposed are the image's declared ports ("8080/tcp").
	Exposed []string
	// Health is /health's status; 0 is 200.
	Health int
	// CannotRun makes StartContainer fail as an image of another architecture.
	CannotRun bool
	// ExitCode, when not 0, makes the process exit at once with it (and the
	// engine restart it: the container is seen restarting).
	ExitCode int
}

// fakeContainer is one container of the fake engine.
type fakeContainer struct {
	id, name  string
	spec      ContainerSpec
	img       *fakeImage
	imgID     string
	status    string // created, running, restarting, exited
	exitCode  int
	restarts  int
	pid       int
	startedAt time.Time
	servers   []*http.Server // one per published port while running
	// lingering are the ports of the last run while the engine restarts it:
	// they take connections and close them, as the engine's port proxy does.
	lingering []net.Listener
	ports     map[int]string
	conns     atomic.Int64 // connections accepted, over every run
}

// fakeEngine is an Engine in memory whose containers are real HTTP servers on
// 127.0.0.1, one per published port, on a new port each time they start.
type fakeEngine struct {
	t *testing.T

	down atomic.Bool // every call fails as an unreachable engine

	mu         sync.Mutex
	images     map[string]*fakeImage // in the registry, by reference
	present    map[string]bool       // pulled, by reference
	containers map[string]*fakeContainer
	removed    map[string]time.Time // container ID -> when removed
	creates    int
	starts     int
	nextID     int
	released   chan struct{}                             // closed by release: ends every /hold
	subs       map[chan ContainerEvent]map[string]string // event subscribers and their labels
	// beforeStop, when set, is called (without the lock) when the runner
	// stops or removes a container that exists, before it happens.
	beforeStop func(id string)
}

func newFakeEngine(t *testing.T) *fakeEngine {
	f := &fakeEngine{
		t:          t,
		images:     map[string]*fakeImage{},
		present:    map[string]bool{},
		containers: map[string]*fakeContainer{},
		removed:    map[string]time.Time{},
		released:   make(chan struct{}),
		subs:       map[chan ContainerEvent]map[string]string{},
	}
	t.Cleanup(f.shutdown)
	return f
}

// publish puts an image in the fake registry.
func (f *fakeEngine) publish(ref string, img fakeImage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[ref] = &img
}

// release ends every /hold request.
func (f *fakeEngine) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.released)
	f.released = make(chan struct{})
}

// shutdown closes every server: the end of the test.
func (f *fakeEngine) shutdown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.released)
	f.released = make(chan struct{})
	for _, c := range f.containers {
		f.halt(c)
	}
}

var errFakeDown = fmt.Errorf("%w: dial unix /var/run/docker.sock: connect: connection refused", ErrEngineUnavailable)

func (f *fakeEngine) check(ctx context.Context) error {
	if f.down.Load() {
		return errFakeDown
	}
	return ctx.Err()
}

func notFound(what string) error { return fmt.Errorf("%w: %s", ErrNotFound, what) }

func (f *fakeEngine) Platform(ctx context.Context) (string, error) {
	if err := f.check(ctx); err != nil {
		return "", err
	}
	return "linux/amd64", nil
}

func (f *fakeEngine) InspectImage(ctx context.Context, ref string) (ImageInfo, error) {
	if err := f.check(ctx); err != nil {
		return ImageInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[ref]
	if !ok || !f.present[ref] {
		// The runner inspects adopted containers' images by image ID.
		for r, i := range f.images {
			if "sha256:"+r == ref && f.present[r] {
				img, ok = i, true
			}
		}
		if !ok {
			return ImageInfo{}, notFound("image " + ref)
		}
	}
	return ImageInfo{ID: "sha256:" + ref, ExposedPorts: slices.Clone(img.Exposed)}, nil
}

func (f *fakeEngine) PullImage(ctx context.Context, ref, auth string) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.images[ref]; !ok {
		return fmt.Errorf("manifest for %s not found: manifest unknown", ref)
	}
	f.present[ref] = true
	return nil
}

func (f *fakeEngine) RemoveImage(ctx context.Context, ref string) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.present[ref] {
		return notFound("image " + ref)
	}
	for _, c := range f.containers {
		if c.spec.Image == ref {
			return fmt.Errorf("conflict: unable to remove %s: container %s is using it", ref, c.id)
		}
	}
	delete(f.present, ref)
	return nil
}

func (f *fakeEngine) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	if err := f.check(ctx); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[spec.Image]
	if !ok || !f.present[spec.Image] {
		return "", notFound("image " + spec.Image)
	}
	for _, c := range f.containers {
		if c.name == spec.Name {
			return "", fmt.Errorf("conflict: the container name %q is already in use", spec.Name)
		}
	}
	f.nextID++
	f.creates++
	c := &fakeContainer{
		id:     fmt.Sprintf("%064x", f.nextID),
		name:   spec.Name,
		spec:   spec,
		img:    img,
		imgID:  "sha256:" + spec.Image,
		status: "created",
	}
	c.spec.Labels = maps.Clone(spec.Labels)
	f.containers[c.id] = c
	return c.id, nil
}

func (f *fakeEngine) StartContainer(ctx context.Context, id string) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return notFound("container " + id)
	}
	f.starts++
	if c.img.CannotRun {
		c.status, c.exitCode = "created", 128
		return fmt.Errorf("%w: failed to create task: exec /app: exec format error", ErrCannotRun)
	}
	f.run(c)
	return nil
}

// run starts the container's process: its servers, or its exit.
// Callers hold f.mu.
func (f *fakeEngine) run(c *fakeContainer) {
	c.startedAt = time.Now()
	c.pid = 1000 + f.nextID*10 + c.restarts
	f.emit(c, "start")
	if c.img.ExitCode != 0 {
		// Exits at once; the engine's restart policy brings it back, again and
		// again.
		c.status, c.exitCode, c.restarts = "restarting", c.img.ExitCode, c.restarts+1
		f.emit(c, "die")
		return
	}
	c.status, c.exitCode = "running", 0
	c.ports = map[int]string{}
	for _, p := range c.spec.Ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.t.Errorf("fake engine: listen: %v", err)
			continue
		}
		srv := &http.Server{
			Handler: f.handler(c),
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					c.conns.Add(1)
				}
			},
		}
		go srv.Serve(ln)
		c.servers = append(c.servers, srv)
		c.ports[p] = ln.Addr().String()
	}
}

func (f *fakeEngine) handler(c *fakeContainer) http.Handler {
	mux := http.NewServeMux()
	img := c.img
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, img.Version)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if img.Health != 0 {
			w.WriteHeader(img.Health)
		}
		fmt.Fprint(w, "health of ", img.Version)
	})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		released := f.released
		f.mu.Unlock()
		w.(http.Flusher).Flush() // the client learns its request was taken
		select {
		case <-released:
			fmt.Fprint(w, img.Version)
		case <-r.Context().Done():
		}
	})
	return mux
}

// halt ends the container's process. Callers hold f.mu.
func (f *fakeEngine) halt(c *fakeContainer) {
	for _, s := range c.servers {
		s.Close()
	}
	for _, ln := range c.lingering {
		ln.Close()
	}
	c.servers, c.ports, c.lingering = nil, nil, nil
}

// crash makes a running container's process exit with code; the engine
// restarts it at once (on new ports), as the restart policy says.
func (f *fakeEngine) crash(id string, code int) {
	f.crashHeld(id, code)
	f.restarted(id)
}

// crashHeld makes a running container's process exit with code and leaves the
// container restarting until restarted is called. Meanwhile its old ports
// take connections and close them at once.
func (f *fakeEngine) crashHeld(id string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		f.t.Fatalf("fake engine: crash %s: no such container", id)
	}
	old := slices.Collect(maps.Values(c.ports))
	f.halt(c)
	for _, a := range old {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			continue // taken by someone else meanwhile: it refuses, fine too
		}
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
		c.lingering = append(c.lingering, ln)
	}
	c.status, c.exitCode = "restarting", code
	c.restarts++
	f.emit(c, "die")
}

// restarted ends the restart crashHeld began: the process runs again on new
// ports.
func (f *fakeEngine) restarted(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		f.t.Fatalf("fake engine: restart %s: no such container", id)
	}
	f.halt(c)
	f.run(c)
}

// emit sends an event to the subscribers whose labels the container has.
// Callers hold f.mu.
func (f *fakeEngine) emit(c *fakeContainer, action string) {
	for ch, labels := range f.subs {
		match := true
		for k, v := range labels {
			if c.spec.Labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		select {
		case ch <- ContainerEvent{ID: c.id, Action: action}:
		default:
			f.t.Errorf("fake engine: event %s of %s dropped: the subscriber does not read", action, c.id[:8])
		}
	}
}

func (f *fakeEngine) Events(ctx context.Context, labels map[string]string) (<-chan ContainerEvent, <-chan error) {
	errs := make(chan error, 1)
	if err := f.check(ctx); err != nil {
		errs <- err
		return nil, errs
	}
	ch := make(chan ContainerEvent, 256)
	f.mu.Lock()
	f.subs[ch] = maps.Clone(labels)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
		errs <- ctx.Err()
	}()
	return ch, errs
}

func (f *fakeEngine) InspectContainer(ctx context.Context, id string) (ContainerInfo, error) {
	if err := f.check(ctx); err != nil {
		return ContainerInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return ContainerInfo{}, notFound("container " + id)
	}
	info := f.info(c)
	info.Image = c.imgID
	return info, nil
}

// info is the container as InspectContainer reports it. Callers hold f.mu.
func (f *fakeEngine) info(c *fakeContainer) ContainerInfo {
	info := ContainerInfo{
		ID:           c.id,
		Name:         c.name,
		Image:        c.spec.Image,
		Labels:       maps.Clone(c.spec.Labels),
		Status:       c.status,
		Running:      c.status == "running",
		Restarting:   c.status == "restarting",
		ExitCode:     c.exitCode,
		RestartCount: c.restarts,
		StartedAt:    c.startedAt,
	}
	if info.Running {
		info.Pid = c.pid
		info.Ports = maps.Clone(c.ports)
	}
	return info
}

func (f *fakeEngine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	return f.stopping(ctx, id, func(c *fakeContainer) {
		if c.status == "running" || c.status == "restarting" {
			f.halt(c)
			c.status, c.exitCode = "exited", 0
			f.emit(c, "die")
		}
	})
}

// stopping is the start of StopContainer and RemoveContainer: the context
// check and the beforeStop hook for a container that exists, then fn with the
// container, under the lock.
func (f *fakeEngine) stopping(ctx context.Context, id string, fn func(c *fakeContainer)) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	hook := f.beforeStop
	_, ok := f.containers[id]
	f.mu.Unlock()
	if ok && hook != nil {
		hook(id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return notFound("container " + id)
	}
	fn(c)
	return nil
}

func (f *fakeEngine) RemoveContainer(ctx context.Context, id string) error {
	return f.stopping(ctx, id, func(c *fakeContainer) {
		f.halt(c)
		delete(f.containers, id)
		f.removed[id] = time.Now()
	})
}

func (f *fakeEngine) ListContainers(ctx context.Context, labels map[string]string) ([]ContainerInfo, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ContainerInfo
	for _, c := range f.containers {
		match := true
		for k, v := range labels {
			if c.spec.Labels[k] != v {
				match = false
			}
		}
		if match {
			i := f.info(c)
			out = append(out, ContainerInfo{ID: i.ID, Name: i.Name, Image: i.Image, Labels: i.Labels, Status: i.Status, Running: i.Running})
		}
	}
	return out, nil
}

func (f *fakeEngine) Logs(ctx context.Context, id string, lines int) (string, error) {
	if err := f.check(ctx); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return "", notFound("container " + id)
	}
	out := "starting " + c.img.Version + "\n"
	if c.exitCode != 0 {
		out += "fatal: exiting with code " + strconv.Itoa(c.exitCode) + "\n"
	}
	return out, nil
}

func (f *fakeEngine) Close() error { return nil }

// byVersion lists the IDs of the containers of a version (label), running or not.
func (f *fakeEngine) byVersion(version string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, c := range f.containers {
		if c.spec.Labels[LabelVersion] == version {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// all lists every container's ID.
func (f *fakeEngine) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.containers))
}

// container returns a container by ID, nil when removed.
func (f *fakeEngine) container(id string) *fakeContainer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.containers[id]
}

// counts returns how many containers were created and started so far.
func (f *fakeEngine) counts() (creates, starts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates, f.starts
}

// removedAt is when the container was removed, zero if it was not.
func (f *fakeEngine) removedAt(id string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed[id]
}

var _ Engine = (*fakeEngine)(nil)
