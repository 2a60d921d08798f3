package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/runners"
)

// ReloadStatus is the outcome of the last config load, shown in status.
type ReloadStatus struct {
	Time   time.Time `json:"time"`
	Result string    `json:"result"` // success | failure | unchanged
	// Error holds the diagnostics of a failed reload, as printed by validate.
	Error string `json:"error,omitempty"`
	// Added, Removed, Restarted and Unchanged count apps by what the reload did.
	Added     int `json:"added"`
	Removed   int `json:"removed"`
	Restarted int `json:"restarted"`
	Unchanged int `json:"unchanged"`
	// NeedsRestart lists agent settings that changed in the file but apply only
	// when the agent restarts; the running values are kept.
	NeedsRestart []string `json:"needs_restart,omitempty"`
}

// ErrReloadFailed is wrapped by Reload when the file has errors; nothing changed.
var ErrReloadFailed = errors.New("config reload failed; the running configuration is unchanged")

// Reload reads the config file again and applies the difference: removed apps are
// stopped, changed apps restarted, added apps started; unchanged apps are not
// touched. A file with any error changes nothing. With force false, a file whose
// content is the same as the last one loaded is skipped.
func (a *Agent) Reload(force bool) (ReloadStatus, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.runCtx == nil || a.runCtx.Err() != nil {
		return ReloadStatus{}, errors.New("agent is not running")
	}
	a.mu.Lock()
	old := a.cfg
	a.mu.Unlock()
	logger := a.opts.Logger

	src, err := os.ReadFile(old.Path)
	if err == nil && !force && bytes.Equal(src, a.src) {
		logger.Debug("config unchanged; reload skipped")
		return ReloadStatus{Time: a.opts.Now(), Result: "unchanged"}, nil
	}
	a.reloads.Add(1)
	a.notifyReloading()
	defer a.notifyReady()
	var cfg *config.File
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("read %s: %v", old.Path, err)
	case len(bytes.TrimSpace(src)) == 0 && !a.opts.AllowEmpty:
		// A file being truncated and rewritten in place is empty for a moment;
		// applying it would stop every app.
		msg = fmt.Sprintf("%s is empty; ignored (start the agent with -allow-empty to let an empty file remove every app)", old.Path)
	default:
		var diags hcl.Diagnostics
		cfg, diags = config.Parse(old.Path, src)
		if diags.HasErrors() {
			var b strings.Builder
			config.WriteDiagnostics(&b, old.Path, src, diags, false)
			msg = strings.TrimSpace(b.String())
			cfg = nil
		} else if len(cfg.Apps) == 0 && !a.opts.AllowEmpty {
			msg, cfg = fmt.Sprintf("%s declares no app; ignored, the running apps are kept (start the agent with -allow-empty to let a file without apps remove every app)", old.Path), nil
		}
	}
	a.src = src
	if cfg == nil {
		st := ReloadStatus{Time: a.opts.Now(), Result: "failure", Error: msg}
		a.setReload(st)
		a.metrics.reloads.WithLabelValues("failure").Inc()
		a.metrics.lastReloadOK.Set(0)
		logger.Error("config reload failed; keeping the running configuration", "config", old.Path, "diagnostics", msg)
		return st, fmt.Errorf("%w:\n%s", ErrReloadFailed, msg)
	}

	st := a.apply(old, cfg)
	a.setReload(st)
	a.metrics.reloads.WithLabelValues("success").Inc()
	a.metrics.lastReloadOK.Set(1)
	a.metrics.lastReloadTime.SetToCurrentTime()
	logger.Info("config reloaded", "added", st.Added, "removed", st.Removed, "restarted", st.Restarted,
		"unchanged", st.Unchanged, "needs_restart", strings.Join(st.NeedsRestart, ","))
	return st, nil
}

