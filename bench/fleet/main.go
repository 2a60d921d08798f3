// Command fleet measures what a fleet costs and saves (docs/benchmarks.md):
//
//   - registry requests per poll interval for N agents on one app, without a
//     fleet block (each polls) and with one (only the poller polls), counted
//     at an S3 registry (gofakes3 on 127.0.0.1);
//   - etcd requests per agent per minute at rest (fleet.RequestCounter), lease
//     keep-alives apart;
//   - the time for a release to reach N hosts with max_parallel M, and what
//     it is made of (timeline.go: publish delay, canary, deploys, slot
//     handoffs, from a watch of the fleet's keys);
//   - one agent process's memory (VmRSS) with the fleet block and without.
//
// The agents are goroutines running the real agent code (agent.New), each
// with its own state directory; etcd is one embedded member.
//
//	go build -o bin/dewy-agent ./cmd/dewy-agent && go run ./bench/fleet -agent bin/dewy-agent
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func main() {
	agentBin := flag.String("agent", "bin/dewy-agent", "the dewy-agent binary (memory); empty skips it")
	n := flag.Int("agents", 100, "agents on one app")
	maxPar := flag.Int("max-parallel", 10, "rollout max_parallel")
	rest := flag.Duration("rest", 30*time.Second, "how long to count requests at rest")
	flag.Parse()
	if err := run(*agentBin, *n, *maxPar, *rest); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleet:", err)
		os.Exit(1)
	}
}

const interval = 2 * time.Second

type world struct {
	dir      string
	etcd     string
	s3       string
	backend  *s3mem.Backend
	requests atomic.Int64
}

