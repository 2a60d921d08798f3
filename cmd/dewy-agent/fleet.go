package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/fleet"
)

// fleetSubcommands are the operators' commands on a fleet, with the
// positional arguments each takes.
var fleetSubcommands = []struct{ name, args, summary string }{
	{"status", "", "every host, its labels and apps; each app's rollout, slot holders and bad versions"},
	{"pause", "APP", "stop new deploys of APP fleet-wide (deploys under way finish)"},
	{"resume", "APP", "undo pause"},
	{"promote", "APP", "end the bake (and the wait for canaries) of APP's current release now"},
	{"retry", "APP VERSION", "forget that VERSION of APP is bad for the fleet"},
}

// cmdFleet runs `dewy-agent fleet SUBCOMMAND [ARGS] -config FILE`: it
// connects to etcd with the file's fleet block, without joining the fleet.
func cmdFleet(args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: dewy-agent fleet SUBCOMMAND [ARGS] -config FILE [-json] [-timeout 10s]")
		fmt.Fprintln(w, "\nThe operators' commands on a fleet (the config file's fleet block names its etcd):")
		for _, s := range fleetSubcommands {
			fmt.Fprintf(w, "  %-22s %s\n", strings.TrimSpace(s.name+" "+s.args), s.summary)
		}
	}
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path of the config file with the fleet block (required)")
	asJSON := fs.Bool("json", false, "status: print JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up when etcd does not answer within this time")
	fs.Usage = func() { usage(stderr); fs.PrintDefaults() }
	// Flags may come before, between or after the positional arguments.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return parseExit(err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "dewy-agent fleet: name a subcommand")
		usage(stderr)
		return exitUsage
	}
	sub := pos[0]
	want := -1
	for _, s := range fleetSubcommands {
		if s.name == sub {
			want = len(strings.Fields(s.args))
		}
	}
	switch {
	case want < 0:
		fmt.Fprintf(stderr, "dewy-agent fleet: unknown subcommand %q\n", sub)
		usage(stderr)
		return exitUsage
	case len(pos)-1 != want:
		fmt.Fprintf(stderr, "dewy-agent fleet %s: takes %d argument(s), got %d\n", sub, want, len(pos)-1)
		return exitUsage
	case *path == "":
		fmt.Fprintf(stderr, "dewy-agent fleet %s: -config is required, e.g. -config /etc/dewy-agent/dewy.hcl\n", sub)
		return exitUsage
	}
	cfg, ok := load(*path, stderr)
	if !ok {
		return exitError
	}
	fc, err := config.FleetOf(cfg)
	if err == nil && !fc.Etcd.Enabled() {
		err = fmt.Errorf("the fleet block uses fleetlock; the fleet commands need etcd")
	}
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent fleet %s: %s: %v\n", sub, *path, err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	op, err := fleet.NewOperator(fc, nil, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent fleet %s: %v\n", sub, err)
		return exitError
	}
	defer op.Close()
	switch sub {
	case "status":
		st, err := op.Status(ctx)
		if err == nil {
			if *asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(st)
			} else {
				writeFleetStatus(stdout, st)
			}
		}
		return fleetExit(stderr, sub, err)
	case "pause":
		err = op.Pause(ctx, pos[1])
		if err == nil {
			fmt.Fprintf(stdout, "%s: paused; deploys under way finish, no new one starts until `dewy-agent fleet resume %s`\n", pos[1], pos[1])
		}
	case "resume":
		err = op.Resume(ctx, pos[1])
		if err == nil {
			fmt.Fprintf(stdout, "%s: resumed\n", pos[1])
		}
	case "promote":
		var v string
		v, err = op.Promote(ctx, pos[1])
		if err == nil {
			fmt.Fprintf(stdout, "%s: %s promoted; the bake is over\n", pos[1], v)
		}
	case "retry":
		err = op.Retry(ctx, pos[1], pos[2])
		if err == nil {
			fmt.Fprintf(stdout, "%s: %s is no longer bad for the fleet; hosts that marked it bad themselves also need `dewy-agent retry -app %s`\n", pos[1], pos[2], pos[1])
		}
	}
	return fleetExit(stderr, sub, err)
}

func fleetExit(stderr io.Writer, sub string, err error) int {
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent fleet %s: %v\n", sub, err)
		return exitError
	}
	return exitOK
}

// writeFleetStatus prints the hosts, then the apps.
func writeFleetStatus(w io.Writer, st fleet.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLABELS\tAPPS")
	for _, h := range st.Hosts {
		var labels, apps []string
		for k, v := range h.Labels {
			labels = append(labels, k+"="+v)
		}
		sort.Strings(labels)
		for name, a := range h.Apps {
			s := fmt.Sprintf("%s=%s (%s", name, dash(a.Version), a.Phase)
			if a.Target != "" {
				s += " → " + a.Target
			}
			apps = append(apps, s+")")
		}
		sort.Strings(apps)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Host, dash(strings.Join(labels, ",")), dash(strings.Join(apps, " ")))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tRELEASE\tPHASE\tPOLLER\tCANARIES\tHEALTHY\tSLOTS\tQUEUED\tDONE\tBAD")
	for _, a := range st.Apps {
		rel := "-"
		if a.Release != nil {
			rel = a.Release.Version
		}
		phase := string(a.Phase)
		if a.Paused && a.Phase != fleet.PhasePaused {
			phase += " (paused)"
		}
		var bad []string
		for _, b := range a.Bad {
			bad = append(bad, b.Version)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, rel, phase, dash(a.Poller),
			dash(strings.Join(a.Canaries, ",")), dash(strings.Join(a.Healthy, ",")),
			slotList(a.Slots, a.MaxParallel), dash(slotList(a.Queued, 0)), dash(a.Done), dash(strings.Join(bad, ",")))
	}
	tw.Flush()
	for _, a := range st.Apps {
		for _, b := range a.Bad {
			var hosts []string
			for h, why := range b.Hosts {
				hosts = append(hosts, h+": "+firstLine(why))
			}
			sort.Strings(hosts)
			fmt.Fprintf(w, "%s %s is bad for the fleet (%s); `dewy-agent fleet retry %s %s` forgets it\n", a.Name, b.Version, strings.Join(hosts, "; "), a.Name, b.Version)
		}
	}
}

// slotList is "h1,h2 (2/3)": the holders, and of how many slots when max > 0.
func slotList(s []fleet.SlotRecord, max int) string {
	var hosts []string
	for _, r := range s {
		hosts = append(hosts, r.Host)
	}
	out := strings.Join(hosts, ",")
	if max > 0 {
		out = fmt.Sprintf("%s (%d/%d)", dash(out), len(s), max)
	}
	return out
}
