package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/config"
)

// cmdStatus asks a running agent for its status over the admin API.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", config.DefaultAdmin, "admin address of the running agent (the agent block's admin)")
	raw := fs.Bool("json", false, "print the raw JSON")
	app := fs.String("app", "", "print one app's full details, its whole last error included")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: dewy-agent status [-addr host:port] [-app NAME] [-json]")
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
	if *raw && *app == "" {
		stdout.Write(body)
		return exitOK
	}
	var rep agent.StatusReport
	if err := json.Unmarshal(body, &rep); err != nil {
		fmt.Fprintf(stderr, "dewy-agent status: unexpected answer from %s: %v\n", *addr, err)
		return exitError
	}
	if *app == "" {
		printStatus(stdout, rep, time.Now())
		return exitOK
	}
	i := slices.IndexFunc(rep.Apps, func(s agent.Status) bool { return s.Name == *app })
	if i < 0 {
		fmt.Fprintf(stderr, "dewy-agent status: the agent at %s runs no app %q\n", *addr, *app)
		return exitError
	}
	if *raw {
		// The app's object exactly as the agent sent it, every field kept.
		var all struct{ Apps []json.RawMessage }
		if err := json.Unmarshal(body, &all); err != nil || len(all.Apps) != len(rep.Apps) {
			fmt.Fprintf(stderr, "dewy-agent status: unexpected answer from %s: %v\n", *addr, err)
			return exitError
		}
		stdout.Write(append(all.Apps[i], '\n'))
		return exitOK
	}
	printApp(stdout, rep.Apps[i], time.Now())
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
		if f := a.Fleet; f != nil && f.Wait != "" {
			state += " (fleet: " + f.Phase + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Name, a.Runner, dash(a.Deployed), dash(a.Newest), state,
			agoOrDash(now, a.LastCheck), inOrDash(now, a.NextCheck), a.Deploys, dash(errorSummary(a.LastError, errorWidth)))
	}
	tw.Flush()
	for _, a := range rep.Apps {
		if a.LastError != "" && errorSummary(a.LastError, errorWidth) != a.LastError {
			fmt.Fprintf(w, "\n(errors shortened; `dewy-agent status -app NAME` prints one in full)\n")
			break
		}
	}
}

// printApp prints everything the agent tells about one app, the last error
// in full.
func printApp(w io.Writer, a agent.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("app", a.Name)
	row("registry", a.Registry)
	row("runner", a.Runner)
	state := a.State
	if wl := a.Workload; wl != nil {
		switch {
		case wl.CrashLooping:
			state += " (crash-looping)"
		case !wl.Running && a.Deployed != "":
			state += " (not running)"
		}
	}
	row("state", state)
	deployed := dash(a.Deployed)
	if !a.DeployedAt.IsZero() {
		deployed += " (" + agoOrDash(now, a.DeployedAt) + ")"
	}
	row("deployed", deployed)
	row("newest", dash(a.Newest))
	row("deploys", fmt.Sprint(a.Deploys))
	row("last check", agoOrDash(now, a.LastCheck))
	row("next check", inOrDash(now, a.NextCheck))
	if wl := a.Workload; wl != nil {
		proc := "not running"
		if wl.Running {
			proc = "running"
			if wl.PID != 0 {
				proc += fmt.Sprintf(", pid %d", wl.PID)
			}
		}
		row("workload", fmt.Sprintf("%s, %d restarts", proc, wl.Restarts))
	}
	if f := a.Fleet; f != nil {
		role := "follower"
		if f.Poller {
			role = "poller"
		}
		row("fleet", fmt.Sprintf("%s, phase %s, rollout of %s: %s", role, f.Phase, dash(f.Release), dash(f.Rollout)))
		if f.Wait != "" {
			row("fleet wait", f.Wait)
		}
		if len(f.Bad) > 0 {
			row("fleet bad", strings.Join(f.Bad, ", "))
		}
	}
	tw.Flush()
	if a.LastError == "" {
		fmt.Fprintln(w, "last error: -")
		return
	}
	fmt.Fprintf(w, "last error:\n%s\n", indent(a.LastError))
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

// errorWidth is the most characters the table gives an error.
const errorWidth = 80

// errorSummary fits an error's first line into width characters, keeping the
// parts that matter: its first part (which version) and its end (the
// innermost cause). Parts in between (each layer's context, ": "-separated)
// are dropped first, then the first part; a cause too long on its own keeps
// its end. " …" marks an error with more lines.
func errorSummary(s string, width int) string {
	s, _, more := strings.Cut(s, "\n")
	if more {
		s += " …"
	}
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	parts := strings.Split(s, ": ")
	for drop := 1; drop < len(parts)-1; drop++ {
		t := parts[0] + ": …: " + strings.Join(parts[1+drop:], ": ")
		if utf8.RuneCountInString(t) <= width {
			return t
		}
	}
	for drop := 1; drop < len(parts); drop++ {
		t := "…: " + strings.Join(parts[drop:], ": ")
		if utf8.RuneCountInString(t) <= width {
			return t
		}
	}
	r := []rune(s)
	return "…" + string(r[len(r)-(width-1):])
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
