package main

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// dewyFlag is one flag of Dewy's command line: its long and short names, and
// whether it takes a value.
type dewyFlag struct {
	long, short string
	value       bool
}

// dewyFlags are the flags of `dewy server|assets|container` (see docs/dewy.md).
var dewyFlags = []dewyFlag{
	{"name", "n", true}, {"log-level", "l", true}, {"log-format", "f", true},
	{"interval", "i", true}, {"port", "p", true}, {"registry", "", true},
	{"cache", "c", true}, {"notifier", "", true}, {"before-deploy-hook", "", true},
	{"after-deploy-hook", "", true}, {"replicas", "", true}, {"health-path", "", true},
	{"health-timeout", "", true}, {"drain-time", "", true}, {"runtime", "", true},
	{"proxy-idle-timeout", "", true}, {"cmd", "", true}, {"admin-port", "", true},
	{"slot", "s", true}, {"calver", "", true}, {"telemetry", "", false},
	{"otlp-endpoint", "", true}, {"otlp-insecure", "", false},
	{"help", "h", false}, {"version", "v", false},
}

// dewyCommand is a parsed Dewy command line.
type dewyCommand struct {
	mode    string              // server, assets or container
	values  map[string][]string // by long name, in the order given
	command []string            // after "--"
}

// parseDewy reads `dewy <mode> [flags] [-- command args]` (the leading
// "dewy" is optional).
func parseDewy(args []string) (dewyCommand, error) {
	if len(args) > 0 && path.Base(args[0]) == "dewy" {
		args = args[1:]
	}
	c := dewyCommand{values: map[string][]string{}}
	if len(args) == 0 {
		return c, fmt.Errorf("no Dewy command: give e.g. dewy server --registry ghr://owner/app -- /opt/app/bin")
	}
	c.mode, args = args[0], args[1:]
	switch c.mode {
	case "server", "assets", "container":
	default:
		return c, fmt.Errorf("dewy %s: want server, assets or container", c.mode)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			c.command = args[i+1:]
			break
		}
		if !strings.HasPrefix(a, "-") {
			c.command = args[i:] // Dewy takes the command without "--" too
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := findDewyFlag(name, strings.HasPrefix(a, "--"))
		if !ok {
			return c, fmt.Errorf("unknown Dewy flag %s", a)
		}
		if !f.value {
			c.values[f.long] = append(c.values[f.long], "true")
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return c, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		c.values[f.long] = append(c.values[f.long], val)
	}
	return c, nil
}

func findDewyFlag(name string, long bool) (dewyFlag, bool) {
	for _, f := range dewyFlags {
		if (long && f.long == name) || (!long && f.short != "" && f.short == name) {
			return f, true
		}
	}
	return dewyFlag{}, false
}

// last is the flag's last value, "" when not given.
func (c dewyCommand) last(name string) string {
	if v := c.values[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// hclString quotes s as an HCL string: Go's escapes, and "${" and "%{"
// doubled so they stay literal.
func hclString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

func hclList(items []string, quote bool) string {
	out := make([]string, len(items))
	for i, it := range items {
		if quote {
			out[i] = hclString(it)
		} else {
			out[i] = it
		}
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// seconds turns Dewy's whole seconds into a duration string.
func seconds(flag, v string) (string, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return "", fmt.Errorf("--%s %q: want whole seconds", flag, v)
	}
	return strconv.Itoa(n) + "s", nil
}

// importDewy writes the app block equivalent to c to out, and to notes the
// flags that have no equivalent.
func importDewy(c dewyCommand, out, notes io.Writer) error {
	registry := c.last("registry")
	if registry == "" {
		return fmt.Errorf("--registry is required: Dewy cannot run without one either")
	}
	if rest, ok := strings.CutPrefix(registry, "docker://"); ok {
		registry = "img://" + rest
	}
	name := c.last("name")
	if name == "" {
		// The registry's last path element: ghr://o/app is "app".
		rest, _, _ := strings.Cut(registry, "?")
		if _, after, ok := strings.Cut(rest, "://"); ok {
			rest = after
		}
		name, _, _ = strings.Cut(path.Base(rest), ":") // img://host/app:tag
		if name == "" || name == "." || name == "/" {
			name = "app"
		}
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	// durationAttr writes "attr = <n>s" from Dewy's flag in whole seconds,
	// when given; indent is the block's.
	durationAttr := func(indent, flag, attr string) error {
		v := c.last(flag)
		if v == "" {
			return nil
		}
		d, err := seconds(flag, v)
		if err != nil {
			return err
		}
		w("%s%s = %s\n", indent, attr, hclString(d))
		return nil
	}

	if lvl, fmtv := c.last("log-level"), c.last("log-format"); lvl != "" || fmtv != "" || c.last("admin-port") != "" {
		w("agent {\n")
		if lvl != "" {
			w("  log_level = %s\n", hclString(lvl))
		}
		if fmtv != "" {
			w("  log_format = %s\n", hclString(fmtv))
		}
		if p := c.last("admin-port"); p != "" {
			w("  admin = %s\n", hclString("127.0.0.1:"+p))
		}
		w("}\n\n")
	}
	w("app %s {\n", hclString(name))
	w("  registry = %s\n", hclString(registry))
	if err := durationAttr("  ", "interval", "interval"); err != nil {
		return err
	}
	if v := c.last("calver"); v != "" {
		w("  calver = %s\n", hclString(v))
	}
	if v := c.last("slot"); v != "" {
		w("  slot = %s\n", hclString(v))
	}
	if v := c.values["notifier"]; len(v) > 0 {
		w("  notify = %s\n", hclList(v, true))
	}
	w("\n  runner %s {\n", hclString(c.mode))
	switch c.mode {
	case "server":
		if len(c.command) > 0 {
			w("    command = %s\n", hclList(c.command, true))
		} else {
			w("    command = [] # Dewy was given no command: fill it in\n")
		}
		if ports := c.values["port"]; len(ports) > 0 {
			items := make([]string, len(ports))
			for i, p := range ports {
				if _, err := strconv.Atoi(p); err == nil {
					items[i] = p
				} else {
					items[i] = hclString(p) // a range such as "8000-8010"
				}
			}
			w("    ports = %s\n", hclList(items, false))
		}
	case "container":
		if cmd := c.values["cmd"]; len(cmd) > 0 {
			w("    command = %s\n", hclList(cmd, true))
		}
		if ports := c.values["port"]; len(ports) > 0 {
			w("    ports = %s\n", hclList(ports, true))
		}
		if v := c.last("replicas"); v != "" {
			w("    replicas = %s\n", v)
		}
		if err := durationAttr("    ", "drain-time", "drain_time"); err != nil {
			return err
		}
	}
	if c.mode != "assets" {
		if v := c.last("health-path"); v != "" {
			w("    health_path = %s\n", hclString(v))
		}
		if err := durationAttr("    ", "health-timeout", "health_timeout"); err != nil {
			return err
		}
	}
	w("  }\n")
	if before, after := c.last("before-deploy-hook"), c.last("after-deploy-hook"); before != "" || after != "" {
		w("\n  hooks {\n")
		if before != "" {
			w("    before_deploy = %s\n", hclString(before))
		}
		if after != "" {
			w("    after_deploy = %s\n", hclString(after))
		}
		w("  }\n")
	}
	w("}\n")
	if _, err := io.WriteString(out, b.String()); err != nil {
		return err
	}

	for _, n := range dewyUnmapped(c) {
		fmt.Fprintf(notes, "dewy-agent import-dewy: %s\n", n)
	}
	return nil
}

// dewyUnmapped says, for each flag given that has no equivalent, why.
func dewyUnmapped(c dewyCommand) []string {
	reasons := []struct{ flag, why string }{
		{"cache", "--cache has no equivalent: releases are kept under the agent's state_dir (keep_releases)"},
		{"runtime", "--runtime has no equivalent: the container runner talks to the Docker engine only"},
		{"proxy-idle-timeout", "--proxy-idle-timeout has no equivalent: the container runner's proxy has no idle timeout setting"},
		{"telemetry", "--telemetry has no equivalent: Prometheus metrics are always on the admin API"},
		{"otlp-endpoint", "--otlp-endpoint has no equivalent: there is no OTLP export; scrape the admin API's metrics"},
		{"otlp-insecure", "--otlp-insecure has no equivalent (no OTLP export)"},
		{"help", "--help is not part of a deployment; ignored"},
		{"version", "--version is not part of a deployment; ignored"},
	}
	var out []string
	for _, r := range reasons {
		if len(c.values[r.flag]) > 0 {
			out = append(out, r.why)
		}
	}
	if c.mode == "server" && len(c.values["replicas"]) > 0 {
		out = append(out, "--replicas applies to containers only; ignored for dewy server")
	}
	if c.mode == "server" && len(c.values["drain-time"]) > 0 {
		out = append(out, "--drain-time applies to containers only; the server runner hands its sockets over without draining")
	}
	if c.mode != "container" && len(c.values["cmd"]) > 0 {
		out = append(out, "--cmd applies to containers only; ignored")
	}
	if c.mode == "assets" {
		for _, f := range []string{"port", "health-path", "health-timeout"} {
			if len(c.values[f]) > 0 {
				out = append(out, "--"+f+" means nothing to dewy assets; ignored")
			}
		}
		if len(c.command) > 0 {
			out = append(out, "the command after -- means nothing to dewy assets; ignored")
		}
	}
	return out
}

// cmdImportDewy prints the app block equivalent to a Dewy command line.
func cmdImportDewy(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		commandUsage(stderr, "import-dewy", nil)
		fmt.Fprint(stderr, "\nFor example:\n  dewy-agent import-dewy -- dewy server --registry ghr://o/app --port 8000 -i 30 --notifier slack://ch -- /opt/app/bin\n")
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, err := parseDewy(args)
	if err == nil {
		err = importDewy(c, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dewy-agent import-dewy: %v\n", err)
		return exitUsage
	}
	return exitOK
}
