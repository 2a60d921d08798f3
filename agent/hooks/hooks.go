// Package hooks runs an app's deployment hooks: shell commands the operator
// declares in the app's `hooks {}` block. Its words:
//
//   - Hook: one command with its timeout ("before_deploy", "after_deploy").
//   - Env: what the hook is told about the deploy, as DEWY_* environment variables.
//     A hook's environment is clean (Environ): PATH, HOME, LANG, TZ, USER, the
//     DEWY_* variables and the hook block's env, nothing else of the agent's.
//   - Scrubber: the secrets the agent knows, removed from a hook's output
//     before it is logged or put into a notification.
//   - Result: how the run went (exit code, duration, the tail of its output),
//     kept short enough to put in a notification.
//
// The agent runs two hooks per deploy: before_deploy once the artifact is
// downloaded, verified and extracted, before anything is switched (a failure
// aborts the deploy and changes nothing), and after_deploy once the new
// version is live and healthy (a failure is reported; the deploy stands).
//
// A hook runs as `/bin/sh -c <command>` in a process group of its own. At its
// timeout, or when the caller's context is cancelled, the whole group gets
// SIGTERM and, after a short grace, SIGKILL, so nothing it started is left
// running. When the shell exits on its own, what it left in its group gets
// SIGTERM too (and SIGKILL if it still holds the output pipes after the grace):
// a hook runs to completion, and a process meant to outlive it must detach
// itself (setsid) and close its output.
//
// Output is bounded: lines are cut at MaxLineBytes, at most MaxLoggedLines
// are logged, and only the tail is kept, so a hook that prints 100 MB costs
// a few kilobytes of memory.
//
// Run starts no goroutine that outlives it.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/procgroup"
)

// Defaults for a Hook's zero fields.
const (
	// DefaultTimeout bounds a hook that sets no timeout.
	DefaultTimeout = 5 * time.Minute
	// DefaultKillGrace is the wait between SIGTERM and SIGKILL.
	DefaultKillGrace = 3 * time.Second
)

// Bounds of what Run keeps of a hook's output for Result.Output.
const (
	// TailLines is the most lines Result.Output holds.
	TailLines = 20
	// TailBytes is the most bytes Result.Output holds.
	TailBytes = 2 << 10
	// MaxLineBytes is the longest line logged or kept; longer lines are cut.
	MaxLineBytes = 4 << 10
	// MaxLoggedLines is the most output lines one run logs; the tail is
	// still kept past it.
	MaxLoggedLines = 1000
)

// ErrTimedOut is wrapped by the error Run returns when a hook ran past its
// timeout: "before_deploy hook timed out after 5m0s".
var ErrTimedOut = errors.New("timed out")

// Hook is one command to run.
type Hook struct {
	// Command is run with `/bin/sh -c`.
	Command string
	// Timeout bounds the run; zero means DefaultTimeout.
	Timeout time.Duration
	// KillGrace is the wait between SIGTERM and SIGKILL; zero means
	// DefaultKillGrace.
	KillGrace time.Duration
	// Env are variables set for the hook besides PATH, HOME, LANG, TZ, USER
	// and the DEWY_* ones (see Environ); names starting with DEWY_ are
	// ignored.
	Env map[string]string
	// Scrub removes secrets from the hook's output before it is logged or
	// kept in Result.Output; nil removes nothing.
	Scrub *Scrubber
}

// Env is what a hook is told about the deploy it is part of. Vars lists the
// environment variables it becomes.
type Env struct {
	// App is the app's name in the config file (DEWY_APP).
	App string
	// Version is the version being deployed (DEWY_VERSION).
	Version string
	// PreviousVersion is the version deployed before, "" on the first deploy
	// (DEWY_PREVIOUS_VERSION).
	PreviousVersion string
	// ReleaseDir is the new release's directory (DEWY_RELEASE_DIR) and the
	// hook's working directory; "" for image releases, and then the hook runs
	// in the agent's working directory.
	ReleaseDir string
	// Registry is the app's registry URL (DEWY_REGISTRY). Any user info in it
	// is removed before the hook sees it.
	Registry string
}

