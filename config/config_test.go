package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/runners"
	assetsrun "github.com/dewy-agent/dewy-agent/runners/assets"
	"github.com/dewy-agent/dewy-agent/runners/container"
	"github.com/dewy-agent/dewy-agent/runners/server"
	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources/file"
	ghrsrc "github.com/dewy-agent/dewy-agent/sources/ghr"
	"github.com/dewy-agent/dewy-agent/sources/oci"
)

// render loads a fixture and returns its diagnostics as the user sees them.
func render(t *testing.T, path string) (*File, hcl.Diagnostics, string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := Parse(path, src)
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, path, src, diags, false); err != nil {
		t.Fatalf("WriteDiagnostics: %v", err)
	}
	return f, diags, buf.String()
}

func TestBadFixtures(t *testing.T) {
	tests := []badFixture{
		{name: "unknown attribute", file: "unknown_attribute.bad.hcl", at: "3,3", want: []string{"Unsupported argument", `"intervall"`, `Did you mean "interval"?`, `   3:   intervall = "30s"`}},
		{name: "unknown block", file: "unknown_block.bad.hcl", at: "6,1", want: []string{"Unsupported block type", `"hooks"`}},
		{name: "unknown scheme", file: "unknown_scheme.bad.hcl", at: "2,14", want: []string{`unknown registry scheme "ftp" (supported: file, ghr, gs, grpc, img, s3)`}},
		{
			name: "hooks and notifiers",
			file: "hooks.bad.hcl",
			want: []string{
				"hooks.bad.hcl:3,14:", "notify[0]:", "notify[1]:",
				"hooks.bad.hcl:7,21:", `timeout: "forever" is not a duration`,
				"hooks.bad.hcl:9,3:", "already has a hooks block at line 5",
			},
		},
		{
			name: "container runner settings",
			file: "container.bad.hcl",
			want: []string{
				"container.bad.hcl:3,14:", "artifact cannot be used with an img:// registry",
				"container.bad.hcl:5,18:", `port "8080:80:70" is not`, `port "http" is not`,
				"container.bad.hcl:6,18:", "replicas is 0",
				"container.bad.hcl:7,18:", `network "host" is refused`,
				"container.bad.hcl:8,18:", "privileged is refused",
				"container.bad.hcl:9,18:", "cap_add is refused",
				"container.bad.hcl:15,14:", "report cannot be used with an img:// registry",
			},
		},
		{
			name: "server runner settings",
			file: "server_settings.bad.hcl",
			want: []string{
				"server_settings.bad.hcl:3,3:", "needs command",
				"server_settings.bad.hcl:4,22:", "port 8000 is listed twice", "port 70000 is not a number from 1 to 65535",
				"server_settings.bad.hcl:5,22:", `health_path "health" must start with "/"`,
				"server_settings.bad.hcl:6,22:", `health_timeout: "soon" is not a duration`,
				"server_settings.bad.hcl:7,22:", `stop_signal "SIGKILL" is not one of`,
				"server_settings.bad.hcl:8,22:", `restart "sometimes" is not one of`,
				"server_settings.bad.hcl:9,22:", `dir "../outside" leaves the release directory`,
			},
		},
		{name: "pre_release and artifact with grpc", file: "grpc_options.bad.hcl", at: "3,17", want: []string{"pre_release cannot be used with a grpc:// registry", "grpc_options.bad.hcl:4,17:", "slot cannot be used with a grpc:// registry"}},
		{
			name: "calver and slot",
			file: "calver_slot.bad.hcl",
			want: []string{
				"calver_slot.bad.hcl:3,14:", "Invalid calver", `"QQ" where a token (YYYY, YY, 0Y, MM, 0M, WW, 0W, DD, 0D, MICRO)`,
				"calver_slot.bad.hcl:4,14:", "Invalid slot", `slot "blue+green" cannot be build metadata`,
				"calver_slot.bad.hcl:9,14:", "Conflicting calver", "?calver=YYYY.0M.MICRO",
				"calver_slot.bad.hcl:13,14:", "Invalid calver option", `the calver format "nope"`,
				"calver_slot.bad.hcl:18,14:", "slot cannot be used with an img:// registry",
			},
		},
		{name: "unknown query option", file: "bad_query_option.bad.hcl", at: "2,14", want: []string{"Unknown registry option", `"prerelease"`, "pre-release, artifact"}},
		{name: "repeated query option", file: "repeated_option.bad.hcl", at: "2,14", want: []string{"Repeated registry option", `"artifact" appears 2 times`}},
		{name: "pre-release option not a bool", file: "bad_pre_release_option.bad.hcl", at: "2,14", want: []string{"?pre-release=yes must be true or false"}},
		{name: "conflicting pre_release", file: "conflicting_pre_release.bad.hcl", at: "3,17", want: []string{"Conflicting pre_release", "?pre-release=true", "both are set"}},
		{name: "conflicting artifact", file: "conflicting_artifact.bad.hcl", at: "3,14", want: []string{"Conflicting artifact", `artifact = "b.tar.gz"`, "?artifact=a.tar.gz", "both are set"}},
		{name: "missing runner", file: "missing_runner.bad.hcl", at: "1,1", want: []string{`app "api" has no runner block; add runner "assets" {...}`}},
		{name: "two runners", file: "two_runners.bad.hcl", at: "4,3", want: []string{"Duplicate runner block", "runner block at line 3"}},
		{name: "unknown runner kind", file: "unknown_runner_kind.bad.hcl", at: "3,10", want: []string{`unknown runner kind "static" (supported: assets, container, server)`}},
		{name: "duplicate app", file: "duplicate_app.bad.hcl", at: "6,1", want: []string{"Duplicate app", `"api" is already defined at line 1`}},
		{name: "bad duration", file: "bad_duration.bad.hcl", at: "3,14", want: []string{`interval: "5 minutes" is not a duration; use e.g. "30s", "5m"`}},
		{name: "interval too short", file: "short_interval.bad.hcl", at: "3,14", want: []string{`"500ms" is shorter than "1s"`}},
		{name: "keep_releases zero", file: "bad_keep_releases.bad.hcl", at: "3,19", want: []string{"keep_releases is 0; it must be at least 1"}},
		{name: "bad app name", file: "bad_name.bad.hcl", at: "1,5", want: []string{"Invalid app name", `"../etc"`}},
		{name: "bad log level", file: "bad_log_level.bad.hcl", at: "2,15", want: []string{`log_level "verbose" is not one of "debug", "info", "warn", "error"`}},
		{name: "bad log format", file: "bad_log_format.bad.hcl", at: "2,16", want: []string{`log_format "yaml" is not one of "text", "json"`}},
		{name: "admin without port", file: "bad_admin.bad.hcl", at: "2,11", want: []string{`admin "localhost" is not host:port`}},
		{name: "admin with a named port", file: "bad_admin_port.bad.hcl", at: "2,11", want: []string{`has port "http", which is not a number`}},
		{name: "syntax error", file: "syntax_error.bad.hcl", at: "1,11", want: []string{"Unclosed configuration block"}},
		{name: "file registry with two slashes", file: "file_relative.bad.hcl", at: "2,14", want: []string{`"releases" after "file://" is read as a host name`, "three slashes", `"file:///srv/releases/myapp"`}},
		{name: "ghr without repository", file: "ghr_missing_repo.bad.hcl", at: "2,14", want: []string{`"ghr://<owner>/<repo>" with exactly two non-empty parts`}},
		{name: "two agent blocks", file: "two_agents.bad.hcl", at: "5,1", want: []string{"Duplicate agent block", "the first is at line 1"}},
		{name: "registry without scheme", file: "missing_scheme.bad.hcl", at: "2,14", want: []string{"registry has no scheme", `"ghr://owner/repo"`}},
		{name: "no registry", file: "missing_registry.bad.hcl", at: "1,1", want: []string{`app "api" has no registry`}},
		{name: "credentials in the URL", file: "credentials.bad.hcl", at: "2,14", want: []string{"credentials do not belong in the URL; use GITHUB_TOKEN"}},
		{name: "relative link", file: "relative_link.bad.hcl", at: "4,12", want: []string{`link "www" is relative`}},
		{name: "unknown function", file: "unknown_function.bad.hcl", at: "2,14", want: []string{"Call to unknown function", `"getenv"`}},
		{name: "variable reference", file: "variable.bad.hcl", at: "2,14", want: []string{"Variables not allowed"}},
		{name: "value of the wrong type", file: "wrong_type.bad.hcl", at: "3,17", want: []string{"pre_release must be true or false"}},
		{
			name: "every error in the file",
			file: "many_errors.bad.hcl",
			want: []string{
				"many_errors.bad.hcl:3,15:", `log_level "loud"`,
				"many_errors.bad.hcl:4,3:", `"colour"`,
				"many_errors.bad.hcl:8,14:", `an img:// registry holds container images`,
				"many_errors.bad.hcl:9,14:", `"often" is not a duration`,
				"many_errors.bad.hcl:13,1:", `app "web" has no runner block`,
				"many_errors.bad.hcl:14,19:", "?pre-release=maybe",
				"many_errors.bad.hcl:15,19:", "keep_releases is 0",
				"many_errors.bad.hcl:18,1:", `"api" is already defined at line 7`,
				"many_errors.bad.hcl:19,14:", `"relative" after "file://"`,
				"many_errors.bad.hcl:20,3:", `runner "container" runs images from an img:// registry`,
			},
		},
		{
			name: "verify blocks",
			file: "verify.bad.hcl",
			want: []string{
				"verify.bad.hcl:3,14:", "names a signature file",
				"verify.bad.hcl:5,29:", "Invalid minisign public key",
				"verify.bad.hcl:6,28:", "Unreadable ssh_allowed_signers", "no_such_allowed_signers does not exist",
				"verify.bad.hcl:8,3:", "Duplicate verify block", "verify block at line 4",
				"verify.bad.hcl:16,3:", "Verify block checks no image", "add cosign_public_key",
				"verify.bad.hcl:28,25:", "Both issuer and issuer_regexp", "has issuer at line 27 and issuer_regexp; keep one",
				"verify.bad.hcl:29,25:", "Invalid identity_regexp", "is not a Go regular expression: error parsing regexp: missing closing )",
			},
		},
		{
			// What a registry or runner checks is reported with the schema's
			// errors, each at its line (issue 11).
			name: "five mistakes of four owners at once",
			file: "five_mistakes.bad.hcl",
			want: []string{
				"five_mistakes.bad.hcl:5,14:", `target "localhost" has no port; a port is required with no-tls`,
				"five_mistakes.bad.hcl:8,15:", "port 70000 is not a number from 1 to 65535",
				"five_mistakes.bad.hcl:14,3:", `An argument named "intervall" is not expected here`,
				"five_mistakes.bad.hcl:16,18:", "privileged is refused",
				"five_mistakes.bad.hcl:17,18:", "replicas is 100; it must be at most 64",
			},
		},
	}

	onDisk, err := filepath.Glob("testdata/*.bad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	runBadFixtures(t, tests, onDisk)
}

func TestGoodFixtures(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	ghr := func(url, owner, repo string) Registry {
		return Registry{URL: url, Scheme: "ghr", Settings: ghrsrc.Config{Owner: owner, Repo: repo}}
	}
	assets := func(link string) runners.Settings {
		return assetsrun.Config{Link: link}
	}
	defaultAgent := Agent{StateDir: DefaultStateDir, LogLevel: DefaultLogLevel, LogFormat: DefaultLogFormat, Admin: DefaultAdmin}
	verifyGood := &signing.Settings{
		MinisignPublicKeys: []string{"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"},
		SSH: &signing.SSHSettings{
			AllowedSigners: signing.KeyFile{Path: filepath.Join(testdata, "verify_allowed_signers"), Data: readFile(t, filepath.Join(testdata, "verify_allowed_signers"))},
			Namespace:      "release",
		},
	}

	tests := []struct {
		name string
		file string
		env  map[string]string
		want File
	}{
		{
			name: "minimal file gets every default",
			file: "minimal.good.hcl",
			want: File{
				Agent: defaultAgent,
				Apps: []App{{
					Name:         "api",
					Registry:     ghr("ghr://linyows/myapp", "linyows", "myapp"),
					Interval:     30 * time.Second,
					KeepReleases: 7,
					Runner:       assets(""),
				}},
			},
		},
		{
			name: "every option set",
			file: "full.good.hcl",
			want: File{
				Agent: Agent{StateDir: "/srv/dewy", LogLevel: "debug", LogFormat: "json", Admin: "0.0.0.0:9000", AdminToken: "fixture-admin-token"},
				Apps: []App{{
					Name:         "api",
					Registry:     ghr("ghr://linyows/myapp", "linyows", "myapp"),
					PreRelease:   true,
					Artifact:     "myapp_linux_amd64.tar.gz",
					Interval:     5 * time.Minute,
					KeepReleases: 3,
					Report:       true,
					Runner:       assets("/var/www/html"),
				}},
			},
		},
		{
			name: "several apps, URL options folded, relative state_dir",
			file: "multi.good.hcl",
			want: File{
				Agent: Agent{StateDir: filepath.Join(testdata, "state"), LogLevel: "info", LogFormat: "text", Admin: ""},
				Apps: []App{
					{
						Name:         "api",
						Registry:     ghr("ghr://linyows/myapp?pre-release=true&artifact=myapp_linux_amd64.tar.gz", "linyows", "myapp"),
						PreRelease:   true,
						Artifact:     "myapp_linux_amd64.tar.gz",
						Interval:     30 * time.Second,
						KeepReleases: 7,
						Runner:       assets(""),
					},
					{
						Name:         "site.v2",
						Registry:     Registry{URL: "file:///srv/releases//site/", Scheme: "file", Settings: file.Config{Path: "/srv/releases/site"}},
						Artifact:     "site.tar.gz",
						Interval:     time.Second,
						KeepReleases: 7,
						Runner:       assets("/var/www/site"),
					},
					{
						Name:         "docs_1-x",
						Registry:     ghr("ghr://dewy-agent/docs.site?artifact=docs.zip&pre-release=false", "dewy-agent", "docs.site"),
						Artifact:     "docs.zip",
						Interval:     90 * time.Minute,
						KeepReleases: 1,
						Runner:       assets(""),
					},
				},
			},
		},
		{
			name: "server runner with every setting, and one with defaults",
			file: "server.good.hcl",
			want: File{
				Agent: Agent{StateDir: DefaultStateDir, LogLevel: "info", LogFormat: "text", Admin: DefaultAdmin},
				Apps: []App{
					{
						Name:         "api",
						Registry:     ghr("ghr://linyows/myapp", "linyows", "myapp"),
						Interval:     30 * time.Second,
						KeepReleases: 7,
						Runner: server.Config{
							Command: []string{"./myapp", "-listen-from-env"}, Dir: "bin", Ports: []int{8000, 8001},
							Env: map[string]string{"APP_ENV": "production"}, HealthPath: "/health", HealthTimeout: 10 * time.Second,
							StopSignal: syscall.SIGINT, StopTimeout: 5 * time.Second, Restart: "on-failure", CrashWindow: 3 * time.Second,
							SettleTime: server.DefaultSettleTime,
						},
					},
					{
						Name:         "worker",
						Registry:     ghr("ghr://linyows/myapp", "linyows", "myapp"),
						Interval:     30 * time.Second,
						KeepReleases: 7,
						Runner: server.Config{
							Command: []string{"./worker"}, HealthTimeout: server.DefaultHealthTimeout,
							StopSignal: syscall.SIGTERM, StopTimeout: server.DefaultStopTimeout, Restart: "always", CrashWindow: server.DefaultCrashWindow,
							SettleTime: server.DefaultSettleTime,
						},
					},
				},
			},
		},
		{
			name: "hooks and notifiers",
			file: "hooks.good.hcl",
			want: File{
				Agent: Agent{StateDir: DefaultStateDir, LogLevel: "info", LogFormat: "text", Admin: DefaultAdmin, Notify: []string{"https://hooks.example.com/dewy"}},
				Apps: []App{
					{
						Name:         "api",
						Registry:     ghr("ghr://linyows/myapp", "linyows", "myapp"),
						Interval:     30 * time.Second,
						KeepReleases: 7,
						Runner:       assets(""),
						Notify:       []string{"slack://deploys?title=api", "mail://smtp.example.com:587/ops@example.com?from=dewy@example.com&quiet=true"},
						Hooks:        Hooks{BeforeDeploy: "pg_dump mydb > /backup/db.sql", AfterDeploy: "systemctl reload nginx", Timeout: 2 * time.Minute},
					},
					{
						Name:         "docs",
						Registry:     ghr("ghr://linyows/docs", "linyows", "docs"),
						Interval:     30 * time.Second,
						KeepReleases: 7,
						Runner:       assets(""),
						Hooks:        Hooks{AfterDeploy: "echo done", Timeout: DefaultHookTimeout},
					},
				},
			},
		},
		{
			name: "container runner with every setting, and one with defaults",
			file: "container.good.hcl",
			want: File{
				Agent: Agent{StateDir: DefaultStateDir, LogLevel: "info", LogFormat: "text", Admin: DefaultAdmin},
				Apps: []App{
					{
						Name:         "web",
						Registry:     Registry{URL: "img://ghcr.io/myorg/web?pre-release=true", Scheme: "img", Settings: oci.Config{Repository: "ghcr.io/myorg/web"}},
						PreRelease:   true,
						Interval:     30 * time.Second,
						KeepReleases: 7,
						Runner: container.Config{
							Ports: []string{"8080:80", "9090"}, Replicas: 2, HealthPath: "/health", HealthTimeout: 20 * time.Second,
							DrainTime: 15 * time.Second, Env: map[string]string{"DATABASE_URL": "postgres://db/web"},
							Volumes: []string{"/data:/app/data", "cache:/cache:ro"}, Command: []string{"serve", "--port", "80"},
							User: "1000:1000", Network: "backend", Memory: "512m", CPUs: 1.5, CrashWindow: 5 * time.Second,
							StopTimeout: container.DefaultStopTimeout, SettleTime: container.DefaultSettleTime, KeepImages: container.DefaultKeepImages,
						},
					},
					{
						Name:         "worker",
						Registry:     Registry{URL: "img://myuser/worker", Scheme: "img", Settings: oci.Config{Repository: "myuser/worker"}},
						Interval:     30 * time.Second,
						KeepReleases: 7,
						Runner: container.Config{
							Replicas: 1, HealthTimeout: container.DefaultHealthTimeout, DrainTime: container.DefaultDrainTime, CrashWindow: container.DefaultCrashWindow,
							StopTimeout: container.DefaultStopTimeout, SettleTime: container.DefaultSettleTime, KeepImages: container.DefaultKeepImages,
						},
					},
				},
			},
		},
		{
			name: "env() in strings and templates",
			file: "env.good.hcl",
			env: map[string]string{
				"DEWY_TEST_ROOT":      "/opt/dewy",
				"DEWY_TEST_LOG_LEVEL": "warn",
				"DEWY_TEST_OWNER":     "octo-org",
				"DEWY_TEST_INTERVAL":  "2m",
			},
			want: File{
				Agent: Agent{StateDir: "/opt/dewy/state", LogLevel: "warn", LogFormat: "text", Admin: DefaultAdmin},
				Apps: []App{{
					Name:         "api",
					Registry:     ghr("ghr://octo-org/myapp", "octo-org", "myapp"),
					Interval:     2 * time.Minute,
					KeepReleases: 7,
					Runner:       assets("/opt/dewy/www"),
				}},
				Secrets: []string{"/opt/dewy", "warn", "octo-org", "2m"},
			},
		},
		{
			name: "verify block, keys read from the config file's folder",
			file: "verify.good.hcl",
			want: File{
				Agent: defaultAgent,
				Apps: []App{
					{Name: "api", Registry: ghr("ghr://linyows/myapp", "linyows", "myapp"), Interval: 30 * time.Second, KeepReleases: 7, Runner: assets(""), Verify: verifyGood},
					{Name: "docs", Registry: ghr("ghr://linyows/docs", "linyows", "docs"), Interval: 30 * time.Second, KeepReleases: 7, Runner: assets("")},
				},
			},
		},
	}

	onDisk, err := filepath.Glob("testdata/*.good.hcl")
	if err != nil {
		t.Fatal(err)
	}
	covers := tableCoversDisk(t, "good", onDisk)
	for _, tt := range tests {
		covers(tt.file)
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			unsetEnv(t, "DEWY_TEST_UNSET")
			path := filepath.Join("testdata", tt.file)
			f, diags, out := render(t, path)
			if len(diags) != 0 {
				t.Fatalf("want no diagnostics, got:\n%s", out)
			}
			want := tt.want
			want.Path = path
			if !reflect.DeepEqual(*f, want) {
				t.Errorf("decoded\n%#v\nwant\n%#v", *f, want)
			}
		})
	}
}

