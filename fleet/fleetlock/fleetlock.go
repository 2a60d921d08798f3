// Package fleetlock is a client of the FleetLock HTTP protocol (as Zincati
// and airlock speak it) that implements [fleet.Gater]: one host per group
// deploys at a time, and nothing else (no canaries, no bake, no shared poll,
// no fleet-wide bad versions).
//
// Protocol: POST <url>/v1/pre-reboot takes the group's lock for the host,
// POST <url>/v1/steady-state gives it back; both carry the header
// "fleet-lock-protocol: true" and the body {"client_params":{"id","group"}}.
// 200 means done; any other status carries {"kind","value"}.
package fleetlock

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dewy-agent/dewy-agent/fleet"
)

// Client talks to one FleetLock server for one host and group. Its methods
// are safe for concurrent use; each returns when its ctx ends.
type Client struct {
	url   string
	group string
	id    string
	http  *http.Client
	log   *slog.Logger
	// Retry is the wait between two attempts to take the lock.
	retry time.Duration

	mu   sync.Mutex
	wait string
}

// New returns a client for cfg (defaults applied) and host id. hc nil means
// http.DefaultClient; retry 0 means 10s. It does no I/O.
func New(cfg fleet.FleetLock, id string, hc *http.Client, retry time.Duration, logger *slog.Logger) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	if retry == 0 {
		retry = 10 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{url: strings.TrimSuffix(cfg.URL, "/"), group: cfg.Group, id: id, http: hc, retry: retry, log: logger}
}

// Error is a FleetLock error response.
type Error struct {
	Status int    `json:"-"`
	Kind   string `json:"kind"`
	Value  string `json:"value"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("fleetlock: %d %s: %s", e.Status, e.Kind, e.Value)
}

type params struct {
	ClientParams struct {
		ID    string `json:"id"`
		Group string `json:"group"`
	} `json:"client_params"`
}

func (c *Client) post(ctx context.Context, path string) error {
	var p params
	p.ClientParams.ID, p.ClientParams.Group = c.id, c.group
	body, _ := json.Marshal(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("fleetlock %s: %w", path, err)
	}
	req.Header.Set("fleet-lock-protocol", "true")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("fleetlock %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(b, e) != nil || e.Kind == "" {
		e.Kind, e.Value = "http", strings.TrimSpace(string(b))
	}
	return e
}

// PreReboot tries once to take the group's lock.
func (c *Client) PreReboot(ctx context.Context) error { return c.post(ctx, "/v1/pre-reboot") }

// SteadyState gives the group's lock back (once).
func (c *Client) SteadyState(ctx context.Context) error { return c.post(ctx, "/v1/steady-state") }

// Gate takes the group's lock, retrying until it gets it or ctx ends. The
// version does not matter to FleetLock.
func (c *Client) Gate(ctx context.Context, version string) (fleet.Decision, error) {
	defer c.setWait("")
	for {
		err := c.PreReboot(ctx)
		if err == nil {
			return fleet.Decision{Allowed: true, Phase: fleet.PhaseDeploying, Slot: &slot{c: c}}, nil
		}
		if ctx.Err() != nil {
			return fleet.Decision{}, ctx.Err()
		}
		c.setWait("waiting for the fleetlock of group " + c.group + ": " + err.Error())
		c.log.Debug("fleetlock: lock not granted", "group", c.group, "err", err)
		t := time.NewTimer(c.retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return fleet.Decision{}, ctx.Err()
		case <-t.C:
		}
	}
}

// Wait says what Gate waits for now, or "".
func (c *Client) Wait() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wait
}

func (c *Client) setWait(s string) {
	c.mu.Lock()
	c.wait = s
	c.mu.Unlock()
}

// slot is the group's lock; Healthy and Release both give it back (FleetLock
// has no min_healthy_time), retrying until ctx ends.
type slot struct {
	c    *Client
	once sync.Once
	err  error
}

func (s *slot) Healthy(ctx context.Context) error { return s.Release(ctx) }

func (s *slot) Release(ctx context.Context) error {
	s.once.Do(func() {
		for {
			s.err = s.c.SteadyState(ctx)
			if s.err == nil || ctx.Err() != nil {
				return
			}
			t := time.NewTimer(min(s.c.retry, time.Second))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
	return s.err
}

var (
	_ fleet.Gater = (*Client)(nil)
	_ fleet.Slot  = (*slot)(nil)
)
