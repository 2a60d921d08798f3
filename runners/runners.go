// Package runners defines what a runner is to the agent. Its words:
//
//   - Runner: one app's workload manager (a server process, static files, containers).
//   - Deployment: one release made ready on disk (or an image reference) for a runner.
//   - Activate: the atomic switch of the app's `current` link to a deployment.
//
// This package holds the interface; it imports none of the implementations.
package runners

import (
	"context"
	"errors"
	"log/slog"
	"os"
)

// Deployment is one release handed to a runner.
type Deployment struct {
	// Version is the tag as published ("v1.2.3").
	Version string
	// Dir is the extracted release directory (file runners). Empty for image runners.
	Dir string
	// Image is the reference to run, pinned by digest (image runners).
	Image string
	// Activate atomically points the app's `current` link at Dir. A runner calls it
	// once the new release is ready to be the current one (assets: at once; server:
	// after the new generation is healthy). Nil on Resume.
	Activate func() error
	// Rollback points `current` back at the release that was current before
	// Activate. A runner whose deploy fails after Activate calls it. Nil on Resume.
	Rollback func() error
}

// StopReason says why a runner is being stopped; runners may treat them differently.
type StopReason string

const (
	// AppRemoved: the app was removed from the config file (or changed and is
	// being restarted with new settings). Its workload is stopped.
	AppRemoved StopReason = "app-removed"
	// AgentShutdown: the agent process is stopping (SIGINT/SIGTERM).
	AgentShutdown StopReason = "agent-shutdown"
	// Reconfigured: the app's runner block changed and a new runner of the
	// same kind takes over at once with the new settings. A runner whose
	// workload can be adopted (containers) leaves it for the new runner, which
	// replaces it with a rolling update; others stop it.
	Reconfigured StopReason = "reconfigured"
	// AgentUpgrade: the agent process is stopping and its next life adopts the
	// workload (agent { keep_apps_running_on_stop = true }). Runners leave the
	// workload running and recorded; the server runner's next Resume adopts it.
	AgentUpgrade StopReason = "agent-upgrade"
)

// Runner manages one app's workload.
//
// Contract:
//   - Constructors do no I/O.
//   - The agent calls Resume once, then Deploy any number of times, then Stop once,
//     all from the app's goroutine: never two at once.
//   - Resume brings up the workload of the deployment already current after an agent
//     restart (Dir points at `current`'s target); it downloads nothing.
//   - Deploy makes d the running release. If it returns an error, `current` and the
//     previous workload must be as they were before the call (a runner that already
//     called Activate calls Rollback).
//   - Stop ends the workload for the given reason and returns when it has ended or
//     ctx is done.
type Runner interface {
	Resume(ctx context.Context, d Deployment) error
	Deploy(ctx context.Context, d Deployment) error
	Stop(ctx context.Context, why StopReason) error
}

// Input says what a runner needs from a release.
type Input string

const (
	// Files: the artifact is downloaded, verified and extracted into a release directory.
	Files Input = "files"
	// Image: the release is an image reference; nothing is downloaded by the agent.
	Image Input = "image"
)

// Options are the per-app things a runner is built with.
type Options struct {
	// Logger is already tagged with the app and runner.
	Logger *slog.Logger
	// AppDir is <state_dir>/apps/<app>.
	AppDir string
	// FDStore, when set, keeps descriptors across the agent's restarts
	// (systemd's file descriptor store, internal/fdstore). Shared by every app.
	FDStore FDStore
}

// FDStore keeps descriptors, such as listening sockets, while the agent
// restarts. Its methods are safe for concurrent use; a name is a runner's own
// ("<app>/<port>").
type FDStore interface {
	// Take returns the descriptor an earlier agent life stored under name, or
	// nil; each once. The caller owns it.
	Take(name string) *os.File
	// Put stores a copy of f under name.
	Put(name string, f *os.File) error
	// Remove drops what is stored under name.
	Remove(name string) error
	// Names are the names of what an earlier agent life stored and was not
	// taken yet.
	Names() []string
}

// Workload is what a runner with a process tells about it, for status and metrics.
type Workload struct {
	Running      bool `json:"running"`
	PID          int  `json:"pid,omitempty"`
	Restarts     int  `json:"restarts"`
	CrashLooping bool `json:"crash_looping"`
}

// Observable is implemented by runners that have a workload to report (server,
// container). It may be called from any goroutine at any time.
type Observable interface {
	Workload() Workload
}

// ErrBadRelease is wrapped by a runner's Deploy error when the release itself
// is at fault (it fails its health check, exits, crashes within the crash
// window, cannot be started from its files), as opposed to the host (a port in
// use, the Docker engine unreachable). The agent records such a version as bad
// and does not retry it; other errors are retried with backoff.
var ErrBadRelease = errors.New("bad release")
