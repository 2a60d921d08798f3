package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/agent"
	"github.com/dewy-agent/dewy-agent/config"
)

// adminTokenEnv is the environment variable the CLI reads the admin API's
// token from when -token is not given.
const adminTokenEnv = "DEWY_ADMIN_TOKEN"

// adminFlags adds -addr, -config and -token to fs. resolve returns the admin
// address and token to use: from -config's agent block when given (so a
// unix socket or a token set in the file is used as configured), else -addr
// and -token.
func adminFlags(fs *flag.FlagSet) (resolve func() (addr, token string, err error)) {
	addr := fs.String("addr", config.DefaultAdmin, "admin address of the running agent: host:port or unix:///path (the agent block's admin)")
	cfgPath := fs.String("config", "", "read the admin address and admin_token from this config file's agent block")
	token := tokenFlag(fs)
	return func() (string, string, error) {
		if *cfgPath == "" {
			return *addr, *token, nil
		}
		cfg, diags := config.Load(*cfgPath)
		if diags.HasErrors() {
			return "", "", fmt.Errorf("%s has errors; run dewy-agent validate -config %s", *cfgPath, *cfgPath)
		}
		if cfg.Agent.Admin == "" {
			return "", "", fmt.Errorf("%s turns the admin API off (admin = \"\")", *cfgPath)
		}
		t := *token
		if t == "" {
			t = cfg.Agent.AdminToken
		}
		return cfg.Agent.Admin, t, nil
	}
}

// tokenFlag adds -token to fs; its value falls back to $DEWY_ADMIN_TOKEN.
func tokenFlag(fs *flag.FlagSet) *string {
	return fs.String("token", "", "the agent block's admin_token (default $"+adminTokenEnv+")")
}

// adminCall sends method path to the admin API at addr, with the header
// that marks the CLI and the bearer token when there is one, and returns the
// body of a 2xx answer. Any other outcome is an error that reads as one
// sentence.
func adminCall(method, addr, path, token string) ([]byte, error) {
	if token == "" {
		token = os.Getenv(adminTokenEnv)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	target := addr
	if sock, ok := strings.CutPrefix(addr, "unix://"); ok {
		// The agent's unix socket: dial it whatever the URL's host says.
		target = agent.AdminUnixHost
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
	}
	req, err := http.NewRequest(method, "http://"+target+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%q is not an admin address (host:port or unix:///path)", addr)
	}
	req.Header.Set(agent.AdminClientHeader, "1")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the agent at %s (%v); is it running, and is admin set to this address in its agent block?", addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("the answer from %s broke off: %v", addr, unwrapURLError(err))
	}
	if resp.StatusCode/100 == 2 {
		return body, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return nil, errors.New(e.Error)
	}
	return nil, fmt.Errorf("%s answered %s, which a dewy-agent admin API does not; is it the agent's admin address?", addr, resp.Status)
}

// unwrapURLError drops the method and URL *url.Error repeats.
func unwrapURLError(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok && strings.Contains(err.Error(), "http://") {
		if inner := u.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
