package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// commandFlags are the flags each command takes, for completion scripts.
var commandFlags = map[string][]string{
	"run":         {"-config", "-allow-empty"},
	"validate":    {"-config"},
	"plan":        {"-config"},
	"status":      {"-addr", "-config", "-app", "-json", "-watch", "-interval", "-token"},
	"retry":       {"-app", "-addr", "-config", "-token"},
	"fleet":       {"status", "pause", "resume", "promote", "retry", "-config", "-json", "-timeout"},
	"fmt":         {"-check"},
	"import-dewy": {"--"},
}

// cmdCompletion prints a completion script for bash, zsh or fish, made from
// the command table.
func cmdCompletion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		commandUsage(stderr, "completion", nil)
		fmt.Fprint(stderr, "\nInstall, for example:\n  dewy-agent completion bash > /etc/bash_completion.d/dewy-agent\n  dewy-agent completion zsh > \"${fpath[1]}/_dewy-agent\"\n  dewy-agent completion fish > ~/.config/fish/completions/dewy-agent.fish\n")
	}
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "dewy-agent completion: name one shell: bash, zsh or fish")
		return exitUsage
	}
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	switch fs.Arg(0) {
	case "bash":
		writeBash(stdout, names)
	case "zsh":
		writeZsh(stdout)
	case "fish":
		writeFish(stdout)
	default:
		fmt.Fprintf(stderr, "dewy-agent completion: unknown shell %q; use bash, zsh or fish\n", fs.Arg(0))
		return exitUsage
	}
	return exitOK
}

func writeBash(w io.Writer, names []string) {
	fmt.Fprintf(w, `# bash completion for dewy-agent
_dewy_agent() {
    local cur prev cmd
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd="${COMP_WORDS[1]}"
    case "$prev" in
        -config) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
    esac
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=( $(compgen -W "%s -config -h" -- "$cur") )
        return
    fi
    case "$cmd" in
`, strings.Join(names, " "))
	for _, c := range commands {
		words := commandFlags[c.name]
		switch c.name {
		case "completion":
			words = []string{"bash", "zsh", "fish"}
		case "help":
			words = names
		case "fmt":
			fmt.Fprintf(w, "        fmt) COMPREPLY=( $(compgen -W \"-check\" -f -- \"$cur\") ) ;;\n")
			continue
		}
		fmt.Fprintf(w, "        %s) COMPREPLY=( $(compgen -W %q -- \"$cur\") ) ;;\n", c.name, strings.Join(words, " "))
	}
	fmt.Fprint(w, `        -*) COMPREPLY=( $(compgen -W "-config -allow-empty" -- "$cur") ) ;;
    esac
}
complete -F _dewy_agent dewy-agent
`)
}

func writeZsh(w io.Writer) {
	fmt.Fprint(w, "#compdef dewy-agent\n# zsh completion for dewy-agent\n_dewy_agent() {\n  local -a cmds\n  cmds=(\n")
	for _, c := range commands {
		fmt.Fprintf(w, "    %q\n", c.name+":"+c.summary)
	}
	fmt.Fprint(w, "  )\n  if (( CURRENT == 2 )); then\n    _describe 'command' cmds\n    return\n  fi\n  case $words[2] in\n")
	for _, c := range commands {
		var specs []string
		for _, f := range commandFlags[c.name] {
			spec := "'" + f + "[" + f[1:] + "]'"
			if f == "-config" {
				spec = "'-config[config file]:file:_files'"
			}
			specs = append(specs, spec)
		}
		switch c.name {
		case "completion":
			specs = append(specs, "'1:shell:(bash zsh fish)'")
		case "fmt":
			specs = append(specs, "'*:file:_files -g \"*.hcl\"'")
		case "help":
			specs = append(specs, "'1:command:(("+helpWords()+"))'")
		}
		if len(specs) > 0 {
			fmt.Fprintf(w, "    %s) _arguments %s ;;\n", c.name, strings.Join(specs, " "))
		}
	}
	fmt.Fprint(w, "  esac\n}\ncompdef _dewy_agent dewy-agent\n")
}

// helpWords lists the commands for zsh's (( )) action.
func helpWords() string {
	var b strings.Builder
	for i, c := range commands {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.name)
	}
	return b.String()
}

func writeFish(w io.Writer) {
	fmt.Fprint(w, "# fish completion for dewy-agent\ncomplete -c dewy-agent -f\n")
	for _, c := range commands {
		fmt.Fprintf(w, "complete -c dewy-agent -n __fish_use_subcommand -a %s -d %q\n", c.name, c.summary)
	}
	for _, c := range commands {
		for _, f := range commandFlags[c.name] {
			extra := ""
			if f == "-config" {
				extra = " -r -F"
			}
			fmt.Fprintf(w, "complete -c dewy-agent -n '__fish_seen_subcommand_from %s' -o %s%s\n", c.name, f[1:], extra)
		}
	}
	fmt.Fprint(w, "complete -c dewy-agent -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
	fmt.Fprint(w, "complete -c dewy-agent -n '__fish_seen_subcommand_from fmt' -F\n")
}