// readFile is the content of path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unsetEnv removes name from the environment for the test, restoring it after.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // registers the restore
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

func TestEnvFunction(t *testing.T) {
	const src = `
agent {
  admin = env("DEWY_TEST_ADMIN")
}
app "api" {
  registry = "ghr://${env("DEWY_TEST_OWNER")}/${env("DEWY_TEST_REPO")}"
  artifact = env("DEWY_TEST_NOT_SET")
  runner "assets" {}
}
`
	t.Setenv("DEWY_TEST_ADMIN", "127.0.0.1:0")
	t.Setenv("DEWY_TEST_OWNER", "someone")
	t.Setenv("DEWY_TEST_REPO", "something")
	unsetEnv(t, "DEWY_TEST_NOT_SET")

	f, diags := Parse("env.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if f.Agent.Admin != "127.0.0.1:0" {
		t.Errorf("admin = %q, want the environment's value", f.Agent.Admin)
	}
	app, ok := f.App("api")
	if !ok {
		t.Fatal(`no app "api"`)
	}
	if app.Registry.Settings != (ghrsrc.Config{Owner: "someone", Repo: "something"}) {
		t.Errorf("registry = %+v, want someone/something", app.Registry)
	}
	if app.Artifact != "" {
		t.Errorf("artifact = %q, want empty for an unset variable", app.Artifact)
	}

	// The environment is read at parse time: a new value means a new File.
	t.Setenv("DEWY_TEST_REPO", "other")
	f2, diags := Parse("env.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got, _ := f2.App("api"); got.Registry.Settings != (ghrsrc.Config{Owner: "someone", Repo: "other"}) {
		t.Errorf("after the change, registry = %+v, want someone/other", got.Registry.Settings)
	}
}

