package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

// BenchmarkReload200Apps measures, with 200 apps in the file, the time from a
// write of the file to the new config being applied by the watcher (debounce
// included), and how many app loops the reload restarted when one app changed.
func BenchmarkReload200Apps(b *testing.B) {
	for _, debounce := range []time.Duration{250 * time.Millisecond, 20 * time.Millisecond} {
		b.Run("debounce="+debounce.String(), func(b *testing.B) { benchReload(b, 200, debounce) })
	}
}

func benchReload(b *testing.B, n int, debounce time.Duration) {
	dir := b.TempDir()
	e := &env{dir: dir, reg: filepath.Join(dir, "registry"), state: filepath.Join(dir, "state"), cfg: filepath.Join(dir, "dewy.hcl")}
	e.t = &testing.T{}
	os.MkdirAll(filepath.Join(e.reg, "v1.0.0"), 0o755)
	os.WriteFile(filepath.Join(e.reg, "v1.0.0", "site.tar.gz"), []byte("not extracted: the benchmark never deploys"), 0o644)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("app%03d", i)
	}
	// The registry has no matching artifact, so apps idle after their first poll.
	text := strings.ReplaceAll(e.config("1h", names...), `artifact = "site.tar.gz"`, `artifact = "none.tar.gz"`)
	os.WriteFile(e.cfg, []byte(text), 0o644)
	cfg, diags := config.Load(e.cfg)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	a := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Watch: true, Debounce: debounce})
	testkit.Go(b, "Run", a.Run)
	for len(a.Statuses()) < n {
		time.Sleep(time.Millisecond)
	}

	restarted := 0
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Change one app's interval.
		next := strings.Replace(text, `interval = "1h"`, fmt.Sprintf(`interval = "%dm"`, 61+i), 1)
		before := a.Report().Agent.LastReload.Time
		start := time.Now()
		if err := os.WriteFile(e.cfg, []byte(next), 0o644); err != nil {
			b.Fatal(err)
		}
		for a.Report().Agent.LastReload.Time.Equal(before) {
			time.Sleep(100 * time.Microsecond)
		}
		total += time.Since(start)
		st := a.Report().Agent.LastReload
		if st.Result != "success" {
			b.Fatalf("reload: %+v", st)
		}
		restarted = st.Restarted + st.Added + st.Removed
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-write-to-applied")
	b.ReportMetric(float64(restarted), "loops-restarted")
}
