package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
)

func goodFleet() Fleet {
	return Fleet{
		HostID: "web-3", Labels: NewLabels(map[string]string{"role": "canary", "zone": "a"}),
		SessionTTL: 15 * time.Second, OnUnavailable: Hold,
		Etcd: Etcd{Endpoints: NewEndpoints("https://10.0.0.1:2379", "https://10.0.0.2:2379"), Prefix: "/dewy/prod",
			Username: "dewy", Password: "s3cret-pw"},
	}
}

func TestFleetValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Fleet)
		want   []string // substrings of the error; none: valid
	}{
		{name: "good", modify: func(*Fleet) {}},
		{name: "fleetlock only", modify: func(f *Fleet) { f.Etcd = Etcd{}; f.FleetLock = FleetLock{URL: "http://airlock:3333", Group: "web"} }},
		{name: "no backend", modify: func(f *Fleet) { f.Etcd = Etcd{} }, want: []string{"needs an etcd block"}},
		{name: "both backends", modify: func(f *Fleet) { f.FleetLock = FleetLock{URL: "http://x"} }, want: []string{"not both"}},
		{name: "bad on_unavailable", modify: func(f *Fleet) { f.OnUnavailable = "wait" }, want: []string{`on_unavailable = "wait"`}},
		{name: "short ttl", modify: func(f *Fleet) { f.SessionTTL = time.Second }, want: []string{"too short"}},
		{name: "fractional ttl", modify: func(f *Fleet) { f.SessionTTL = 2500 * time.Millisecond }, want: []string{"whole seconds"}},
		{name: "bad endpoint", modify: func(f *Fleet) { f.Etcd.Endpoints = "10.0.0.1:2379" }, want: []string{"not a URL"}},
		{name: "bad prefix", modify: func(f *Fleet) { f.Etcd.Prefix = "dewy/" }, want: []string{"prefix"}},
		{name: "cert without key", modify: func(f *Fleet) { f.Etcd.CertFile = "c.pem" }, want: []string{"go together"}},
		{name: "password without user", modify: func(f *Fleet) { f.Etcd.Username = "" }, want: []string{"without a username"}},
		{name: "host id with slash", modify: func(f *Fleet) { f.HostID = "a/b" }, want: []string{"host_id"}},
		{name: "every error at once", modify: func(f *Fleet) { f.HostID = ""; f.OnUnavailable = "x"; f.SessionTTL = time.Second },
			want: []string{"host_id is empty", "on_unavailable", "too short"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goodFleet()
			tt.modify(&f)
			err := f.Validate()
			if testkit.ExpectError(t, err, tt.want...) {
				return
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestPasswordNeverPrinted(t *testing.T) {
	f := goodFleet()
	for _, s := range []string{f.String(), fmt.Sprintf("%v", f), fmt.Sprintf("%+v", f), fmt.Sprintf("%#v", f), fmt.Sprint(f.Etcd), fmt.Sprintf("%#v", f.Etcd)} {
		if strings.Contains(s, "s3cret-pw") {
			t.Errorf("printed password: %s", s)
		}
		if !strings.Contains(s, "redacted") {
			t.Errorf("no redaction mark: %s", s)
		}
	}
}

func TestDefaults(t *testing.T) {
	f, err := Fleet{Etcd: Etcd{Endpoints: "http://127.0.0.1:2379"}}.WithDefaults(func() (string, error) { return "h1", nil })
	if err != nil {
		t.Fatal(err)
	}
	want := Fleet{HostID: "h1", SessionTTL: DefaultSessionTTL, OnUnavailable: Hold, Etcd: Etcd{Endpoints: "http://127.0.0.1:2379", Prefix: DefaultPrefix}}
	if f != want {
		t.Errorf("WithDefaults = %v; want %v", f, want)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if _, err := (Fleet{}).WithDefaults(func() (string, error) { return "", errors.New("boom") }); err == nil {
		t.Error("a failing host id source was ignored")
	}
	r := Rollout{}.WithDefaults()
	if r != (Rollout{Canary: "0", MaxParallel: "1", FailureThreshold: 1}) {
		t.Errorf("Rollout defaults = %+v", r)
	}
}

func TestHostID(t *testing.T) {
	dir := t.TempDir()
	mid := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(mid, []byte("abc123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := func() (string, error) { return "web-1", nil }
	if got, _ := hostIDFrom(mid, host); got != "abc123" {
		t.Errorf("with machine-id: %q", got)
	}
	if got, _ := hostIDFrom(filepath.Join(dir, "none"), host); got != "web-1" {
		t.Errorf("without machine-id: %q", got)
	}
	if err := os.WriteFile(mid, []byte("  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := hostIDFrom(mid, host); got != "web-1" {
		t.Errorf("empty machine-id: %q", got)
	}
}

func TestRolloutValidate(t *testing.T) {
	tests := []struct {
		name    string
		r       Rollout
		wantErr string
	}{
		{name: "issue example", r: Rollout{Canary: "1", Bake: 10 * time.Minute, MaxParallel: "2", MinHealthyTime: 30 * time.Second, FailureThreshold: 1}},
		{name: "percentages", r: Rollout{Canary: "5%", MaxParallel: "10%", FailureThreshold: 2}},
		{name: "zero parallel", r: Rollout{Canary: "0", MaxParallel: "0", FailureThreshold: 1}, wantErr: "max_parallel"},
		{name: "zero percent parallel", r: Rollout{Canary: "0", MaxParallel: "0%", FailureThreshold: 1}, wantErr: "max_parallel"},
		{name: "bad canary", r: Rollout{Canary: "some", MaxParallel: "1", FailureThreshold: 1}, wantErr: "canary"},
		{name: "over 100%", r: Rollout{Canary: "150%", MaxParallel: "1", FailureThreshold: 1}, wantErr: "canary"},
		{name: "negative bake", r: Rollout{Canary: "1", MaxParallel: "1", Bake: -time.Second, FailureThreshold: 1}, wantErr: "bake"},
		{name: "zero threshold", r: Rollout{Canary: "1", MaxParallel: "1"}, wantErr: "failure_threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

func TestAmountAndPlan(t *testing.T) {
	for _, tt := range []struct {
		a    Amount
		n    int
		want int
	}{{"2", 10, 2}, {"10%", 10, 1}, {"10%", 11, 2}, {"5%", 3, 1}, {"0%", 10, 0}, {"100%", 7, 7}, {"3", 0, 3}} {
		if got := tt.a.Resolve(tt.n); got != tt.want {
			t.Errorf("%q of %d = %d; want %d", tt.a, tt.n, got, tt.want)
		}
	}
	hosts := []HostRecord{
		{Host: "d"}, {Host: "c", Labels: map[string]string{"role": "canary"}}, {Host: "a"}, {Host: "b"},
	}
	p := choosePlan("v1", "a", Rollout{Canary: "2", MaxParallel: "50%", FailureThreshold: 1}, hosts)
	if strings.Join(p.Canaries, ",") != "c,a" || p.MaxParallel != 2 || p.Hosts != 4 {
		t.Errorf("plan = %+v; want canaries c,a (labelled first), max_parallel 2", p)
	}
	p = choosePlan("v1", "a", Rollout{Canary: "9", MaxParallel: "1", FailureThreshold: 1}, hosts)
	if len(p.Canaries) != 4 {
		t.Errorf("canary above the host count: %v", p.Canaries)
	}
}
