package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelp: -h, --help and help list every command with one line each and
// exit 0; help COMMAND and COMMAND -h show that command's flags.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}} {
		code, stdout, stderr := runCLI(args...)
		if code != exitOK || stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		for _, c := range commands {
			if !strings.Contains(stdout, "dewy-agent "+c.name) || !strings.Contains(stdout, c.summary) {
				t.Errorf("%v: no line for %s:\n%s", args, c.name, stdout)
			}
		}
		for _, line := range strings.Split(stdout, "\n") {
			if len(line) > 100 {
				t.Errorf("%v: line wider than 100 columns: %q", args, line)
			}
		}
	}
	for _, c := range commands {
		if c.name == "status" || c.name == "retry" {
			continue // their flags are checked with the status tests
		}
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}} {
			code, stdout, stderr := runCLI(args...)
			if code != exitOK || !strings.Contains(stdout+stderr, "Usage: dewy-agent "+c.name) {
				t.Errorf("%v: exit %d\n%s%s", args, code, stdout, stderr)
			}
		}
	}
	if code, _, stderr := runCLI("help", "nope"); code != exitUsage || !strings.Contains(stderr, `unknown command "nope"`) {
		t.Errorf("help nope: exit %d, %q", code, stderr)
	}
}

// TestExtraArguments: every command refuses what it does not take, with a hint.
func TestExtraArguments(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"validate", "ok.hcl"}, `unexpected argument "ok.hcl"; did you mean -config ok.hcl?`},
		{[]string{"plan", "dewy.yaml"}, "did you mean -config dewy.yaml?"},
		{[]string{"-config", "x.hcl", "more"}, `unexpected argument "more"; see 'dewy-agent help run'`},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"completion"}, "name one shell"},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh"`},
		{[]string{"fmt"}, "name the HCL files"},
		{[]string{"help", "plan", "validate"}, `unexpected argument "validate"`},
	}
	for _, c := range cases {
		code, stdout, stderr := runCLI(c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", c.args, code, exitUsage, c.want, stdout, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI("version")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"dewy-agent ", "commit:", "built:", "go:", "go1."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("version lacks %q:\n%s", want, stdout)
		}
	}
}

// TestCompletion: each script names every command, and the bash one is valid bash.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, stdout, stderr := runCLI("completion", shell)
		if code != exitOK || stderr != "" {
			t.Fatalf("%s: exit %d %s", shell, code, stderr)
		}
		for _, c := range commands {
			if !strings.Contains(stdout, c.name) {
				t.Errorf("%s completion lacks %s", shell, c.name)
			}
		}
		if _, err := exec.LookPath(shell); err != nil {
			continue
		}
		path := filepath.Join(t.TempDir(), "completion")
		os.WriteFile(path, []byte(stdout), 0o644)
		flag := "-n"
		if shell == "fish" {
			flag = "--no-execute"
		}
		if out, err := exec.Command(shell, flag, path).CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", shell, flag, err, out)
		}
	}
	// The bash script completes commands when sourced.
	if _, err := exec.LookPath("bash"); err == nil {
		_, script, _ := runCLI("completion", "bash")
		cmd := exec.Command("bash", "-c", script+`
COMP_WORDS=(dewy-agent val); COMP_CWORD=1; _dewy_agent; echo "${COMPREPLY[@]}"
COMP_WORDS=(dewy-agent completion z); COMP_CWORD=2; _dewy_agent; echo "${COMPREPLY[@]}"`)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "validate\nzsh\n" {
			t.Errorf("bash completion: %v %q", err, out)
		}
	}
}

// TestFmt: fmt -check lists files that are not canonical and exits 1; fmt
// rewrites them; a file with a syntax error or of another syntax is refused
// and left as it was.
func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := filepath.Join(dir, "messy.hcl")
	tidy := filepath.Join(dir, "tidy.hcl")
	broken := filepath.Join(dir, "broken.hcl")
	yaml := filepath.Join(dir, "dewy.yaml")
	writeFile(t, messy, []byte("app \"a\" {\nregistry=\"file:///srv/a\"\n    runner \"assets\" {}\n}\n"))
	writeFile(t, tidy, []byte("app \"a\" {\n  registry = \"file:///srv/a\"\n  runner \"assets\" {}\n}\n"))
	writeFile(t, broken, []byte("app \"a\" {\nregistry = \n"))
	writeFile(t, yaml, []byte("app: {}\n"))

	code, stdout, stderr := runCLI("fmt", "-check", messy, tidy)
	if code != exitError || stdout != messy+"\n" || stderr != "" {
		t.Fatalf("fmt -check: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(messy); !strings.Contains(string(b), "registry=") {
		t.Fatal("fmt -check changed the file")
	}
	if code, stdout, _ = runCLI("fmt", messy, tidy); code != exitOK || stdout != messy+"\n" {
		t.Fatalf("fmt: exit %d, stdout %q", code, stdout)
	}
	got, _ := os.ReadFile(messy)
	want, _ := os.ReadFile(tidy)
	if string(got) != string(want) {
		t.Fatalf("formatted:\n%s\nwant:\n%s", got, want)
	}
	if code, _, _ = runCLI("fmt", "-check", messy); code != exitOK {
		t.Fatalf("fmt -check after fmt: exit %d", code)
	}
	for _, f := range []string{broken, yaml} {
		before, _ := os.ReadFile(f)
		if code, _, stderr = runCLI("fmt", f); code != exitError || stderr == "" {
			t.Errorf("fmt %s: exit %d, %q", f, code, stderr)
		}
		if after, _ := os.ReadFile(f); string(after) != string(before) {
			t.Errorf("fmt changed %s", f)
		}
	}
}

// TestRunRefusesAnEmptyFile: a file without apps is refused at start, as on
// reload, unless -allow-empty.
func TestRunRefusesAnEmptyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dewy.hcl")
	writeFile(t, cfg, []byte("agent {\n  state_dir = \""+filepath.Join(dir, "state")+"\"\n  admin = \"\"\n}\n"))
	code, _, stderr := runCLI("run", "-config", cfg)
	if code != exitError || !strings.Contains(stderr, "declares no app") || !strings.Contains(stderr, "-allow-empty") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	empty := filepath.Join(dir, "empty.hcl")
	writeFile(t, empty, nil)
	if code, _, stderr = runCLI("-config", empty); code != exitError || !strings.Contains(stderr, "declares no app") {
		t.Fatalf("empty file: exit %d: %s", code, stderr)
	}
}
