package config

import (
	"slices"
	"testing"
)

// TestSchemaHoldsEveryLevel: the schema, made by recording the decoders, has
// the agent's, the app's, the hooks' and every runner kind's attributes.
func TestSchemaHoldsEveryLevel(t *testing.T) {
	got := SchemaBlocks()
	for _, want := range []string{
		"agent.admin", "agent.state_dir", "app.registry", "app.interval",
		"app.hooks.before_deploy", "app.runner.server.crash_window",
		"app.runner.container.replicas", "app.runner.assets.link",
		"app.verify.minisign_public_keys", "app.verify.ssh_allowed_signers", "app.verify.cosign_public_key",
		"app.verify.sigstore.trusted_root", "app.verify.sigstore.identity",
		"app.verify.sigstore.identity_regexp", "app.verify.sigstore.issuer_regexp",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("schema lacks %s; it has %v", want, got)
		}
	}
	for _, refused := range []string{"app.runner.container.privileged"} {
		if slices.Contains(got, refused) {
			t.Errorf("schema offers %s, which the agent refuses", refused)
		}
	}
}
