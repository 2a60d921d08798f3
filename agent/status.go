package agent

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Phases a person reads at a glance (Status.Phase), derived from the loop's
// state, the deployed and newest versions, the bad versions and the workload.
const (
	PhaseStarting      = "starting"
	PhaseNeverDeployed = "never deployed"
	PhaseRunning       = "running"
	PhaseDeploying     = "deploying"
	PhaseDownloading   = "downloading"
	PhaseWaiting       = "waiting for artifact"
	PhaseBadVersion    = "newest is bad"
	PhaseFailing       = "failing"
	PhaseNotRunning    = "not running"
	PhaseCrashLooping  = "crash-looping"
	PhaseStopped       = "stopped"
	PhaseDiskFull      = "disk full"
	PhaseQueued        = "queued"
)

// DeployRecord is one deploy attempt, for status's history.
type DeployRecord struct {
	Version  string        `json:"version"`
	Previous string        `json:"previous_version,omitempty"`
	At       time.Time     `json:"at"`
	Took     time.Duration `json:"took_ns"`
	// Outcome is "succeeded", "failed" or "rolled back".
	Outcome string `json:"outcome"`
	Err     string `json:"error,omitempty"`
}

// maxHistory bounds the deploys status remembers per app.
const maxHistory = 10

// Progress is a download in flight.
type Progress struct {
	Artifact string `json:"artifact"`
	Bytes    int64  `json:"bytes"`
	// Total is the artifact's size, or -1 when the registry did not say.
	Total int64 `json:"total"`
	// Rate is bytes per second since the download began.
	Rate float64 `json:"bytes_per_second"`
}

// progress tracks the download of the loop's current deploy; the admin API
// reads it from another goroutine.
type progress struct {
	mu       sync.Mutex
	active   bool
	artifact string
	bytes    int64
	total    int64
	start    time.Time
}

func (p *progress) begin(artifact string, total int64) {
	p.mu.Lock()
	p.active, p.artifact, p.bytes, p.total, p.start = true, artifact, 0, total, time.Now()
	p.mu.Unlock()
}

func (p *progress) add(n int) {
	p.mu.Lock()
	p.bytes += int64(n)
	p.mu.Unlock()
}

func (p *progress) end() {
	p.mu.Lock()
	p.active = false
	p.mu.Unlock()
}

// snapshot returns the download in flight, or nil.
func (p *progress) snapshot() *Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active {
		return nil
	}
	out := &Progress{Artifact: p.artifact, Bytes: p.bytes, Total: p.total}
	if s := time.Since(p.start).Seconds(); s > 0 {
		out.Rate = float64(p.bytes) / s
	}
	return out
}

// countingReader counts what passes through it into a progress.
type countingReader struct {
	io.ReadCloser
	p *progress
}

func (r countingReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	r.p.add(n)
	return n, err
}

// phase is the Status.Phase of s.
func phase(s Status) string {
	switch {
	case s.State == StateStopped:
		return PhaseStopped
	case s.Queued > 0:
		return PhaseQueued
	case s.Download != nil:
		return PhaseDownloading
	case s.State == StateDeploying:
		return PhaseDeploying
	case s.State == StateStarting:
		return PhaseStarting
	case s.State == StateDiskFull:
		return PhaseDiskFull
	}
	if wl := s.Workload; wl != nil && s.Deployed != "" {
		switch {
		case wl.CrashLooping:
			return PhaseCrashLooping
		case !wl.Running:
			return PhaseNotRunning
		}
	}
	badNewest := s.Newest != "" && s.Newest != s.Deployed && slices.ContainsFunc(s.Bad, func(b BadVersion) bool { return b.Version == s.Newest })
	switch {
	case badNewest:
		return PhaseBadVersion
	case s.State == StateFailed:
		return PhaseFailing
	case s.Waiting:
		return PhaseWaiting
	case s.Deployed == "":
		return PhaseNeverDeployed
	}
	return PhaseRunning
}

// recordDeploy adds one attempt to the app's history.
func (w *worker) recordDeploy(r DeployRecord) {
	w.setStatus(func(s *Status) {
		s.History = append([]DeployRecord{r}, s.History...)
		if len(s.History) > maxHistory {
			s.History = s.History[:maxHistory]
		}
	})
}

// outcomeOf names a deploy's outcome for the history.
func outcomeOf(err error) string {
	if err == nil {
		return "succeeded"
	}
	if ev := failureEvent(err, "", "", 0); ev.Kind == "rolled_back" {
		return "rolled back"
	}
	return "failed"
}

// describeProgress is "12.0 MiB of 500.0 MiB at 30.1 MiB/s".
func describeProgress(p *Progress) string {
	if p.Total > 0 {
		return fmt.Sprintf("%s of %s at %s/s", size(p.Bytes), size(p.Total), size(int64(p.Rate)))
	}
	return fmt.Sprintf("%s at %s/s", size(p.Bytes), size(int64(p.Rate)))
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
