package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dewy-agent/dewy-agent/internal/fakegcs"
	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/internal/testsign"
	"github.com/dewy-agent/dewy-agent/sources/grpc/dewypb"
)

// sigRegistry is one registry kind for the signature tests: start makes it
// (a fake speaking its real protocol) and returns the app's registry lines,
// the agent's environment and put, which uploads file name of version v.
// On each, a signature uploaded after a refusal is tried again with no
// `dewy-agent retry`: the folder registries list it beside the artifact, and
// for grpc, whose server answers the same (same created_at), the agent
// fetches the signature URL while the version is marked bad.
type sigRegistry struct {
	name  string
	start func(t *testing.T) (appLines string, env []string, put func(v, name string, data []byte))
}

const sigArtifact = "site.tar.gz"

func sigRegistries() []sigRegistry {
	return []sigRegistry{
		{name: "file", start: func(t *testing.T) (string, []string, func(v, name string, data []byte)) {
			reg := filepath.Join(t.TempDir(), "registry")
			return fmt.Sprintf("registry = %q\n  artifact = %q", "file://"+reg, sigArtifact), nil,
				func(v, name string, data []byte) { writeFile(t, filepath.Join(reg, v, name), data) }
		}},
		{name: "s3", start: func(t *testing.T) (string, []string, func(v, name string, data []byte)) {
			backend := s3mem.New()
			backend.CreateBucket("releases")
			srv := httptest.NewServer(gofakes3.New(backend).Server())
			t.Cleanup(srv.Close)
			dir := t.TempDir()
			env := []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=example-secret", "AWS_EC2_METADATA_DISABLED=true",
				"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"), "AWS_ENDPOINT_URL="}
			return fmt.Sprintf("registry = %q\n  artifact = %q", "s3://us-east-1/releases/site?endpoint="+srv.URL, sigArtifact), env,
				func(v, name string, data []byte) {
					if _, err := backend.PutObject("releases", "site/"+v+"/"+name, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
						t.Fatal(err)
					}
				}
		}},
		{name: "gs", start: func(t *testing.T) (string, []string, func(v, name string, data []byte)) {
			srv, host := fakegcs.Start(t, nil, "releases")
			env := []string{"STORAGE_EMULATOR_HOST=" + host, "GOOGLE_APPLICATION_CREDENTIALS=", "HOME=" + t.TempDir()}
			return fmt.Sprintf("registry = %q\n  artifact = %q", "gs://releases/site", sigArtifact), env,
				func(v, name string, data []byte) {
					now := time.Now()
					srv.CreateObject(fakestorage.Object{
						ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "releases", Name: "site/" + v + "/" + name, Created: now, Updated: now},
						Content:     data,
					})
				}
		}},
		{name: "ghr", start: func(t *testing.T) (string, []string, func(v, name string, data []byte)) {
			gh := fakegithub.New(t)
			var mu sync.Mutex
			released := map[string]bool{}
			env := []string{"GITHUB_API_URL=" + gh.URL(), "GITHUB_TOKEN=ghp_signing_e2e", "GH_TOKEN="}
			return fmt.Sprintf("registry = %q\n  artifact = %q", "ghr://acme/site", sigArtifact), env,
				func(v, name string, data []byte) {
					mu.Lock()
					defer mu.Unlock()
					if !released[v] {
						released[v] = true
						gh.AddRelease("acme", "site", fakegithub.Release{Tag: v, Published: time.Now().Add(-time.Hour), Assets: map[string][]byte{name: data}})
						return
					}
					gh.AddAsset("acme", "site", v, name, data)
				}
		}},
		{name: "grpc", start: func(t *testing.T) (string, []string, func(v, name string, data []byte)) {
			reg := &sigGRPC{files: map[string][]byte{}, created: map[string]time.Time{}}
			files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reg.mu.Lock()
				b, ok := reg.files[r.URL.Path]
				reg.mu.Unlock()
				if !ok {
					http.NotFound(w, r)
					return
				}
				w.Write(b)
			}))
			t.Cleanup(files.Close)
			reg.base = files.URL
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			dewypb.RegisterRegistryServiceServer(srv, reg)
			go srv.Serve(ln)
			t.Cleanup(srv.Stop)
			return fmt.Sprintf("registry = %q", "grpc://"+ln.Addr().String()+"?no-tls=true"), nil,
				func(v, name string, data []byte) {
					reg.mu.Lock()
					defer reg.mu.Unlock()
					reg.files["/"+v+"/"+name] = data
					if name == sigArtifact {
						reg.tag = v
						reg.created[v] = time.Now().Add(-time.Hour).Truncate(time.Second)
					}
				}
		}},
	}
}

