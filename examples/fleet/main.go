// Command fleet shows a fleet rollout end to end on this machine: it starts an
// embedded etcd, publishes v1.0.0 of a site to a local folder registry, runs
// five dewy-agent processes in one fleet (web-1 is the canary), then publishes
// v1.1.0 and shows it rolling out canary → bake → waves of two, and finally
// publishes a broken v1.2.0 and shows it stopped at the canary, bad for the
// whole fleet, while every host keeps serving v1.1.0.
//
//	go run ./examples/fleet -agent ./bin/dewy-agent
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/fleet/etcdtest"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

const hosts = 5

func main() {
	agentBin := flag.String("agent", "./bin/dewy-agent", "the dewy-agent binary")
	keep := flag.Bool("keep", false, "keep the demo folder afterwards")
	flag.Parse()
	if err := run(*agentBin, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "fleet demo failed:", err)
		os.Exit(1)
	}
}

func say(format string, a ...any) {
	fmt.Printf("\n==> "+format+"\n", a...)
}

func run(agentBin string, keep bool) error {
	dir, done, err := testkit.WorkDir("dewy-fleet-demo-", keep, say)
	if err != nil {
		return err
	}
	defer done()

	say("1. starting an embedded etcd (one member, loopback only)")
	endpoint, stopEtcd, err := etcdtest.Member(filepath.Join(dir, "etcd"), func(cfg *embed.Config) {
		cfg.TickMs, cfg.ElectionMs = 10, 100 // a leader at once
	})
	if err != nil {
		return err
	}
	defer stopEtcd()

	reg := filepath.Join(dir, "registry")
	if err := publish(reg, "v1.0.0", site("v1.0.0")); err != nil {
		return err
	}
	say("2. v1.0.0 published to %s; starting %d agents (web-1 is the canary)", reg, hosts)
	var cfgs []string
	var procs []*exec.Cmd
	for i := 1; i <= hosts; i++ {
		host := fmt.Sprintf("web-%d", i)
		role := "web"
		if i == 1 {
			role = "canary"
		}
		cfg := filepath.Join(dir, host+".hcl")
		if err := os.WriteFile(cfg, []byte(config(dir, host, role, endpoint, reg)), 0o644); err != nil {
			return err
		}
		logf, err := os.Create(filepath.Join(dir, host+".log"))
		if err != nil {
			return err
		}
		cmd := exec.Command(agentBin, "-config", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", agentBin, err)
		}
		cfgs = append(cfgs, cfg)
		procs = append(procs, cmd)
	}
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			p.Wait()
		}
	}()

	op, err := fleet.NewOperator(fleet.Fleet{Etcd: fleet.Etcd{Endpoints: fleet.NewEndpoints(endpoint), Prefix: "/demo"}}, nil, 5*time.Second)
	if err != nil {
		return err
	}
	defer op.Close()
	w := &watcher{op: op}
	if err := w.until(60*time.Second, "every host runs v1.0.0", func(st fleet.Status) bool { return all(st, "v1.0.0") }); err != nil {
		return err
	}

	say("3. publishing v1.1.0: canary, then a 3s bake, then waves of max_parallel = 2")
	if err := publish(reg, "v1.1.0", site("v1.1.0")); err != nil {
		return err
	}
	if err := w.until(90*time.Second, "every host runs v1.1.0", func(st fleet.Status) bool { return all(st, "v1.1.0") }); err != nil {
		return err
	}

	say("4. publishing a broken v1.2.0 (its archive escapes its folder): the canary refuses it")
	if err := publish(reg, "v1.2.0", testkit.TarGz(map[string]string{"../../../evil.html": "owned"})); err != nil {
		return err
	}
	if err := w.until(60*time.Second, "v1.2.0 bad for the fleet", func(st fleet.Status) bool {
		return len(st.Apps) == 1 && len(st.Apps[0].Bad) == 1 && st.Apps[0].Bad[0].Version == "v1.2.0"
	}); err != nil {
		return err
	}
	st, err := op.Status(context.Background())
	if err != nil {
		return err
	}
	if !all(st, "v1.1.0") {
		return fmt.Errorf("a host left v1.1.0: %s", w.line(st))
	}
	say("5. v1.2.0 stopped at the canary; every host still serves v1.1.0. The operators' view:")
	out, _ := exec.Command(agentBin, "fleet", "status", "-config", cfgs[0]).CombinedOutput()
	fmt.Print(string(out))
	say("done: `dewy-agent fleet retry site v1.2.0` would let the fleet try it again")
	return nil
}

// config is one host's config file: a fleet of one etcd member, whose
// rollout puts one canary first, bakes 3s and then goes two hosts at a time.
func config(dir, host, role, endpoint, reg string) string {
	return testkit.FleetHost{
		StateDir: filepath.Join(dir, host), HostID: host, Labels: fmt.Sprintf("role = %q", role),
		Endpoints: []string{endpoint}, Prefix: "/demo", Registry: reg,
		Rollout: "canary = 1\n    bake = \"3s\"\n    max_parallel = 2\n    min_healthy_time = \"1s\"",
	}.Config()
}

func site(v string) []byte {
	return testkit.TarGz(map[string]string{"index.html": "<h1>site " + v + "</h1>\n"})
}

// publish writes the release under a hidden name and renames it, as
// publishers to a folder registry do.
func publish(reg, v string, artifact []byte) error {
	d := filepath.Join(reg, v)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(d, ".site.tar.gz")
	if err := os.WriteFile(tmp, artifact, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d, "site.tar.gz"))
}

func all(st fleet.Status, v string) bool {
	n := 0
	for _, h := range st.Hosts {
		if h.Apps["site"].Version == v {
			n++
		}
	}
	return n == hosts
}

// watcher prints one line each time the fleet's picture changes.
type watcher struct {
	op   *fleet.Operator
	last string
}

func (w *watcher) line(st fleet.Status) string {
	var parts []string
	for _, h := range st.Hosts {
		a := h.Apps["site"]
		s := h.Host + "=" + dash(a.Version)
		if a.Target != "" && a.Target != a.Version {
			s += "→" + a.Target
		}
		if a.Phase != fleet.PhaseIdle {
			s += "(" + string(a.Phase) + ")"
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	rollout := "-"
	if len(st.Apps) == 1 {
		a := st.Apps[0]
		if a.Release != nil {
			rollout = a.Release.Version + " " + string(a.Phase)
		}
		var slots []string
		for _, s := range a.Slots {
			slots = append(slots, s.Host)
		}
		if len(slots) > 0 {
			rollout += " slots[" + strings.Join(slots, ",") + "]"
		}
		for _, b := range a.Bad {
			rollout += " bad:" + b.Version
		}
	}
	return fmt.Sprintf("rollout %-32s %s", rollout, strings.Join(parts, " "))
}

func (w *watcher) until(d time.Duration, what string, cond func(fleet.Status) bool) error {
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := w.op.Status(ctx)
		cancel()
		if err == nil {
			if l := w.line(st); l != w.last {
				fmt.Printf("  %5.1fs  %s\n", time.Since(start).Seconds(), l)
				w.last = l
			}
			if cond(st) {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timed out waiting for %s", what)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
