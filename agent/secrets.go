package agent

import (
	"github.com/dewy-agent/dewy-agent/agent/hooks"
	"github.com/dewy-agent/dewy-agent/config"
)

// hookScrubber returns the Scrubber of every secret the agent knows for app:
// the values env() gave in the config file, the credentials of the notifier
// URLs (the agent's and the app's), the admin token, and the credential
// variables of the agent's environment (environ, as os.Environ returns).
func hookScrubber(cfg *config.File, app config.App, environ []string) *hooks.Scrubber {
	secrets := append([]string(nil), cfg.Secrets...)
	secrets = append(secrets, cfg.Agent.AdminToken)
	for _, u := range append(append([]string(nil), cfg.Agent.Notify...), app.Notify...) {
		secrets = append(secrets, hooks.URLSecrets(u)...)
	}
	secrets = append(secrets, hooks.EnvSecrets(environ)...)
	return hooks.NewScrubber(secrets...)
}

// hook is the hooks.Hook that runs command for w's app.
func (w *worker) hook(command string) hooks.Hook {
	return hooks.Hook{Command: command, Timeout: w.app.Hooks.Timeout, Env: w.app.Hooks.Env, Scrub: w.scrub}
}
