package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/notify"
	"github.com/dewy-agent/dewy-agent/releasestore"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// maxTransientTries is how many times in a row the same artifact of a
// version may fail in a way that can be transient (a truncated stream, a
// short download) before it is marked bad.
const maxTransientTries = 3

// artifactIdentity names what the registry offers for a candidate, so that a
// bad mark applies to that artifact only: an image pinned by digest, or the
// artifact's name, size and upload (for file://, modification) time. A
// version republished with another artifact gets another identity.
//
// sigSuffixes are the signature files the app checks (signing's
// FileSuffixes; none without a verify block): the identity then also names
// each one the release lists beside the artifact, by size and time, or
// "none", so a signature uploaded or replaced after a refusal is tried
// again. A source that lists no files (grpc) shows none here: for it a
// refusal adds what the signature fetches found, and while the version is
// marked bad each poll fetches them again (filesign.go).
func artifactIdentity(c *version.Candidate, sigSuffixes []string) string {
	if c == nil {
		return ""
	}
	if c.Release.Image != "" {
		return c.Release.Image
	}
	id := assetIdentity(c.Artifact)
	for _, suffix := range sigSuffixes {
		id += " " + suffix + "="
		if i := slices.IndexFunc(c.Release.Assets, func(a version.Asset) bool { return a.Name == c.Artifact.Name+suffix }); i >= 0 {
			id += "(" + assetIdentity(c.Release.Assets[i]) + ")"
		} else {
			id += "none"
		}
	}
	return id
}

// assetIdentity is an asset's name, size and time, those the registry gives.
func assetIdentity(a version.Asset) string {
	id := a.Name
	if a.Size >= 0 {
		id += " size=" + strconv.FormatInt(a.Size, 10)
	}
	if !a.Created.IsZero() {
		id += " time=" + a.Created.UTC().Format(time.RFC3339Nano)
	}
	return id
}

// failed sorts a failed deploy of tag (artifact ident) by the class its
// source gave the error, once: a full disk is reported as disk_full and backs
// off without blaming the version; a bad artifact or release is marked bad at
// once; a transient failure is marked bad only after maxTransientTries in a
// row; anything else (a registry or local hiccup) backs off.
func (w *worker) failed(tag, prev, ident string, took time.Duration, err error) {
	if errors.Is(err, releasestore.ErrDiskFull) {
		w.metrics.diskFull.WithLabelValues(w.app.Name).Set(1)
		w.events.send(notify.Event{Kind: notify.DiskFull, Version: tag, PreviousVersion: prev, Duration: took, Err: err.Error()})
		return
	}
	w.metrics.diskFull.WithLabelValues(w.app.Name).Set(0)
	if errors.Is(err, signing.ErrRejected) {
		// Which key and why: the Rejected's text, in the event, the bad
		// mark, status and plan.
		w.events.send(notify.Event{Kind: notify.SignatureRejected, Step: "verify", Version: tag, PreviousVersion: prev, Duration: took, Err: err.Error()})
		w.markBad(tag, ident, err)
		return
	}
	w.events.send(failureEvent(err, tag, prev, took))
	switch {
	case errors.Is(err, runners.ErrBadRelease) || errors.Is(err, releasestore.ErrBadArtifact):
		w.markBad(tag, ident, err)
	case errors.Is(err, releasestore.ErrTransient):
		if w.tries == nil {
			w.tries = map[string]int{}
		}
		key := tag + "\x00" + ident
		w.tries[key]++
		if n := w.tries[key]; n >= maxTransientTries {
			delete(w.tries, key)
			w.markBad(tag, ident, fmt.Errorf("%w (failed %d times in a row)", err, n))
			return
		}
		w.logger.Warn("deploy failed in a way that may pass; trying again with backoff", "version", tag, "try", w.tries[key], "of", maxTransientTries)
	}
}

// succeeded clears what failed remembers once a deploy went through.
func (w *worker) succeeded() {
	clear(w.tries)
	w.metrics.diskFull.WithLabelValues(w.app.Name).Set(0)
}

// newStore returns the app's release store with the agent block's disk
// reserve (min_free_space), measured with statfs.
func newStore(cfg *config.File, dir string, app config.App, logger *slog.Logger, statfs func(string) (releasestore.Space, error)) *releasestore.Store {
	s := releasestore.NewStore(dir, app.KeepReleases, logger)
	s.Probe = statfs
	if r := cfg.Agent.MinFreeSpace; !r.IsZero() {
		s.Reserve = releasestore.Reserve{Bytes: r.Bytes, Percent: r.Percent}
	}
	return s
}
