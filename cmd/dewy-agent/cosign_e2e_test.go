package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
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

// TestCosignEndToEnd runs the real binary with an img:// app whose verify
// block names a cosign.pub, on the real Docker engine: a signed image runs;
// an unsigned one, then one signed by another key, is refused before any
// container of it is created (signature_rejected notified, the old container
// still serving, the reason in state.json); signing it with the trusted key
// afterwards deploys it on the next poll. The same holds for signatures in
// cosign 3's layout, Sigstore bundles referring to the image.
func TestCosignEndToEnd(t *testing.T) {
	cli, app := dockerApp(t, "e2e-cosign-")
	reg := testimage.NewRegistry(t)
	key, stranger := testimage.NewCosignKey(t), testimage.NewCosignKey(t)
	push := func(v string) string {
		ref := reg.MustPush(t, "web", v, testimage.Build(t, v, testimage.Options{Labels: map[string]string{"dewy-agent.test": app}}))
		return ref[strings.LastIndex(ref, "@")+1:]
	}
	reg.MustSign(t, "web", push("v1.0.0"), key)

	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	writeFile(t, filepath.Join(dir, "cosign.pub"), key.PublicPEM())
	hook := newRecorder(t, `{}`)
	addr := freeAddr(t)
	port := freePort(t)
	cfg := filepath.Join(dir, "dewy.hcl")
	writeFile(t, cfg, fmt.Appendf(nil, `
agent {
  state_dir = %q
  admin     = %q
  notify    = ["%s/hook"]
}
app %q {
  registry = "img://%s"
  interval = "1s"
  verify {
    cosign_public_key = "cosign.pub"
  }
  runner "container" {
    ports       = ["%d"]
    health_path = "/health"
    drain_time  = "1s"
  }
}
`, state, addr, hook.srv.URL, app, reg.Repository("web"), port))
	url := fmt.Sprintf("http://127.0.0.1:%d/version", port)

	p := startAgent(t, cfg)
	defer p.stop(t)
	waitAnswer(t, p, url, "v1.0.0")
	waitState(t, p, state, app, "v1.0.0")
	fingerprint := keyFingerprint(t, key)
	statusShows(t, addr, app, "cosign key "+fingerprint)

	// Unsigned: refused, and no container of it was ever created.
	v11 := push("v1.1.0")
	waitBad(t, p, state, app, "v1.1.0", "no cosign signature for "+v11)
	testkit.Eventually(t, 15*time.Second, "signature_rejected at the webhook", func() bool {
		return strings.Contains(hook.all(), "signature_rejected")
	})
	noContainers(t, cli, app, "v1.1.0")
	statusShows(t, addr, app, "no cosign signature for "+v11)
	if got := get(url); got != "v1.0.0" {
		t.Fatalf("after the refusal the app answers %q, want v1.0.0 still", got)
	}

	// Signed by a key the agent does not trust: tried again (the signature
	// image is new) and refused again.
	reg.MustSign(t, "web", v11, stranger)
	waitBad(t, p, state, app, "v1.1.0", "signed by another key")
	noContainers(t, cli, app, "v1.1.0")
	statusShows(t, addr, app, "cosign (key "+fingerprint+"): signed by another key")
	if _, plan, planErr := runCLI("plan", "-config", cfg); !strings.Contains(plan, "skip (bad: signature rejected: cosign (key "+fingerprint[:20]) {
		t.Errorf("plan does not say why v1.1.0 is skipped:\n%s%s", plan, planErr)
	}

	// Signed by the trusted key: deployed on the next poll.
	reg.MustSign(t, "web", v11, key)
	waitAnswer(t, p, url, "v1.1.0")
	waitState(t, p, state, app, "v1.1.0")
	statusShows(t, addr, app, "cosign key "+fingerprint)

	// cosign 3's layout: Sigstore bundles in artifacts referring to the
	// image. The key's bundle for another image, attached to this one, is
	// refused; a bundle added later retries it; the key's own deploys it.
	v12 := push("v1.2.0")
	reg.MustAttachBundle(t, "web", v12, key.Bundle(v11), testimage.CosignSignPredicate)
	waitBad(t, p, state, app, "v1.2.0", "signature is for "+v11+", not the pinned "+v12)
	noContainers(t, cli, app, "v1.2.0")
	// Tried again once the stranger's bundle is there (the bad mark names
	// it), and refused again, still for the more telling reason.
	byStranger := reg.MustSignBundle(t, "web", v12, stranger)
	waitBadArtifact(t, state, app, "v1.2.0", "+"+byStranger)
	waitBad(t, p, state, app, "v1.2.0", "signature is for "+v11)
	noContainers(t, cli, app, "v1.2.0")
	reg.MustSignBundle(t, "web", v12, key)
	waitAnswer(t, p, url, "v1.2.0")
	waitState(t, p, state, app, "v1.2.0")
	statusShows(t, addr, app, "cosign key "+fingerprint)
}

// statusShows waits until `status -app` shows want (the admin API's view
// follows state.json shortly after).
func statusShows(t *testing.T, addr, app, want string) {
	t.Helper()
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, out, _ = runCLI("status", "-addr", addr, "-app", app); strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status does not show %q:\n%s", want, out)
		}
		sleep()
	}
}

// keyFingerprint is how the agent names a cosign key: SHA256: and the
// unpadded base64 of the SHA-256 of its DER.
func keyFingerprint(t *testing.T, k *testimage.CosignKey) string {
	t.Helper()
	block, _ := pem.Decode(k.PublicPEM())
	sum := sha256.Sum256(block.Bytes)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// waitBad waits until state.json records version as bad with a reason
// that contains why; the agent exiting meanwhile fails the test.
func waitBad(t *testing.T, p *proc, state, app, version, why string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, version+" marked bad for "+why, func() bool {
		select {
		case err := <-p.done:
			t.Fatalf("agent exited: %v\n%s", err, p.logs())
		default:
		}
		return hasBad(state, app, version, func(reason, _ string) bool { return strings.Contains(reason, why) })
	})
}

// waitBadArtifact waits until state.json records version as bad for an
// artifact identity that contains part.
func waitBadArtifact(t *testing.T, state, app, version, part string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, version+" marked bad for an identity with "+part, func() bool {
		return hasBad(state, app, version, func(_, artifact string) bool { return strings.Contains(artifact, part) })
	})
}

// hasBad reports whether app's state.json marks version bad with a reason
// and artifact identity that match.
func hasBad(state, app, version string, match func(reason, artifact string) bool) bool {
	var st struct {
		Bad []struct {
			Version  string `json:"version"`
			Reason   string `json:"reason"`
			Artifact string `json:"artifact"`
		} `json:"bad"`
	}
	data, _ := os.ReadFile(filepath.Join(state, "apps", app, "state.json"))
	json.Unmarshal(data, &st)
	for _, b := range st.Bad {
		if b.Version == version && match(b.Reason, b.Artifact) {
			return true
		}
	}
	return false
}

// noContainers fails the test when the engine has any container, running or
// not, of app's version.
func noContainers(t *testing.T, cli *client.Client, app, version string) {
	t.Helper()
	list, err := cli.ContainerList(t.Context(), dcontainer.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", container.LabelApp+"="+app), filters.Arg("label", container.LabelVersion+"="+version))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("%d containers of %s were created: %v", len(list), version, list[0].Names)
	}
}
