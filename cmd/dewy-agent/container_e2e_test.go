package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/dewy-agent/dewy-agent/internal/testimage"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/runners/container"
)

// TestContainerEndToEnd runs the real binary with an img:// registry (an
// in-process OCI registry on 127.0.0.1) and the container runner on the real
// Docker engine: the newest stable tag is deployed (pre-releases and latest
// ignored), a new tag is rolled out under continuous requests through the
// proxy with none failed, a restarted agent adopts the running containers, and
// removing the app from the file removes them.
func TestContainerEndToEnd(t *testing.T) {
	cli, app := dockerApp(t, "e2e-")
	reg := testimage.NewRegistry(t)
	push := func(tag, version string) {
		img := testimage.Build(t, version, testimage.Options{Labels: map[string]string{"dewy-agent.test": app}})
		reg.MustPush(t, "web", tag, img)
	}
	push("v1.0.0", "v1.0.0")
	push("v1.1.0-rc.1", "v1.1.0-rc.1")
	push("latest", "latest")

	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	port := freePort(t)
	cfg := filepath.Join(dir, "dewy.hcl")
	appBlock := fmt.Sprintf(`
app %q {
  registry = "img://%s"
  interval = "1s"
  runner "container" {
    ports        = ["%d"]
    replicas     = 2
    health_path  = "/health"
    drain_time   = "1s"
    crash_window = "1s"
    env          = { MODE = "a" }
  }
}
`, app, reg.Repository("web"), port)
	agentBlock := fmt.Sprintf("agent {\n  state_dir = %q\n  admin = \"\"\n}\n", state)
	writeFile(t, cfg, []byte(agentBlock+appBlock))
	url := fmt.Sprintf("http://127.0.0.1:%d/version", port)

	p := startAgent(t, cfg)
	waitAnswer(t, p, url, "v1.0.0")
	waitState(t, p, state, app, "v1.0.0")
	if ids := containerIDs(t, cli, app); len(ids) != 2 {
		t.Fatalf("%d containers, want 2 replicas", len(ids))
	}

	// A new tag rolls out under load through the proxy.
	load := testkit.StartLoad(url, testkit.LoadOptions{Workers: 4})
	push("v1.1.0", "v1.1.0")
	waitAnswer(t, p, url, "v1.1.0")
	waitState(t, p, state, app, "v1.1.0")
	res := load.Stop()
	if res.Failed != 0 || res.Sent < 50 {
		t.Fatalf("during the rolling update: %d of %d requests failed; first: %v", res.Failed, res.Sent, res.Errors)
	}
	running := containerIDs(t, cli, app)
	if len(running) != 2 {
		t.Fatalf("%d containers after the update, want 2", len(running))
	}

	// Agent restart: the containers keep running and are adopted.
	p.stop(t)
	if got := containerIDs(t, cli, app); !slices.Equal(got, running) {
		t.Fatalf("agent shutdown changed the containers: %v -> %v", running, got)
	}
	p = startAgent(t, cfg)
	waitAnswer(t, p, url, "v1.1.0")
	if got := containerIDs(t, cli, app); !slices.Equal(got, running) {
		t.Fatalf("the restarted agent replaced the containers: %v -> %v", running, got)
	}

	// A changed container setting replaces the containers by a rolling update.
	writeFile(t, cfg, []byte(agentBlock+strings.Replace(appBlock, `MODE = "a"`, `MODE = "b"`, 1)))
	for i := 0; ; i++ {
		ids := containerIDs(t, cli, app)
		if len(ids) == 2 && !slices.Contains(running, ids[0]) && !slices.Contains(running, ids[1]) {
			break
		}
		if i > 600 {
			t.Fatalf("containers after the runner block changed: %v (before %v)", ids, running)
		}
		sleep()
	}
	waitAnswer(t, p, url, "v1.1.0")

	// Removing the app from the file removes its containers. Another app
	// stays: a file without any app is refused on reload (-allow-empty).
	writeFile(t, cfg, []byte(agentBlock+"app \"other\" {\n  registry = \"file:///nonexistent/other\"\n  runner \"assets\" {}\n}\n"))
	for i := 0; len(containerIDs(t, cli, app)) != 0; i++ {
		if i > 600 {
			t.Fatalf("containers left after the app was removed: %v", containerIDs(t, cli, app))
		}
		sleep()
	}
	p.stop(t)
	if !strings.Contains(p.logs(), "removed=1") {
		t.Fatalf("no reload removing the app in the log")
	}
}

// dockerApp skips the test unless it is a slow run and a Docker engine
// answers; it returns a client for the engine (closed at cleanup) and a
// fresh app name starting with prefix, whose containers and test images are
// removed at cleanup.
func dockerApp(t *testing.T, prefix string) (*client.Client, string) {
	t.Helper()
	testkit.Slow(t, "end-to-end test on the Docker engine")
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err = cli.Ping(ctx)
		cancel()
	}
	if err != nil {
		t.Skipf("skipped: no Docker engine answers (%v)", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	app := prefix + hex.EncodeToString(b)
	t.Cleanup(func() {
		removeApp(cli, app)
		cli.Close()
	})
	return cli, app
}

// containerIDs lists the running containers of app, sorted.
func containerIDs(t *testing.T, cli *client.Client, app string) []string {
	t.Helper()
	list, err := cli.ContainerList(t.Context(), dcontainer.ListOptions{Filters: filters.NewArgs(filters.Arg("label", container.LabelApp+"="+app))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// removeApp removes every container and test image of app.
func removeApp(cli *client.Client, app string) {
	testimage.Clean(context.Background(), cli, container.LabelApp, "dewy-agent.test", app)
}