// apply moves the running agent from old to cfg. The caller holds reloadMu.
func (a *Agent) apply(old, cfg *config.File) ReloadStatus {
	st := ReloadStatus{Time: a.opts.Now(), Result: "success"}

	// Agent settings: what can change live does; the rest keeps its running value.
	if cfg.Agent.StateDir != old.Agent.StateDir {
		st.NeedsRestart = append(st.NeedsRestart, "state_dir")
		cfg.Agent.StateDir = old.Agent.StateDir
	}
	if cfg.Agent.LogFormat != old.Agent.LogFormat {
		st.NeedsRestart = append(st.NeedsRestart, "log_format")
		cfg.Agent.LogFormat = old.Agent.LogFormat
	}
	if cfg.Agent.LogLevel != old.Agent.LogLevel {
		if a.opts.Level != nil {
			var l = a.opts.Level.Level()
			if err := l.UnmarshalText([]byte(cfg.Agent.LogLevel)); err == nil {
				a.opts.Level.Set(l)
			}
		} else {
			st.NeedsRestart = append(st.NeedsRestart, "log_level")
			cfg.Agent.LogLevel = old.Agent.LogLevel
		}
	}
	a.adminToken.Store(&cfg.Agent.AdminToken) // before a new address is bound
	if !reflect.DeepEqual(cfg.Fleet, old.Fleet) {
		st.NeedsRestart = append(st.NeedsRestart, "fleet")
		cfg.Fleet = old.Fleet
	}
	if cfg.Agent.Admin != old.Agent.Admin {
		if err := a.moveAdmin(cfg.Agent.Admin); err != nil {
			a.opts.Logger.Error("admin address not changed", "admin", cfg.Agent.Admin, "err", err)
			st.NeedsRestart = append(st.NeedsRestart, "admin")
			cfg.Agent.Admin = old.Agent.Admin
		}
	}

	if !slices.Equal(cfg.Agent.Notify, old.Agent.Notify) {
		a.setAgentNotifier(cfg.Agent.Notify)
	}

	// Apps: diff by name. A changed app whose runner block is the same keeps its
	// runner (and so its process or containers): only its loop restarts.
	var stop, reconf, handed []*worker
	var start []int
	a.mu.Lock()
	for _, o := range old.Apps {
		if _, ok := cfg.App(o.Name); !ok {
			if w := a.workers[o.Name]; w != nil {
				stop = append(stop, w)
				delete(a.workers, o.Name)
			}
			st.Removed++
		}
	}
	for i, n := range cfg.Apps {
		o, existed := old.App(n.Name)
		w := a.workers[n.Name]
		switch {
		case existed && o.Equal(n) && w != nil:
			st.Unchanged++
			continue
		case existed:
			st.Restarted++
		default:
			st.Added++
		}
		if w != nil {
			switch {
			case reflect.DeepEqual(o.Runner, n.Runner):
				handed = append(handed, w)
			case o.Runner.Kind() == n.Runner.Kind():
				reconf = append(reconf, w)
			default:
				stop = append(stop, w)
			}
			delete(a.workers, n.Name)
		}
		start = append(start, i)
	}
	a.cfg = cfg
	a.mu.Unlock()
	a.queue.setSlots(parallelDeploys(cfg))

	// Removed apps, and apps whose runner kind changed: their workload stops
	// (see the package doc). A changed runner block of the same kind passes the
	// workload to the new runner where the runner can (containers).
	a.stopWorkers(stop, runners.AppRemoved)
	a.stopWorkers(reconf, runners.Reconfigured)
	a.stopWorkers(handed, handover)
	for _, w := range stop {
		if _, still := cfg.App(w.app.Name); !still {
			a.metrics.forget(w.app.Name)
		}
	}
	runnerOf := map[string]runners.Runner{}
	for _, w := range handed {
		runnerOf[w.app.Name] = w.runner
	}
	for _, i := range start {
		a.startAppWith(cfg, cfg.Apps[i], runnerOf[cfg.Apps[i].Name])
	}
	return st
}

func (a *Agent) setReload(st ReloadStatus) {
	a.mu.Lock()
	a.lastReload = st
	a.mu.Unlock()
}

// watch reloads the config file when it changes. It watches the file's folder, not
// the file, so every way tools write a file is seen: in-place writes, a temp file
// renamed over it, delete and recreate, and a symlink whose target is swapped. When
// the file is a symlink, the folder of its target is watched too. Bursts of events
// are debounced; a reload whose content is unchanged is skipped.
func (a *Agent) watch(ctx context.Context, path string) {
	logger := a.opts.Logger
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		logger.Error("config watcher not started; reload with SIGHUP or POST /reload", "err", err)
		return
	}
	defer fw.Close()
	dirs := watchDirs(path)
	for _, d := range dirs {
		if err := fw.Add(d); err != nil {
			logger.Error("config watcher: watch folder", "dir", d, "err", err)
		}
	}
	var fire <-chan time.Time
	stop := func() {}
	defer func() { stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			if a.watchSeen != nil {
				a.watchSeen(ev.Name)
			}
			if !relevant(ev, path, dirs) {
				continue
			}
			stop()
			fire, stop = a.opts.Clock.After(a.opts.Debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			logger.Warn("config watcher", "err", err)
		case <-fire:
			fire, stop = nil, func() {}
			// A symlinked file may now point into another folder.
			for _, d := range watchDirs(path) {
				fw.Add(d) // adding a watched folder again is a no-op
			}
			if _, err := a.Reload(false); err != nil && !errors.Is(err, ErrReloadFailed) {
				logger.Warn("config reload", "err", err)
			}
		}
	}
}

// watchDirs are the folders whose events can change what path reads: its own
// folder, and the folders along its symlink chain.
func watchDirs(path string) []string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	dirs := []string{filepath.Dir(abs)}
	if real, err := filepath.EvalSymlinks(abs); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	return dirs
}

// relevant says whether an event may have changed the config file. In the file's
// own folder only events on its name or on symlinks it goes through (such as a
// mounted volume's ..data) count; in a target's folder, any event does.
func relevant(ev fsnotify.Event, path string, dirs []string) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	abs, _ := filepath.Abs(path)
	if filepath.Dir(ev.Name) != dirs[0] {
		return true
	}
	base := filepath.Base(ev.Name)
	return base == filepath.Base(abs) || strings.HasPrefix(base, "..")
}