func TestEnvFunctionMisuse(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want string
	}{
		{name: "no argument", expr: `env()`, want: "Not enough function arguments"},
		{name: "two arguments", expr: `env("A", "B")`, want: "Too many function arguments"},
		{name: "null argument", expr: `env(null)`, want: "Invalid function argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "app \"api\" {\n  registry = " + tt.expr + "\n  runner \"assets\" {}\n}\n"
			_, diags := Parse("misuse.hcl", []byte(src))
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var buf bytes.Buffer
			if err := WriteDiagnostics(&buf, "misuse.hcl", []byte(src), diags, false); err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"misuse.hcl:2,", tt.want} {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("diagnostics lack %q:\n%s", w, buf.String())
				}
			}
			if strings.Contains(buf.String(), "no registry") {
				t.Errorf("a failed expression is reported twice:\n%s", buf.String())
			}
		})
	}
}

func TestParseIsDeterministic(t *testing.T) {
	const src = `
app "a" {
  registry = "ghr://owner/a"
  runner "assets" {}
}
app "b" {
  registry = "file:///srv/b?artifact=b.tar.gz"
  interval = "1m"
  runner "assets" {
    link = "/var/www/b"
  }
}
`
	f1, diags := Parse("same.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	f2, _ := Parse("same.hcl", []byte(src))
	if !reflect.DeepEqual(f1, f2) {
		t.Fatalf("two parses of one source differ:\n%#v\n%#v", f1, f2)
	}

	changed := strings.Replace(src, `interval = "1m"`, `interval = "2m"`, 1)
	f3, diags := Parse("same.hcl", []byte(changed))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	for _, name := range []string{"a", "b"} {
		before, _ := f1.App(name)
		after, ok := f3.App(name)
		if !ok {
			t.Fatalf("app %q missing after the change", name)
		}
		if wantEqual := name == "a"; before.Equal(after) != wantEqual {
			t.Errorf("app %q: Equal = %v, want %v", name, !wantEqual, wantEqual)
		}
	}
	if _, ok := f3.App("c"); ok {
		t.Error(`App("c") found an app that does not exist`)
	}
}

func TestDiagnosticsOrderIsStable(t *testing.T) {
	// gohcl and hclsyntax report unknown attributes in map order; the output
	// must not depend on it.
	_, _, first := render(t, "testdata/many_errors.bad.hcl")
	for range 20 {
		if _, _, again := render(t, "testdata/many_errors.bad.hcl"); again != first {
			t.Fatalf("diagnostics changed between runs:\n%s\n---\n%s", first, again)
		}
	}
	src := []byte("app \"x\" {\n  zz = 1\n  aa = 2\n  mm = 3\n  registry = \"ghr://o/r\"\n  runner \"assets\" {}\n}\n")
	for range 20 {
		_, diags := Parse("order.hcl", src)
		var lines []int
		for _, d := range diags {
			lines = append(lines, d.Subject.Start.Line)
		}
		if !slices.Equal(lines, []int{2, 3, 4}) {
			t.Fatalf("diagnostic lines = %v, want [2 3 4]", lines)
		}
	}
}

func TestNullMeansDefault(t *testing.T) {
	const src = `
agent {
  log_level = null
}
app "api" {
  registry      = "ghr://o/r"
  interval      = null
  keep_releases = null
  runner "assets" {
    link = null
  }
}
`
	f, diags := Parse("null.hcl", []byte(src))
	if len(diags) != 0 {
		t.Fatal(diags.Error())
	}
	app, _ := f.App("api")
	if f.Agent.LogLevel != DefaultLogLevel || app.Interval != DefaultInterval || app.KeepReleases != DefaultKeepReleases || app.Runner != (assetsrun.Config{}) {
		t.Errorf("null did not give the defaults: %+v %+v", f.Agent, app)
	}
}

func TestNoApps(t *testing.T) {
	f, diags := Parse("empty.hcl", []byte("agent {\n  admin = \"\"\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if f == nil || len(f.Apps) != 0 {
		t.Fatalf("File = %+v, want one with no apps", f)
	}
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Subject == nil {
		t.Fatalf("want one warning with a range, got %v", diags)
	}
	if f.Agent.Admin != "" {
		t.Errorf(`admin = %q, want "" (turned off)`, f.Agent.Admin)
	}
}

// loadBad writes src to a file named name in a new folder and loads it,
// which must fail, and checks that the diagnostics as the CLI prints them
// hold each of want ("PATH" stands for the file's path). The source lines
// come from the file: WriteDiagnostics gets no source. It returns the path.
func loadBad(t *testing.T, name, src string, want ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	f, diags := Load(path)
	if f != nil || !diags.HasErrors() {
		t.Fatalf("want an error, got %v, %v", f, diags)
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, path, nil, diags, false); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if w = strings.ReplaceAll(w, "PATH", path); !strings.Contains(buf.String(), w) {
			t.Errorf("diagnostics lack %q:\n%s", w, buf.String())
		}
	}
	return path
}

func TestLoad(t *testing.T) {
	src := "agent {\n  state_dir = \"state\"\n}\napp \"api\" {\n  registry = \"ghr://o/r\"\n  interval = \"soon\"\n  runner \"assets\" {}\n}\n"
	path := loadBad(t, "dewy.hcl", src, "PATH:6,14:", `   6:   interval = "soon"`)
	dir := filepath.Dir(path)

	if err := os.WriteFile(path, []byte(strings.Replace(src, "soon", "10s", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, diags := Load(path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if want := filepath.Join(dir, "state"); f.Agent.StateDir != want {
		t.Errorf("state_dir = %q, want %q (relative to the file's folder)", f.Agent.StateDir, want)
	}
	if f.Path != path {
		t.Errorf("Path = %q, want %q", f.Path, path)
	}

	missing := filepath.Join(dir, "nope.hcl")
	f, diags = Load(missing)
	if f != nil || !diags.HasErrors() {
		t.Fatalf("Load of a missing file: File %v, diagnostics %v", f, diags)
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, missing, nil, diags, false); err != nil {
		t.Fatal(err)
	}
	if want := missing + ": Error: Cannot read config file"; !strings.Contains(buf.String(), want) {
		t.Errorf("diagnostics lack %q:\n%s", want, buf.String())
	}
}

func TestWriteDiagnosticsColor(t *testing.T) {
	src := []byte("app \"api\" {\n  registry = \"x://y\"\n  runner \"assets\" {}\n}\n")
	_, diags := Parse("c.hcl", src)
	var plain, color bytes.Buffer
	if err := WriteDiagnostics(&plain, "c.hcl", src, diags, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteDiagnostics(&color, "c.hcl", src, diags, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("plain output has escape codes:\n%q", plain.String())
	}
	if !strings.Contains(color.String(), "\x1b[") || !strings.HasPrefix(color.String(), "c.hcl:2,14: ") {
		t.Errorf("color output lacks escape codes or position:\n%q", color.String())
	}
}

func TestValidAppName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "letters", in: "api", want: true},
		{name: "all allowed characters", in: "Api_2.v-1", want: true},
		{name: "digit first", in: "9lives", want: true},
		{name: "63 characters", in: strings.Repeat("a", 63), want: true},
		{name: "64 characters", in: strings.Repeat("a", 64), want: false},
		{name: "empty", in: "", want: false},
		{name: "dot", in: ".", want: false},
		{name: "dot dot", in: "..", want: false},
		{name: "leading dot", in: ".hidden", want: false},
		{name: "leading dash", in: "-x", want: false},
		{name: "slash", in: "a/b", want: false},
		{name: "space", in: "a b", want: false},
		{name: "non-ASCII", in: "café", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validAppName(tt.in); got != tt.want {
				t.Errorf("validAppName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
