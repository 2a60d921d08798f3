package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// command is one subcommand of dewy-agent.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string // one line for the command list
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists every subcommand, in the order help shows them. Completion
// scripts are made from this table.
var commands []command

func init() {
	commands = []command{
		{"run", "-config FILE [-allow-empty]", "run the agent (the default command)", cmdRun},
		{"validate", "-config FILE", "check the file; every mistake, with its line", cmdValidate},
		{"plan", "-config FILE", "show what each app would deploy; deploys nothing", cmdPlan},
		{"status", "[-addr A] [-app NAME] [-json] [-watch]", "ask a running agent for each app's state", cmdStatus},
		{"retry", "-app NAME [-addr host:port]", "make the agent forget an app's bad versions", cmdRetry},
		{"fleet", "SUB [ARGS] -config FILE", "status|pause|resume|promote|retry a fleet's rollouts", cmdFleet},
		{"fmt", "[-check] FILE...", "rewrite HCL files in canonical form; -check for CI", cmdFmt},
		{"schema", "", "print a JSON Schema of the config, for editors", cmdSchema},
		{"import-dewy", "-- DEWY-ARGS", "print the app block for a Dewy command line", cmdImportDewy},
		{"completion", "bash|zsh|fish", "print a shell completion script", cmdCompletion},
		{"version", "", "print version, commit, build date and Go version", cmdVersion},
		{"help", "[COMMAND]", "show this help, or one command's flags", cmdHelp},
	}
}

func lookup(name string) (command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands[i], true
}

// run dispatches to the subcommand; without one it runs the agent.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		writeUsage(stdout)
		return exitOK
	}
	name := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "dewy-agent: unknown command %q\n\n", name)
		writeUsage(stderr)
		return exitUsage
	}
	return c.run(args, stdout, stderr)
}

// writeUsage lists every command with one line each.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "dewy-agent: pull-based continuous deployment for hosts without Kubernetes\n\nUsage:\n")
	for _, c := range commands {
		synopsis := strings.TrimSpace(c.name + " " + c.args)
		fmt.Fprintf(w, "  dewy-agent %-34s %s\n", synopsis, c.summary)
	}
	fmt.Fprint(w, "\n'dewy-agent -config FILE' is short for 'dewy-agent run -config FILE'.\nRun 'dewy-agent help COMMAND' or 'dewy-agent COMMAND -h' for a command's flags.\n")
}

// commandUsage prints one command's synopsis and flags.
func commandUsage(w io.Writer, name string, fs *flag.FlagSet) {
	c, _ := lookup(name)
	fmt.Fprintf(w, "Usage: dewy-agent %s\n\n%s.\n", strings.TrimSpace(name+" "+c.args), upperFirst(c.summary))
	if fs != nil && hasFlags(fs) {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseExit is the exit code after a flag parse error: 0 when the user asked
// for help (-h), else a usage error (the flag package printed why).
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// extraArgument reports an argument a command does not take, with a hint
// when it looks like a file meant for the given flag.
func extraArgument(w io.Writer, name, arg, fileFlag string) {
	fmt.Fprintf(w, "dewy-agent %s: unexpected argument %q", name, arg)
	if fileFlag != "" && looksLikeConfig(arg) {
		fmt.Fprintf(w, "; did you mean %s %s?", fileFlag, arg)
	} else {
		fmt.Fprintf(w, "; see 'dewy-agent help %s'", name)
	}
	fmt.Fprintln(w)
}

// looksLikeConfig reports whether arg names a config file: by its extension,
// or because a file of that name exists.
func looksLikeConfig(arg string) bool {
	switch strings.ToLower(filepath.Ext(arg)) {
	case ".hcl", ".json", ".yaml", ".yml":
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && fi.Mode().IsRegular()
}

// noArguments ends a command that takes no arguments and flags; ok is false
// when it must stop, with code its exit code.
func noArguments(name string, args []string, stderr io.Writer) (code int, ok bool) {
	return parseFlags(newFlags(name, stderr), args, stderr, "")
}

// newFlags is command name's flag set: its errors and -h go to stderr, -h
// with the command's usage.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { commandUsage(stderr, name, fs) }
	return fs
}

// parseFlags parses args into fs and refuses any argument left over (see
// extraArgument for fileFlag); ok is false when the command must stop, with
// code its exit code.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer, fileFlag string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		return parseExit(err), false
	}
	if fs.NArg() > 0 {
		extraArgument(stderr, fs.Name(), fs.Arg(0), fileFlag)
		return exitUsage, false
	}
	return exitOK, true
}

func cmdHelp(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		writeUsage(stdout)
		return exitOK
	case 1:
		if strings.HasPrefix(args[0], "-") {
			commandUsage(stdout, "help", nil)
			return exitOK
		}
		c, ok := lookup(args[0])
		if !ok {
			fmt.Fprintf(stderr, "dewy-agent help: unknown command %q\n\n", args[0])
			writeUsage(stderr)
			return exitUsage
		}
		return c.run([]string{"-h"}, stdout, stdout)
	}
	fmt.Fprintf(stderr, "dewy-agent help: unexpected argument %q; give at most one command\n", args[1])
	return exitUsage
}
