package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"syscall"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/runners/assets"
	"github.com/dewy-agent/dewy-agent/runners/container"
	"github.com/dewy-agent/dewy-agent/runners/server"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/file"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
	grpcsrc "github.com/dewy-agent/dewy-agent/sources/grpc"
	"github.com/dewy-agent/dewy-agent/sources/gs"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/s3"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// signals maps config.StopSignals to signals.
var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT, "SIGHUP": syscall.SIGHUP,
	"SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2, "SIGWINCH": syscall.SIGWINCH,
}

// This file is the one place that knows every source scheme and runner kind.

func (a *Agent) sourceOptions(logger *slog.Logger, app config.App) sources.Options {
	return sources.Options{
		Logger:     logger.With("source", app.Registry.Scheme),
		HTTPClient: a.metrics.appClient(a.opts.HTTPClient, app.Name),
		Now:        a.opts.Now,
	}
}

// newSource builds the source for the app's registry URL. config has already
// refused schemes this build does not have.
func newSource(app config.App, opts sources.Options) (sources.Source, error) {
	r := app.Registry
	switch r.Scheme {
	case "file":
		return file.New(r.Path, opts)
	case "ghr":
		return ghr.New(r.Host, r.Path, opts)
	case "s3":
		bucket, prefix, _ := strings.Cut(r.Path, "/")
		return s3.New(s3.Config{Region: r.Host, Bucket: bucket, Prefix: prefix, Endpoint: r.Options["endpoint"]}, opts)
	case "gs":
		return gs.New(gs.Config{Bucket: r.Host, Prefix: r.Path}, opts)
	case "img":
		repo := r.Host
		if r.Path != "" {
			repo += "/" + r.Path
		}
		return oci.New(oci.Config{Repository: repo}, opts)
	case "grpc":
		return grpcsrc.New(grpcsrc.Config{
			Target:  r.Host,
			NoTLS:   r.Options["no-tls"] == "true",
			Openers: artifactOpeners(opts),
			Command: app.Runner.Kind,
		}, opts)
	}
	return nil, fmt.Errorf("registry %s: scheme %q is not supported", r.URL, r.Scheme)
}

// artifactOpeners fetch a gRPC registry's artifact_url when it names another
// registry: s3://<region>/<bucket>/<key>, gs://<bucket>/<key> and
// ghr://<owner>/<repo>/<tag>/<asset>. Each uses that registry's own source,
// credentials chain included.
func artifactOpeners(opts sources.Options) map[string]grpcsrc.Opener {
	return map[string]grpcsrc.Opener{
		"s3": func(ctx context.Context, raw string) (io.ReadCloser, error) {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, err
			}
			bucket, key, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
			src, err := s3.New(s3.Config{Region: u.Host, Bucket: bucket}, opts)
			if err != nil {
				return nil, err
			}
			return src.Open(ctx, version.Release{}, version.Asset{Name: path.Base(key), Ref: key, Size: -1})
		},
		"gs": func(ctx context.Context, raw string) (io.ReadCloser, error) {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, err
			}
			key := strings.TrimPrefix(u.Path, "/")
			src, err := gs.New(gs.Config{Bucket: u.Host}, opts)
			if err != nil {
				return nil, err
			}
			return src.Open(ctx, version.Release{}, version.Asset{Name: path.Base(key), Ref: key, Size: -1})
		},
		"ghr": func(ctx context.Context, raw string) (io.ReadCloser, error) {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, err
			}
			parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
			if len(parts) != 3 {
				return nil, fmt.Errorf("artifact_url %s: want ghr://<owner>/<repo>/<tag>/<asset>", raw)
			}
			src, err := ghr.New(u.Host, parts[0], opts)
			if err != nil {
				return nil, err
			}
			rels, err := src.Releases(ctx)
			if err != nil {
				return nil, err
			}
			for _, rel := range rels {
				if rel.Tag != parts[1] {
					continue
				}
				for _, a := range rel.Assets {
					if a.Name == parts[2] {
						return src.Open(ctx, rel, a)
					}
				}
			}
			return nil, fmt.Errorf("artifact_url %s: no such release asset: %w", raw, sources.ErrNotFound)
		},
	}
}

// newRunner builds the runner for the app's runner block and says what it needs
// from a release. A runner handed over from the app's previous worker is kept.
func newRunner(app config.App, opts runners.Options, prev runners.Runner) (runners.Runner, runners.Input, error) {
	if prev != nil {
		return prev, inputOf(app.Runner.Kind), nil
	}
	switch app.Runner.Kind {
	case "assets":
		return assets.New(assets.Config{Link: app.Runner.Assets.Link}, opts), inputOf(app.Runner.Kind), nil
	case "server":
		c := app.Runner.Server
		cfg := server.Config{
			Command:       c.Command,
			Dir:           c.Dir,
			Ports:         c.Ports,
			Env:           c.Env,
			HealthPath:    c.HealthPath,
			HealthTimeout: c.HealthTimeout,
			StopSignal:    signals[c.StopSignal],
			StopTimeout:   c.StopTimeout,
			Restart:       c.Restart,
			CrashWindow:   c.CrashWindow,
		}
		if err := cfg.Validate(); err != nil {
			return nil, "", fmt.Errorf("runner \"server\": %w", err)
		}
		return server.New(cfg, opts), inputOf(app.Runner.Kind), nil
	case "container":
		c := app.Runner.Container
		cfg := container.Config{
			App: app.Name, Ports: c.Ports, Replicas: c.Replicas, HealthPath: c.HealthPath,
			HealthTimeout: c.HealthTimeout, DrainTime: c.DrainTime, Env: c.Env, Volumes: c.Volumes,
			Command: c.Command, User: c.User, Network: c.Network, Memory: c.Memory, CPUs: c.CPUs,
			CrashWindow: c.CrashWindow,
		}
		if err := cfg.Validate(); err != nil {
			return nil, "", fmt.Errorf("runner \"container\": %w", err)
		}
		return container.New(cfg, opts), inputOf(app.Runner.Kind), nil
	}
	return nil, "", fmt.Errorf("runner %q is not supported", app.Runner.Kind)
}

// inputOf says what a runner kind needs from a release.
func inputOf(kind string) runners.Input {
	if kind == "container" {
		return runners.Image
	}
	return runners.Files
}
