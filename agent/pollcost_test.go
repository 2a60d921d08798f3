package agent

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/sources"
)

// BenchmarkIdlePollCost measures how many requests one poll costs the registry
// when nothing changed, with 20 versions published: the figure an operator
// multiplies by apps and polls per hour. It drives each registry's real source
// against its fake and counts requests on the server side.
func BenchmarkIdlePollCost(b *testing.B) {
	const versions = 20
	tags := make([]string, versions)
	for i := range tags {
		tags[i] = fmt.Sprintf("v1.%d.0", i)
	}
	cases := []struct {
		name  string
		setup func(b *testing.B) (registry string, requests func() int64)
	}{
		{"ghr", func(b *testing.B) (string, func() int64) {
			gh := fakegithub.New(b)
			gh.RequireToken("ghp_bench")
			for _, v := range tags {
				gh.AddRelease("acme", "site", fakegithub.Release{Tag: v, Published: time.Now().Add(-time.Hour),
					Assets: map[string][]byte{fmt.Sprintf("site_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH): site(v)}})
			}
			b.Setenv("GITHUB_API_URL", gh.URL())
			b.Setenv("GITHUB_TOKEN", "ghp_bench")
			return "ghr://acme/site", func() int64 { return int64(gh.Stats("acme", "site").Requests) }
		}},
		{"s3", func(b *testing.B) (string, func() int64) {
			f := newS3Fake(b)
			for _, v := range tags {
				f.put(b, v)
			}
			return "s3://us-east-1/releases/site?artifact=site.tar.gz&endpoint=" + f.url, f.requests.Load
		}},
		{"gs", func(b *testing.B) (string, func() int64) {
			f := newGCSFake(b)
			for _, v := range tags {
				f.put(v)
			}
			return "gs://releases/site?artifact=site.tar.gz", f.requests.Load
		}},
		{"grpc", func(b *testing.B) (string, func() int64) {
			files := httptest.NewServer(http.NotFoundHandler())
			b.Cleanup(files.Close)
			reg := &grpcRegistry{base: files.URL, tag: tags[len(tags)-1]}
			addr := reg.serve(b)
			return "grpc://" + addr + "?no-tls=true", func() int64 { reg.mu.Lock(); defer reg.mu.Unlock(); return int64(reg.calls) }
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			url, requests := c.setup(b)
			text := fmt.Sprintf("agent {\n  state_dir = %q\n}\napp \"site\" {\n  registry = %q\n  runner \"assets\" {}\n}\n", filepath.Join(b.TempDir(), "state"), url)
			cfg, diags := config.Parse("bench.hcl", []byte(text))
			if diags.HasErrors() {
				b.Fatal(diags)
			}
			logger := slog.New(slog.DiscardHandler)
			src, err := newSource(cfg.Apps[0], sources.Options{Logger: logger, HTTPClient: DefaultHTTPClient(), Now: time.Now})
			if err != nil {
				b.Fatal(err)
			}
			p := policy(cfg.Apps[0])
			// Two polls warm the caches, as a running agent's are after its first.
			for range 2 {
				if _, err := check(b.Context(), src, p, time.Now(), logger); err != nil {
					b.Fatal(err)
				}
			}
			before := requests()
			b.ResetTimer()
			for range b.N {
				if _, err := check(b.Context(), src, p, time.Now(), logger); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(requests()-before)/float64(b.N), "requests/poll")
			if c, ok := src.(interface{ Close() error }); ok {
				c.Close()
			}
		})
	}
}