// sigGRPC is a dewy.RegistryService that hands out the newest artifact as
// an http URL on its file server, with a query, as a presigned URL has.
type sigGRPC struct {
	dewypb.UnimplementedRegistryServiceServer
	base    string
	mu      sync.Mutex
	tag     string
	files   map[string][]byte // by URL path
	created map[string]time.Time
}

func (g *sigGRPC) Current(context.Context, *dewypb.CurrentRequest) (*dewypb.CurrentResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return &dewypb.CurrentResponse{
		Id:          "id-" + g.tag,
		Tag:         g.tag,
		ArtifactUrl: g.base + "/" + g.tag + "/" + sigArtifact + "?token=t",
		CreatedAt:   timestamppb.New(g.created[g.tag]),
	}, nil
}

func (g *sigGRPC) Report(context.Context, *dewypb.ReportRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// minisignSigner is a minisign key pair made for the test.
type minisignSigner struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func newMinisignSigner(t *testing.T) minisignSigner {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return minisignSigner{pub: pub, priv: priv}
}

// id is the key ID as minisign and the agent print it.
func (s minisignSigner) id() string { return fmt.Sprintf("%X", s.pub.ID()) }

// sign signs data as `minisign -S` does (prehashed), with comment trusted.
func (s minisignSigner) sign(data []byte, comment string) []byte {
	r := minisign.NewReader(bytes.NewReader(data))
	_, _ = r.Read(make([]byte, len(data)+1))
	return r.SignWithComments(s.priv, comment, "signature from the test")
}

// TestSignedReleasesEveryRegistry runs the real binary with a verify block
// against every registry kind: a release signed by the trusted key is
// deployed; one signed by another key, one whose artifact was changed after
// signing, and one without a signature are each refused, marked bad,
// notified as signature_rejected and explained by status (which key, why),
// while the good release keeps running; a signature uploaded later is
// deployed.
func TestSignedReleasesEveryRegistry(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	trusted, other := newMinisignSigner(t), newMinisignSigner(t)
	pubText, err := trusted.pub.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sigRegistries() {
		t.Run(r.name, func(t *testing.T) {
			appLines, env, put := r.start(t)
			for _, kv := range env { // for plan, which runs in this process
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			hook := newRecorder(t, "{}")
			e := newEnv(t)
			addr := freeAddr(t)
			e.writeConfig(t, fmt.Sprintf("admin = %q", addr), fmt.Sprintf(`
app "site" {
  %s
  interval = "1s"
  notify   = [%q]
  verify {
    minisign_public_keys = [%q]
  }
  runner "assets" {}
}
`, appLines, hook.srv.URL+"/hook", string(pubText)))
			site := sigSite
			// publish uploads the signature (when given) before the artifact,
			// so no poll finds the artifact alone.
			publish := func(v string, art, sig []byte) {
				if sig != nil {
					put(v, sigArtifact+".minisig", sig)
				}
				put(v, sigArtifact, art)
			}

			good := site("v1.0.0")
			publish("v1.0.0", good, trusted.sign(good, "site v1.0.0 from ci"))
			p := startAgent(t, e.cfg, env...)
			waitVersion(t, p, e.state, "site", "v1.0.0")
			_, out, _ := runCLI("status", "-addr", addr, "-app", "site")
			if want := "minisign key " + trusted.id() + " (trusted comment: site v1.0.0 from ci)"; !strings.Contains(out, want) {
				t.Fatalf("status does not say what verified v1.0.0 (%s):\n%s", want, out)
			}

			v2 := site("v2.0.0")
			tampered := site("v3.0.0")
			v4 := site("v4.0.0")
			refusals := []struct {
				version string
				publish func()
				why     string // in the bad mark, status and the notification
			}{
				{version: "v2.0.0", publish: func() { publish("v2.0.0", v2, other.sign(v2, "not ours")) }, why: other.id()},
				{version: "v3.0.0", publish: func() { publish("v3.0.0", tampered, trusted.sign(site("v3.0.0-built"), "site v3")) }, why: trusted.id()},
				{version: "v4.0.0", publish: func() { publish("v4.0.0", v4, nil) }, why: sigArtifact + ".minisig"},
			}
			for _, ref := range refusals {
				ref.publish()
				expectRefused(t, addr, e.state, hook, ref.version, "v1.0.0", "minisign", ref.why)
			}
			_, plan, planErr := runCLI("plan", "-config", e.cfg)
			if !strings.Contains(plan, "signature rejected") {
				t.Errorf("plan does not say why v4.0.0 is skipped:\n%s%s", plan, planErr)
			}

			// The missing signature is uploaded: deployed.
			put("v4.0.0", sigArtifact+".minisig", trusted.sign(v4, "site v4.0.0 from ci"))
			waitVersion(t, p, e.state, "site", "v4.0.0")
			eventually(t, 10*time.Second, func() bool {
				_, out, _ = runCLI("status", "-addr", addr, "-app", "site", "-json")
				return strings.Contains(out, `"verified": "minisign key `+trusted.id()+` (trusted comment: site v4.0.0 from ci)"`)
			}, "status JSON showing what verified v4.0.0")
			p.stop(t)
		})
	}
}

// sigSite is the artifact of version v: a site whose index.html is v.
func sigSite(v string) []byte { return testkit.TarGz(map[string]string{"index.html": v + "\n"}) }

// expectRefused waits until status marks version bad with a signature
// refusal, then checks what every refusal must show: status says why (each
// of whys, such as the method and the key, on the version's bad line), the
// release good still runs, no release directory was made for version, and
// signature_rejected was notified for it.
func expectRefused(t *testing.T, addr, state string, hook *recorder, version, good string, whys ...string) {
	t.Helper()
	eventually(t, 30*time.Second, func() bool {
		_, out, _ := runCLI("status", "-addr", addr, "-app", "site")
		return strings.Contains(out, "bad versions:\n") && strings.Contains(out, "\n  "+version+" (") && strings.Contains(out, "signature rejected")
	}, "%s marked bad", version)
	_, out, _ := runCLI("status", "-addr", addr, "-app", "site")
	_, bad, _ := strings.Cut(out, "\n  "+version+" (")
	bad, _, _ = strings.Cut(bad, "\n")
	for _, why := range whys {
		if !strings.Contains(bad, why) {
			t.Errorf("%s: status does not say %q:\n%s", version, why, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(state, "apps", "site", "current", "index.html")); string(b) != good+"\n" {
		t.Fatalf("%s: current serves %q, want %s", version, b, good)
	}
	ents, _ := os.ReadDir(filepath.Join(state, "apps", "site", "releases"))
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), version) {
			t.Errorf("a release directory %s was made for the refused %s", ent.Name(), version)
		}
	}
	eventually(t, 10*time.Second, func() bool {
		all := hook.all()
		return strings.Contains(all, `"kind":"signature_rejected"`) && strings.Contains(all, `"version":"`+version+`"`)
	}, "signature_rejected notified for %s", version)
}

// signedRelease is one step of a file:// signing table: version's artifact
// and its signature file (nil: none) are published, the signature first so
// no poll finds the artifact alone; with art nil only the signature is
// uploaded (a signature that comes late). With refused set the release must
// be refused and status must say each of refused; otherwise it must be
// deployed and status must say verified.
type signedRelease struct {
	name     string
	version  string
	art, sig []byte
	refused  []string
	verified string
}

// runSignedReleases runs one agent on a file:// registry with the verify
// block verify (paths in it are relative to e.dir) and plays steps in order.
func runSignedReleases(t *testing.T, e *env, suffix, verify string, steps []signedRelease) {
	t.Helper()
	hook := newRecorder(t, "{}")
	addr := freeAddr(t)
	e.writeConfig(t, fmt.Sprintf("admin = %q", addr), fmt.Sprintf(`
app "site" {
  registry = "file://%s?artifact=%s"
  interval = "1s"
  notify   = [%q]
  verify {
    %s
  }
  runner "assets" {}
}
`, e.reg, sigArtifact, hook.srv.URL+"/hook", verify))
	var p *proc
	good := ""
	for _, st := range steps {
		if st.sig != nil {
			writeFile(t, filepath.Join(e.reg, st.version, sigArtifact+suffix), st.sig)
		}
		if st.art != nil {
			writeFile(t, filepath.Join(e.reg, st.version, sigArtifact), st.art)
		}
		if p == nil {
			p = startAgent(t, e.cfg)
		}
		if st.refused != nil {
			if good == "" {
				t.Fatalf("%s: the first step must be deployed", st.name)
			}
			expectRefused(t, addr, e.state, hook, st.version, good, st.refused...)
			continue
		}
		waitVersion(t, p, e.state, "site", st.version)
		good = st.version
		eventually(t, 10*time.Second, func() bool {
			_, out, _ := runCLI("status", "-addr", addr, "-app", "site")
			return strings.Contains(out, st.verified)
		}, "%s: status saying %q", st.name, st.verified)
	}
	p.stop(t)
}

// TestSSHSignedRelease: a release signed with `ssh-keygen -Y sign -n file`
// is deployed from a file:// registry; one signed by a key the allowed
// signers file does not list, one changed after signing and one without a
// .sig are refused; the missing signature uploaded later is deployed; one
// signed for another namespace is refused.
func TestSSHSignedRelease(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed")
	}
	e := newEnv(t)
	dir := t.TempDir()
	keygen := func(name string) string {
		key := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		return key
	}
	ci, stranger := keygen("ci"), keygen("stranger")
	pub, err := os.ReadFile(ci + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(pub))
	writeFile(t, filepath.Join(e.dir, "allowed_signers"), []byte("ci@example.com "+fields[0]+" "+fields[1]+"\n"))
	fp := func(key string) string {
		out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub").Output()
		if err != nil {
			t.Fatalf("ssh-keygen -l: %v", err)
		}
		return strings.Fields(string(out))[1]
	}
	// sign signs data from stdin, as `ssh-keygen -Y sign` does a file.
	sign := func(key, namespace string, data []byte) []byte {
		cmd := exec.Command("ssh-keygen", "-Y", "sign", "-q", "-f", key, "-n", namespace)
		cmd.Stdin = bytes.NewReader(data)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, stderr.Bytes())
		}
		return out
	}
	ciKey := "ci@example.com (" + fp(ci) + ")"
	v4 := sigSite("v4.0.0")
	// A deploy between refusals: the notifier stops repeating a run of the
	// same failure after notify.MaxRepeats.
	runSignedReleases(t, e, ".sig", `ssh_allowed_signers = "allowed_signers"`, []signedRelease{
		{name: "good", version: "v1.0.0", art: sigSite("v1.0.0"), sig: sign(ci, "file", sigSite("v1.0.0")), verified: "ssh key " + ciKey},
		{name: "wrong key", version: "v2.0.0", art: sigSite("v2.0.0"), sig: sign(stranger, "file", sigSite("v2.0.0")),
			refused: []string{"ssh", "signed by key " + fp(stranger) + ", which is not in ssh_allowed_signers"}},
		{name: "tampered", version: "v3.0.0", art: sigSite("v3.0.0"), sig: sign(ci, "file", sigSite("v3.0.0-built")),
			refused: []string{"ssh (key " + ciKey + ")", "the signature does not match the artifact"}},
		{name: "missing", version: "v4.0.0", art: v4, refused: []string{"ssh", "no " + sigArtifact + ".sig beside the artifact"}},
		{name: "signature uploaded later", version: "v4.0.0", sig: sign(ci, "file", v4), verified: "ssh key " + ciKey},
		{name: "wrong namespace", version: "v5.0.0", art: sigSite("v5.0.0"), sig: sign(ci, "git", sigSite("v5.0.0")),
			refused: []string{"ssh", `signed for namespace "git", not "file"`}},
	})
}