func run(agentBin string, n, maxPar int, rest time.Duration) error {
	dir, err := os.MkdirTemp("", "dewy-fleet-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w := &world{dir: dir}
	stop, err := w.startEtcd()
	if err != nil {
		return err
	}
	defer stop()
	w.backend = s3mem.New()
	if err := w.backend.CreateBucket("rel"); err != nil {
		return err
	}
	s3 := gofakes3.New(w.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.requests.Add(1)
		s3.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	w.s3 = srv.URL
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none")} {
		os.Setenv(k, v)
	}
	w.publish("v1.0.0")

	fmt.Printf("%d agents on one app, poll interval %s, max_parallel %d\n\n", n, interval, maxPar)
	for _, withFleet := range []bool{false, true} {
		if err := w.round(n, maxPar, withFleet, rest); err != nil {
			return err
		}
	}
	if agentBin != "" {
		return w.memory(agentBin)
	}
	return nil
}

func (w *world) publish(v string) {
	body := testkit.TarGz(map[string]string{"index.html": v + "\n"})
	w.backend.PutObject("rel", "site/"+v+"/site.tar.gz", map[string]string{}, strings.NewReader(string(body)), int64(len(body)), nil)
}

func (w *world) config(host, prefix string, withFleet bool, maxPar int) string {
	s := fmt.Sprintf("agent {\n  state_dir = %q\n  admin = \"\"\n}\n", filepath.Join(w.dir, prefix, host))
	rollout := ""
	if withFleet {
		role := "web"
		if host == "h000" {
			role = "canary"
		}
		s += fmt.Sprintf("fleet {\n  host_id = %q\n  labels = { role = %q }\n  session_ttl = \"5s\"\n  etcd {\n    endpoints = [%q]\n    prefix = %q\n  }\n}\n",
			host, role, w.etcd, "/"+prefix)
		rollout = fmt.Sprintf("  rollout {\n    canary = 1\n    max_parallel = %d\n  }\n", maxPar)
	}
	s += fmt.Sprintf("app \"site\" {\n  registry = \"s3://us-east-1/rel/site?endpoint=%s\"\n  artifact = \"site.tar.gz\"\n  interval = %q\n  runner \"assets\" {}\n%s}\n",
		w.s3, interval, rollout)
	return s
}

// round runs n agents, lets them settle on v1.0.0, counts requests at rest,
// then publishes the next version and times its rollout.
func (w *world) round(n, maxPar int, withFleet bool, rest time.Duration) error {
	name := "nofleet"
	if withFleet {
		name = "fleet"
	}
	counter := fleet.NewRequestCounter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var agents []*agent.Agent
	done := make(chan struct{}, n)
	started := 0
	defer func() {
		cancel()
		for range started {
			<-done
		}
	}()
	for i := range n {
		host := fmt.Sprintf("h%03d", i)
		path := filepath.Join(w.dir, name+"-"+host+".hcl")
		if err := os.WriteFile(path, []byte(w.config(host, name, withFleet, maxPar)), 0o644); err != nil {
			return err
		}
		cfg, diags := config.Load(path)
		if diags.HasErrors() {
			return fmt.Errorf("%s: %v", path, diags)
		}
		a := agent.New(cfg, agent.Options{Logger: slog.New(slog.DiscardHandler), FleetCounter: counter})
		agents = append(agents, a)
		started++
		go func() { a.Run(ctx); done <- struct{}{} }()
	}
	version := "v1.0.0"
	if withFleet {
		version = "v1.1.0" // published by the first round
	}
	if err := waitAll(agents, version, 3*time.Minute); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	time.Sleep(2 * interval) // let the first deploys' follow-ups end

	reqs0, etcd0 := w.requests.Load(), counter.Snapshot()
	time.Sleep(rest)
	reqs := w.requests.Load() - reqs0
	etcd1 := counter.Snapshot()
	perInterval := float64(reqs) / (float64(rest) / float64(interval))
	label := "without fleet"
	if withFleet {
		label = "with fleet   "
	}
	fmt.Printf("%s: registry requests per %s interval at rest: %.1f\n", label, interval, perInterval)
	if withFleet {
		var other, keep int64
		var kinds []string
		for k, v := range etcd1 {
			d := v - etcd0[k]
			if d == 0 {
				continue
			}
			if k == fleet.KeepAlive {
				keep += d
			} else {
				other += d
				kinds = append(kinds, fmt.Sprintf("%s=%d", k, d))
			}
		}
		perMin := func(c int64) float64 { return float64(c) / float64(n) / rest.Minutes() }
		fmt.Printf("%s: etcd requests per agent per minute at rest: %.2f lease keep-alives, %.2f other %v\n", label, perMin(keep), perMin(other), kinds)
	}

	next := "v1.1.0"
	if withFleet {
		next = "v1.2.0"
	}
	var tl *timeline
	if withFleet {
		var err error
		if tl, err = watchRollout(w.etcd, "/"+name, "site", next); err != nil {
			return err
		}
	}
	start := time.Now()
	w.publish(next)
	if err := waitAll(agents, next, 10*time.Minute); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("%s: %s reached all %d hosts in %s (from publish; interval %s)\n", label, next, n, time.Since(start).Round(100*time.Millisecond), interval)
	if tl != nil {
		tl.report("h000", maxPar)
	}
	fmt.Println()
	return nil
}

func waitAll(agents []*agent.Agent, v string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ok := 0
		for _, a := range agents {
			if s := a.Statuses(); len(s) == 1 && s[0].Deployed == v {
				ok++
			}
		}
		if ok == len(agents) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not every agent deployed %s within %s", v, d)
}

// memory runs one agent process with one app, without and with the fleet
// block, and reads its VmRSS after it deployed and idled.
func (w *world) memory(bin string) error {
	for _, withFleet := range []bool{false, true} {
		name := "mem-nofleet"
		if withFleet {
			name = "mem-fleet"
		}
		path := filepath.Join(w.dir, name+".hcl")
		if err := os.WriteFile(path, []byte(w.config("h000", name, withFleet, 1)), 0o644); err != nil {
			return err
		}
		cmd := exec.Command(bin, "-config", path)
		if err := cmd.Start(); err != nil {
			return err
		}
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join(w.dir, name, "h000", "apps", "site", "current")); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(10 * time.Second)
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		var rss string
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				rss = strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
			}
		}
		fmt.Printf("one agent process, one app, %s: VmRSS %s after 10s idle\n", strings.TrimPrefix(name, "mem-"), rss)
	}
	return nil
}

func (w *world) startEtcd() (func(), error) {
	endpoint, stop, err := etcdtest.Member(filepath.Join(w.dir, "etcd"), nil)
	if err != nil {
		return nil, err
	}
	w.etcd = endpoint
	return stop, nil
}
