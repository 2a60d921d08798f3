package fleetlock

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/fleet"
)

// server speaks FleetLock with one slot per group, as airlock does, and
// records the most holders it ever had at once.
type server struct {
	mu      sync.Mutex
	holders map[string]string // group -> id
	bad     atomic.Int32      // malformed requests
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, kind, value string) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"kind": kind, "value": value})
	}
	var p params
	if r.Method != http.MethodPost || r.Header.Get("fleet-lock-protocol") != "true" {
		s.bad.Add(1)
		fail(http.StatusBadRequest, "missing_header", "fleet-lock-protocol header required")
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.ClientParams.ID == "" || p.ClientParams.Group == "" {
		s.bad.Add(1)
		fail(http.StatusBadRequest, "bad_body", "client_params.id and group required")
		return
	}
	id, group := p.ClientParams.ID, p.ClientParams.Group
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/v1/pre-reboot":
		if h, ok := s.holders[group]; ok && h != id {
			fail(http.StatusConflict, "failed_lock", "held by "+h)
			return
		}
		s.holders[group] = id
	case "/v1/steady-state":
		if s.holders[group] == id {
			delete(s.holders, group)
		}
	default:
		fail(http.StatusNotFound, "not_found", r.URL.Path)
	}
}

func TestGateOneHostPerGroup(t *testing.T) {
	srv := &server{holders: map[string]string{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	var inside, most atomic.Int32
	var wg sync.WaitGroup
	hosts := []string{"a", "b", "c", "d"}
	for _, id := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := New(fleet.FleetLock{URL: ts.URL, Group: "web"}, id, ts.Client(), 5*time.Millisecond, nil)
			d, err := c.Gate(ctx, "v1")
			if err != nil || !d.Allowed {
				t.Errorf("%s: Gate = %+v, %v", id, d, err)
				return
			}
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond) // the "deploy"
			inside.Add(-1)
			if err := d.Slot.Healthy(ctx); err != nil {
				t.Errorf("%s: release: %v", id, err)
			}
		}()
	}
	wg.Wait()
	if got := most.Load(); got != 1 {
		t.Errorf("at most %d hosts deployed at once; want exactly 1", got)
	}
	if n := srv.bad.Load(); n != 0 {
		t.Errorf("%d malformed requests reached the server", n)
	}
	if len(srv.holders) != 0 {
		t.Errorf("locks left held: %v", srv.holders)
	}
}

func TestGroupsAreIndependentAndErrorsDecoded(t *testing.T) {
	srv := &server{holders: map[string]string{"db": "other"}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	web := New(fleet.FleetLock{URL: ts.URL, Group: "web"}, "a", ts.Client(), time.Millisecond, nil)
	if err := web.PreReboot(t.Context()); err != nil {
		t.Fatalf("web lock: %v", err)
	}
	db := New(fleet.FleetLock{URL: ts.URL, Group: "db"}, "a", ts.Client(), time.Millisecond, nil)
	err := db.PreReboot(t.Context())
	var fe *Error
	if !errors.As(err, &fe) || fe.Status != http.StatusConflict || fe.Kind != "failed_lock" {
		t.Fatalf("db lock held by another: err = %v; want a 409 failed_lock", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := db.Gate(ctx, "v1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Gate while held: %v; want the deadline", err)
	}
}