// TestSigstoreSignedRelease: a release with a Sigstore bundle (as `cosign
// sign-blob --bundle` writes it) made by a Sigstore of the test's own is
// deployed from a file:// registry; a bundle from another Sigstore (not in
// the trusted root), one for another identity and a release without a
// .sigstore.json are refused; the bundle uploaded later is deployed; one
// whose artifact was changed after signing is refused; a GitHub-style
// attestation (a DSSE envelope) is deployed.
func TestSigstoreSignedRelease(t *testing.T) {
	testkit.Slow(t, "end-to-end test")
	const signer, issuer = "release@example.com", "https://issuer.example.com"
	vs, other := testsign.NewVirtualSigstore(t), testsign.NewVirtualSigstore(t)
	e := newEnv(t)
	writeFile(t, filepath.Join(e.dir, "trusted_root.json"), testsign.TrustedRoot(t, vs, true))
	bundle := func(vs *ca.VirtualSigstore, identity string, data []byte) []byte {
		te, err := vs.Sign(identity, issuer, data)
		if err != nil {
			t.Fatal(err)
		}
		return testsign.Bundle(t, vs, te, testsign.Parts{Tlog: true})
	}
	v6 := sigSite("v6.0.0")
	attested, err := vs.Attest(signer, issuer, testsign.Statement(t, v6))
	if err != nil {
		t.Fatal(err)
	}
	key := "sigstore key " + signer + " (issuer " + issuer + ")"
	v4 := sigSite("v4.0.0")
	// A deploy between refusals: the notifier stops repeating a run of the
	// same failure after notify.MaxRepeats.
	runSignedReleases(t, e, ".sigstore.json", fmt.Sprintf(`sigstore {
      trusted_root = "trusted_root.json"
      issuer       = %q
      identity     = %q
    }`, issuer, signer), []signedRelease{
		{name: "good", version: "v1.0.0", art: sigSite("v1.0.0"), sig: bundle(vs, signer, sigSite("v1.0.0")), verified: key},
		{name: "another Sigstore", version: "v2.0.0", art: sigSite("v2.0.0"), sig: bundle(other, signer, sigSite("v2.0.0")),
			refused: []string{"sigstore", "not logged in a transparency log the trusted root names"}},
		{name: "wrong identity", version: "v3.0.0", art: sigSite("v3.0.0"), sig: bundle(vs, "someone@example.com", sigSite("v3.0.0")),
			refused: []string{"sigstore (key someone@example.com (issuer " + issuer + "))", "is not the expected identity " + signer}},
		{name: "missing", version: "v4.0.0", art: v4, refused: []string{"sigstore", "no " + sigArtifact + ".sigstore.json beside the artifact"}},
		{name: "bundle uploaded later", version: "v4.0.0", sig: bundle(vs, signer, v4), verified: key},
		{name: "tampered", version: "v5.0.0", art: sigSite("v5.0.0"), sig: bundle(vs, signer, sigSite("v5.0.0-built")),
			refused: []string{"sigstore (key " + signer, "the bundle does not match the artifact"}},
		{name: "attestation", version: "v6.0.0", art: v6, sig: testsign.Bundle(t, vs, attested, testsign.Parts{Tlog: true}), verified: key},
	})
}
