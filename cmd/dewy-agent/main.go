// Command dewy-agent is a pull-based continuous-deployment agent: it reads an HCL
// file declaring apps, watches each app's registry and deploys new releases.
//
// main only wires: flags, logger, signals, agent.Run.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/internal/fdstore"
	"github.com/dewy-agent/dewy-agent/internal/memtrim"
	"github.com/dewy-agent/dewy-agent/runners/server"
)

// Build information, set with -ldflags "-X main.version=v1.2.3 -X
// main.commit=abc1234 -X main.date=2026-01-02T03:04:05Z" (the Makefile does).
var (
	version = ""
	commit  = ""
	date    = ""
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // runtime or config error
	exitUsage = 2 // bad command line
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// configFlags parses the flags every config-reading command shares and loads
// the file (see load). ok is false when the command must end; code is then
// its exit code (0 after -h, 1 when the file has errors).
func configFlags(name string, args []string, stderr io.Writer) (path string, cfg *config.File, code int, ok bool) {
	path, _, code, ok = configFlagsWith(name, args, stderr, false)
	if !ok {
		return path, nil, code, false
	}
	if cfg, ok = load(path, stderr); !ok {
		return path, nil, exitError, false
	}
	return path, cfg, exitOK, true
}

// configFlagsWith is configFlags with run's -allow-empty when withAllowEmpty is true.
func configFlagsWith(name string, args []string, stderr io.Writer, withAllowEmpty bool) (path string, allowEmpty bool, code int, ok bool) {
	fs := newFlags(name, stderr)
	p := fs.String("config", "", "path of the config file: HCL, or JSON/YAML by its extension (required)")
	var empty *bool
	if withAllowEmpty {
		empty = fs.Bool("allow-empty", false, "start even when the file is empty or declares no app (for config management that fills it later)")
	}
	if code, ok := parseFlags(fs, args, stderr, "-config"); !ok {
		return "", false, code, false
	}
	if *p == "" {
		fmt.Fprintf(stderr, "dewy-agent %s: -config is required, e.g. -config /etc/dewy-agent/dewy.hcl\n", name)
		return "", false, exitUsage, false
	}
	return *p, empty != nil && *empty, exitOK, true
}

// load reads and validates the config file, printing diagnostics (warnings too).
func load(path string, stderr io.Writer) (*config.File, bool) {
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent: %v\n", err)
		return nil, false
	}
	cfg, diags := config.Parse(path, src)
	if len(diags) > 0 {
		config.WriteDiagnostics(stderr, path, src, diags, isTerminal(stderr))
	}
	return cfg, !diags.HasErrors()
}

// isTerminal reports whether w is a terminal, for coloured diagnostics.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == ""
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	path, cfg, code, ok := configFlags("validate", args, stderr)
	if !ok {
		return code
	}
	fmt.Fprintf(stdout, "%s: ok (%d apps)\n", path, len(cfg.Apps))
	return exitOK
}

func cmdPlan(args []string, stdout, stderr io.Writer) int {
	_, cfg, code, ok := configFlags("plan", args, stderr)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	items := agent.Plan(ctx, cfg, agent.Options{Logger: newLogger(cfg.Agent, new(slog.LevelVar), stderr)})
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tRUNNER\tDEPLOYED\tNEWEST\tARTIFACT\tACTION")
	failed := false
	for _, it := range items {
		action := it.Action
		if action == "skip" {
			action = "skip (bad: " + firstLine(it.Bad) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.App, it.Runner, dash(it.Deployed), dash(it.Newest), dash(it.Artifact), action)
	}
	tw.Flush()
	for _, it := range items {
		if it.Fleet != "" {
			fmt.Fprintf(stdout, "%s: fleet: %s\n", it.App, it.Fleet)
		}
	}
	for _, it := range items {
		if it.Err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", it.App, it.Err)
			failed = failed || it.Action == "error" || it.Action == "no release"
		}
	}
	if failed {
		return exitError
	}
	return exitOK
}

