package agent

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/dewy-agent/dewy-agent/releasestore"
)

// repair runs once at start, before resume, and puts right what a crash or a
// hand left on disk (issue 18): staging folders in tmp/ are removed; a
// state.json that does not parse is moved aside and rebuilt from `current`
// and the release folders (the deployed version is kept: the agent never
// jumps to the newest release because it forgot what was live); a `current`
// that is missing, dangling or not a symlink is pointed again at the release
// state.json names, or else the newest release not marked bad. What it
// cannot repair is left for resume to report.
func (w *worker) repair() {
	fp, _ := w.pipe.(*filePipeline)
	if fp != nil {
		if err := fp.store.ClearStaging(); err != nil {
			w.logger.Warn("clear staging left by an earlier run", "err", err)
		}
	}
	st, err := loadState(w.dir)
	damaged := err != nil
	if damaged {
		w.logger.Error("state.json is damaged; rebuilding it from the release folders", "err", err)
		path := filepath.Join(w.dir, stateFile)
		if rerr := os.Rename(path, path+".damaged"); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			w.logger.Warn("move the damaged state.json aside", "err", rerr)
		}
		st = State{}
	}
	if fp == nil {
		if damaged {
			w.st = st
			w.saveRepaired()
		}
		return
	}
	want := st.Release
	usable := func(r releasestore.Release) bool {
		_, bad := st.isBad(r.Version)
		return !bad
	}
	cur, changed, err := fp.store.RepairCurrent(want, usable)
	if err != nil {
		w.logger.Error("repair current", "err", err)
		return
	}
	if changed {
		w.logger.Warn("current repaired", "now", cur)
	}
	if !damaged && !(changed && cur != "" && rel(w.dir, cur) != st.Release) {
		return
	}
	// Make state.json agree with `current`.
	if cur != "" {
		st.Version = releasestore.VersionOf(filepath.Base(cur))
		st.Release = rel(w.dir, cur)
		st.Artifact, st.SHA256 = "", ""
	} else {
		st.Version, st.Release = "", ""
	}
	w.st = st
	w.saveRepaired()
}

// saveRepaired writes the repaired state; resume reads it back.
func (w *worker) saveRepaired() {
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		w.logger.Error("save repaired state", "err", err)
		return
	}
	if err := w.st.save(w.dir); err != nil {
		w.logger.Error("save repaired state", "err", err)
	}
}

// rel returns dir relative to the app directory, as state.json keeps it.
func rel(appDir, dir string) string {
	if r, err := filepath.Rel(appDir, dir); err == nil {
		return r
	}
	return dir
}
