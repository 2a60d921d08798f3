package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/config"
)

// cmdStatus asks a running agent for its status over the admin API.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", config.DefaultAdmin, "admin address of the running agent (the agent block's admin)")
	raw := fs.Bool("json", false, "print the raw JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: dewy-agent status [-addr host:port] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dewy-agent status: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + *addr + "/status")
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent status: cannot reach the agent at %s: %v\n(is it running, and is admin set to this address in its agent block?)\n", *addr, err)
		return exitError
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "dewy-agent status: %s answered %s %v\n", *addr, resp.Status, err)
		return exitError
	}
	if *raw {
		stdout.Write(body)
		return exitOK
	}
	var rep agent.StatusReport
	if err := json.Unmarshal(body, &rep); err != nil {
		fmt.Fprintf(stderr, "dewy-agent status: unexpected answer from %s: %v\n", *addr, err)
		return exitError
	}
	printStatus(stdout, rep, time.Now())
	return exitOK
}

func printStatus(w io.Writer, rep agent.StatusReport, now time.Time) {
	ag := rep.Agent
	fmt.Fprintf(w, "agent %s  config %s  state_dir %s  up %s\n", ag.Version, ag.Config, ag.StateDir, ago(now, ag.StartedAt))
	lr := ag.LastReload
	fmt.Fprintf(w, "last reload: %s %s ago", lr.Result, ago(now, lr.Time))
	if len(lr.NeedsRestart) > 0 {
		fmt.Fprintf(w, " (restart needed for: %s)", strings.Join(lr.NeedsRestart, ", "))
	}
	fmt.Fprintln(w)
	if lr.Error != "" {
		fmt.Fprintf(w, "%s\n", indent(lr.Error))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tRUNNER\tDEPLOYED\tNEWEST\tSTATE\tLAST CHECK\tNEXT CHECK\tDEPLOYS\tLAST ERROR")
	for _, a := range rep.Apps {
		state := a.State
		if w := a.Workload; w != nil {
			switch {
			case w.CrashLooping:
				state += " (crash-looping)"
			case !w.Running && a.Deployed != "":
				state += " (not running)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Name, a.Runner, dash(a.Deployed), dash(a.Newest), state,
			agoOrDash(now, a.LastCheck), inOrDash(now, a.NextCheck), a.Deploys, dash(firstLine(a.LastError)))
	}
	tw.Flush()
}

func ago(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() }

func agoOrDash(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return ago(now, t) + " ago"
}

func inOrDash(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "in " + t.Sub(now).Round(time.Second).String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// cmdRetry asks a running agent to forget an app's bad versions and poll at once.
func cmdRetry(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("retry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", config.DefaultAdmin, "admin address of the running agent")
	app := fs.String("app", "", "the app whose bad versions are forgotten (required)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *app == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "Usage: dewy-agent retry -app NAME [-addr host:port]")
		return exitUsage
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post("http://"+*addr+"/apps/"+url.PathEscape(*app)+"/retry", "", nil)
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent retry: cannot reach the agent at %s: %v\n", *addr, err)
		return exitError
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "dewy-agent retry: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return exitError
	}
	fmt.Fprintf(stdout, "%s: bad versions forgotten; polling now\n", *app)
	return exitOK
}