// Vars returns e as KEY=value pairs. Every variable is present, empty when its
// field is.
func (e Env) Vars() []string {
	return []string{
		"DEWY_APP=" + e.App,
		"DEWY_VERSION=" + e.Version,
		"DEWY_PREVIOUS_VERSION=" + e.PreviousVersion,
		"DEWY_RELEASE_DIR=" + e.ReleaseDir,
		"DEWY_REGISTRY=" + StripUserInfo(e.Registry),
	}
}

// StripUserInfo returns raw without the user info of its authority
// ("s3://key:secret@host/x" becomes "s3://host/x"). A string that does not
// parse as a URL but looks like it holds credentials becomes "".
func StripUserInfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return ""
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// Result is how one hook run went.
type Result struct {
	// Name is the hook's name as passed to Run.
	Name string
	// ExitCode is the shell's exit status; -1 when it did not start or was
	// ended by a signal (as at a timeout).
	ExitCode int
	// Duration is from start to the shell's exit.
	Duration time.Duration
	// TimedOut is set when the hook was stopped at its timeout.
	TimedOut bool
	// Output is the end of what the hook wrote to stdout and stderr, at most
	// TailLines lines and TailBytes bytes, for notifications.
	Output string
}

// Run runs h and waits for it. name ("before_deploy") tags the log lines and
// errors. Each line the hook writes is logged at info with hook=<name> and
// stream=stdout|stderr. The error is nil only when the hook exited with status
// 0; otherwise it says why ("before_deploy hook exited with status 3",
// "... timed out after 5m0s", "... stopped: context canceled"), and the Result
// is filled in as far as the run got.
func Run(ctx context.Context, name string, h Hook, env Env, logger *slog.Logger) (Result, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	grace := h.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	res := Result{Name: name, ExitCode: -1}
	if strings.TrimSpace(h.Command) == "" {
		return res, fmt.Errorf("%s hook: no command", name)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%s hook not run: %w", name, context.Cause(ctx))
	}

	cmd := exec.Command("/bin/sh", "-c", h.Command)
	cmd.Env = Environ(os.Environ(), h.Env, env)
	cmd.Dir = env.ReleaseDir
	log := slog.New(h.Scrub.Handler(logger.Handler())).With("hook", name)
	start := time.Now()
	p, err := procgroup.Start(cmd, procgroup.Output{
		Logger:       log,
		Message:      "hook output",
		MaxLineBytes: MaxLineBytes,
		MaxLines:     MaxLoggedLines,
		TailLines:    TailLines,
		TailBytes:    TailBytes,
	})
	if err != nil {
		return res, fmt.Errorf("%s hook: %w", name, err)
	}
	log.Debug("hook started", "pid", p.Pid(), "timeout", timeout)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var stopErr error
	select {
	case <-p.Done():
	case <-timer.C:
		res.TimedOut = true
		stopErr = fmt.Errorf("%s hook %w after %s", name, ErrTimedOut, timeout)
		log.Debug("hook timed out; stopping its process group", "timeout", timeout)
		_ = p.Stop(context.Background(), syscall.SIGTERM, grace)
	case <-ctx.Done():
		stopErr = fmt.Errorf("%s hook stopped: %w", name, context.Cause(ctx))
		log.Debug("hook cancelled; stopping its process group")
		_ = p.Stop(context.Background(), syscall.SIGTERM, grace)
	}
	res.Duration = time.Since(start)

	// Stop whatever the shell left behind in its group, and read the output
	// to its end, within bounds.
	p.Drain(syscall.SIGTERM, grace)
	res.Output = h.Scrub.Scrub(p.Tail())

	ps := p.State()
	res.ExitCode = ps.ExitCode()
	if stopErr != nil {
		return res, stopErr
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return res, fmt.Errorf("%s hook killed by signal %s", name, ws.Signal())
	}
	if res.ExitCode != 0 {
		return res, fmt.Errorf("%s hook exited with status %d", name, res.ExitCode)
	}
	log.Info("hook finished", "took", res.Duration.Round(time.Millisecond))
	return res, nil
}
