package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/dewy-agent/dewy-agent/agent"
)

// cmdStatus asks a running agent for its status over the admin API.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	resolve := adminFlags(fs)
	raw := fs.Bool("json", false, "print the raw JSON")
	app := fs.String("app", "", "print one app's full details, its whole last error included")
	watch := fs.Bool("watch", false, "redraw every -interval until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "how often -watch redraws")
	if code, ok := parseFlags(fs, args, stderr, ""); !ok {
		return code
	}
	addrV, tokenV, err := resolve()
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent status: %v\n", err)
		return exitError
	}
	addr, token := &addrV, &tokenV
	if *watch {
		once := []string{"-addr", *addr, "-token", *token}
		if *app != "" {
			once = append(once, "-app", *app)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return watchStatus(ctx, *interval, isTerminal(stdout), stdout, func(w io.Writer) int { return cmdStatus(once, w, w) })
	}
	body, err := adminCall(http.MethodGet, *addr, "/status", *token)
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent status: %v\n", err)
		return exitError
	}
	if *raw && *app == "" {
		stdout.Write(body)
		return exitOK
	}
	var rep agent.StatusReport
	if err := json.Unmarshal(body, &rep); err != nil {
		fmt.Fprintf(stderr, "dewy-agent status: %s did not answer like a dewy-agent admin API (%v)\n", *addr, err)
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
			fmt.Fprintf(stderr, "dewy-agent status: %s did not answer like a dewy-agent admin API\n", *addr)
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
	printTable(w, rep.Apps, now)
	for _, a := range rep.Apps {
		if a.LastError != "" && errorSummary(a.LastError, errorWidth) != a.LastError {
			fmt.Fprintf(w, "\n(errors shortened; `dewy-agent status -app NAME` prints one in full)\n")
			break
		}
	}
}

// watchStatus redraws what draw prints every interval until ctx ends: on a
// terminal it clears the screen first, elsewhere it separates the frames with
// a blank line and the time.
func watchStatus(ctx context.Context, interval time.Duration, terminal bool, out io.Writer, draw func(io.Writer) int) int {
	for {
		var frame bytes.Buffer
		draw(&frame)
		if terminal {
			io.WriteString(out, "\033[H\033[2J")
		} else {
			fmt.Fprintf(out, "\n--- %s\n", time.Now().Format(time.TimeOnly))
		}
		out.Write(frame.Bytes())
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(interval):
		}
	}
}

// tableWidth is the most columns the status table uses.
const tableWidth = 100

// stateText is an app's phase with its detail, as the table shows it.
func stateText(a agent.Status) string {
	s := a.Phase
	if s == "" {
		s = a.State // an older agent
	}
	if a.Detail != "" {
		s += " " + a.Detail
	}
	return s
}

// shortState is an app's phase with the part of its detail that fits a
// table cell: the version being deployed, a download's percentage.
func shortState(a agent.Status) string {
	s := a.Phase
	if s == "" {
		return a.State // an older agent
	}
	switch d := a.Download; {
	case d != nil && d.Total > 0:
		s += fmt.Sprintf(" %d%%", d.Bytes*100/d.Total)
	case d != nil:
		s += fmt.Sprintf(" %d MiB", d.Bytes>>20)
	case a.Phase == agent.PhaseDeploying && a.Detail != "":
		s += " " + a.Detail
	}
	if f := a.Fleet; f != nil && f.Wait != "" {
		s += " (fleet: " + f.Phase + ")"
	}
	return s
}

// printTable prints one row per app, within tableWidth columns: the error
// column gets what the others leave.
func printTable(w io.Writer, apps []agent.Status, now time.Time) {
	head := []string{"APP", "RUNNER", "DEPLOYED", "STATE", "NEXT", "LAST ERROR"}
	rows := [][]string{head}
	for _, a := range apps {
		rows = append(rows, []string{a.Name, a.Runner, dash(a.Deployed), shortState(a), inOrDash(now, a.NextCheck), a.LastError})
	}
	widths := make([]int, len(head)-1)
	for _, r := range rows {
		for i := range widths {
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
		}
	}
	used := 0
	for _, n := range widths {
		used += n + 2
	}
	errW := max(tableWidth-used, 20)
	for i, r := range rows {
		var b strings.Builder
		for j, n := range widths {
			b.WriteString(r[j])
			b.WriteString(strings.Repeat(" ", n-utf8.RuneCountInString(r[j])+2))
		}
		last := r[len(r)-1]
		if i > 0 {
			last = dash(errorSummary(last, errW))
		}
		b.WriteString(last)
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
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
	row("state", stateText(a))
	deployed := dash(a.Deployed)
	if !a.DeployedAt.IsZero() {
		deployed += " (" + agoOrDash(now, a.DeployedAt) + ")"
	}
	row("deployed", deployed)
	if a.Verified != "" {
		row("verified", a.Verified)
	}
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
	if len(a.Bad) > 0 {
		fmt.Fprintln(w, "bad versions:")
		for _, b := range a.Bad {
			fmt.Fprintf(w, "  %s (%s ago): %s\n", b.Version, ago(now, b.At), strings.ReplaceAll(b.Reason, "\n", " "))
		}
	}
	if len(a.History) > 0 {
		fmt.Fprintln(w, "last deploys:")
		htw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, d := range a.History {
			line := fmt.Sprintf("  %s\t%s\t%s ago\ttook %s", d.Version, d.Outcome, ago(now, d.At), d.Took.Round(time.Millisecond))
			if d.Err != "" {
				line += "\t" + errorSummary(d.Err, 60)
			}
			fmt.Fprintln(htw, line)
		}
		htw.Flush()
	}
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
	fs := newFlags("retry", stderr)
	resolve := adminFlags(fs)
	app := fs.String("app", "", "the app whose bad versions are forgotten (required)")
	if code, ok := parseFlags(fs, args, stderr, ""); !ok {
		return code
	}
	if *app == "" {
		fmt.Fprintln(stderr, "dewy-agent retry: -app is required, e.g. dewy-agent retry -app api")
		return exitUsage
	}
	addr, token, err := resolve()
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent retry: %v\n", err)
		return exitError
	}
	if _, err := adminCall(http.MethodPost, addr, "/apps/"+url.PathEscape(*app)+"/retry", token); err != nil {
		fmt.Fprintf(stderr, "dewy-agent retry: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: bad versions forgotten; polling now\n", *app)
	return exitOK
}