func cmdRun(args []string, _, stderr io.Writer) int {
	path, allowEmpty, code, ok := configFlagsWith("run", args, stderr, true)
	if !ok {
		return code
	}
	cfg, ok := load(path, stderr)
	if !ok {
		return exitError
	}
	if len(cfg.Apps) == 0 && !allowEmpty {
		fmt.Fprintf(stderr, "dewy-agent: %s declares no app, so the agent would have nothing to do; add an app block, or start with -allow-empty if config management fills the file later\n", path)
		return exitError
	}
	level := new(slog.LevelVar)
	logger := newLogger(cfg.Agent, level, stderr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := agent.Options{Logger: logger, Level: level, Watch: true, Version: agentVersion(), AllowEmpty: allowEmpty}
	// The listening sockets systemd kept for the agent (LISTEN_FDS), and where
	// to keep them next time (NOTIFY_SOCKET).
	store := fdstore.FromEnv()
	opts.FDStore = store
	for _, name := range foreignSockets(store.Names(), cfg.Apps) {
		logger.Info("dropping the stored sockets of an app no longer run by a server runner", "name", name)
		_ = store.Remove(name)
	}
	if os.Getenv("NOTIFY_SOCKET") != "" {
		// Started by systemd with Type=notify: say when the agent is ready,
		// reloading and stopping, and feed the watchdog when WatchdogSec= is set.
		opts.Notifier = sdNotifier{}
		if d, err := daemon.SdWatchdogEnabled(false); err == nil {
			opts.Watchdog = d
		}
	}
	a := agent.New(cfg, opts)

	stopSigs := make(chan os.Signal, 2)
	signal.Notify(stopSigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-stopSigs
		logger.Info("signal received; stopping", "signal", s.String())
		cancel()
		s = <-stopSigs
		logger.Error("second signal; exiting at once", "signal", s.String())
		os.Exit(exitError)
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP received; reloading the config file")
				a.Reload(true) // the outcome is logged and shown in status
			}
		}
	}()

	go trimAfterStart(ctx, logger)

	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("agent failed", "err", err)
		return exitError
	}
	return exitOK
}

// newLogger builds the agent's logger from the agent block. level is set from
// log_level; a reload may change it later.
func newLogger(a config.Agent, level *slog.LevelVar, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(a.LogLevel)) // validated by config
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if a.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// cmdVersion prints the version and what the binary was built from.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if code, ok := noArguments("version", args, stderr); !ok {
		return code
	}
	fmt.Fprintln(stdout, "dewy-agent", agentVersion())
	fmt.Fprintln(stdout, "  commit:    ", buildSetting(commit, "vcs.revision"))
	fmt.Fprintln(stdout, "  built:     ", buildSetting(date, "vcs.time"))
	fmt.Fprintln(stdout, "  go:        ", runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	kinds, schemes := config.Compiled()
	fmt.Fprintln(stdout, "  registries:", strings.Join(schemes, ", "))
	fmt.Fprintln(stdout, "  runners:   ", strings.Join(kinds, ", "))
	return exitOK
}

// buildSetting is v when the build set it, else the Go toolchain's record of
// key (from a build inside a git checkout), else "unknown".
func buildSetting(v, key string) string {
	if v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == key && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func agentVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// sdNotifier sends sd_notify messages to the socket systemd names in
// NOTIFY_SOCKET.
type sdNotifier struct{}

func (sdNotifier) Notify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

// firstLine is s up to its first line break, cut to 60 characters.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// trimSettle is how long after start the agent hands back the memory only
// start-up used: by then the first polls and deploys of even a few thousand
// apps are done (see docs/benchmarks.md).
const trimSettle = 30 * time.Second

// trimAfterStart pages out the executable's start-up-only code and data and
// returns free heap to the kernel, once, trimSettle after start.
func trimAfterStart(ctx context.Context, logger *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(trimSettle):
	}
	r, err := memtrim.Trim()
	if err != nil {
		logger.Debug("start-up memory not trimmed", "err", err)
		return
	}
	logger.Debug("start-up memory trimmed", "rss_before", r.Before, "rss_after", r.After, "regions", r.Regions)
}

// foreignSockets are the names of stored sockets ("<app>/<port>") that no
// server runner of apps will take: the app is gone from the file or has
// another runner kind now. (Each server runner drops its own names of ports
// it no longer has.)
func foreignSockets(names []string, apps []config.App) []string {
	var out []string
	for _, name := range names {
		app, _, _ := strings.Cut(name, "/")
		if !slices.ContainsFunc(apps, func(a config.App) bool {
			return a.Name == app && a.Runner != nil && a.Runner.Kind() == server.KindName
		}) {
			out = append(out, name)
		}
	}
	return out
}
