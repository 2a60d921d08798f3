package oci_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testimage"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/oci"
)

// TestRegistryFaults runs the img:// source against every fault of
// testkit.FaultProxy in front of a real registry (go-containerregistry's):
// each poll and pin fails with an error that says what happened, is never
// read as "no such repository", makes a bounded number of requests (no retry
// storm), carries the registry's Retry-After when it sent one, and the same
// source recovers once the fault clears. The agent-level rows of every other
// source are in agent/faults_test.go; an img:// app deploys through Docker,
// so its rows are here, at the source.
func TestRegistryFaults(t *testing.T) {
	testkit.Slow(t, "waits out timeouts and stalls")
	img := testimage.Build(t, "v1", testimage.Options{})
	for _, fault := range testkit.Faults {
		t.Run(string(fault), func(t *testing.T) {
			isolate(t)
			f := newFake(t)
			f.push(t, "app", "v1.0.0", img)
			var p *testkit.FaultProxy
			client := &http.Client{}
			if fault == testkit.FaultTLS {
				p = testkit.NewTLSFaultProxy(t, "http://"+f.host)
				client = p.Client()
			} else {
				p = testkit.NewFaultProxy(t, "http://"+f.host)
			}
			p.Now = func() time.Time { return fixedNow }
			host := p.URL[strings.Index(p.URL, "://")+3:]
			src, err := oci.New(oci.Config{Repository: host + "/app"}, sources.Options{HTTPClient: client, Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			poll := func(within time.Duration) error {
				ctx, cancel := context.WithTimeout(t.Context(), within)
				defer cancel()
				rels, err := src.Releases(ctx)
				if err != nil {
					return err
				}
				if len(rels) != 1 || rels[0].Tag != "v1.0.0" {
					t.Fatalf("releases = %+v, want v1.0.0", rels)
				}
				_, err = src.Pin(ctx, rels[0], oci.DefaultPlatform())
				return err
			}
			if err := poll(10 * time.Second); err != nil {
				t.Fatalf("before the fault: %v", err)
			}

			p.Set(fault)
			before := p.Requests()
			err = poll(2 * time.Second)
			n := p.Requests() - before
			if err == nil {
				t.Fatalf("a poll through %s succeeded", fault)
			}
			if errors.Is(err, sources.ErrNotFound) {
				t.Errorf("%s reads as a missing repository: %v", fault, err)
			}
			if limit := int64(9); fault != testkit.FaultRedirectLoop && n > limit {
				t.Errorf("%d requests for one poll through %s, want at most %d", n, fault, limit)
			} else if n > 99 {
				t.Errorf("%d requests for one poll through a redirect loop", n)
			}
			// The source itself waits out a 429 (RateLimitedError); the
			// agent's registry client notes every 429 and 503 Retry-After of
			// every HTTP registry, this one included (agent/ratelimit.go).
			var rl *sources.RateLimitedError
			if fault == testkit.Fault429 && (!errors.As(err, &rl) || !rl.Until.Equal(fixedNow.Add(testkit.RetryAfter*time.Second))) {
				t.Errorf("429 with Retry-After: %d: error %v, want a RateLimitedError until %s", testkit.RetryAfter, err, fixedNow.Add(testkit.RetryAfter*time.Second))
			}
			if fault == testkit.FaultRedirectLoop && !strings.Contains(err.Error(), "redirects") {
				t.Errorf("a redirect loop's error does not say so: %v", err)
			}
			t.Logf("%s: %d requests, %v", fault, n, err)

			p.Set(testkit.FaultNone)
			if err := poll(10 * time.Second); err != nil {
				t.Fatalf("after the fault cleared: %v", err)
			}
		})
	}
}
