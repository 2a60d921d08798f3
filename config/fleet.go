package config

import (
	"errors"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/fleet"
)

// This file decodes the top-level `fleet {}` block and an app's `rollout {}`
// block into fleet.Fleet and fleet.Rollout. The rules and the defaults live
// in package fleet (Validate, WithDefaults); here each attribute is checked on
// its own against them, so every problem points at its attribute. The etcd
// password is a secret: no message ever repeats it.

// rawFleet is the `fleet {}` block.
type rawFleet struct {
	HostID        hcl.Expression `hcl:"host_id,optional"`
	Labels        hcl.Expression `hcl:"labels,optional"`
	SessionTTL    hcl.Expression `hcl:"session_ttl,optional"`
	OnUnavailable hcl.Expression `hcl:"on_unavailable,optional"`
	Etcd          []rawEtcd      `hcl:"etcd,block"`
	FleetLock     []rawFleetLock `hcl:"fleetlock,block"`
	DefRange      hcl.Range      `hcl:",def_range"`
}

type rawEtcd struct {
	Endpoints hcl.Expression `hcl:"endpoints,optional"`
	Prefix    hcl.Expression `hcl:"prefix,optional"`
	CAFile    hcl.Expression `hcl:"ca_file,optional"`
	CertFile  hcl.Expression `hcl:"cert_file,optional"`
	KeyFile   hcl.Expression `hcl:"key_file,optional"`
	Username  hcl.Expression `hcl:"username,optional"`
	Password  hcl.Expression `hcl:"password,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type rawFleetLock struct {
	URL      hcl.Expression `hcl:"url,optional"`
	Group    hcl.Expression `hcl:"group,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

// rawRollout is an app's `rollout {}` block.
type rawRollout struct {
	Canary           hcl.Expression `hcl:"canary,optional"`
	Bake             hcl.Expression `hcl:"bake,optional"`
	MaxParallel      hcl.Expression `hcl:"max_parallel,optional"`
	MinHealthyTime   hcl.Expression `hcl:"min_healthy_time,optional"`
	FailureThreshold hcl.Expression `hcl:"failure_threshold,optional"`
	DefRange         hcl.Range      `hcl:",def_range"`
}

// probeFleet is a valid fleet that each attribute is put into alone, so
// that fleet.Validate's answer is about that attribute only.
func probeFleet() fleet.Fleet {
	f, _ := fleet.Fleet{HostID: "probe", Etcd: fleet.Etcd{Endpoints: "http://127.0.0.1:2379"}}.WithDefaults(nil)
	return f
}

// checkFleet reports fleet.Validate's problems with f at rng.
func (d *decoder) checkFleet(rng hcl.Range, summary string, f fleet.Fleet) bool {
	if err := f.Validate(); err != nil {
		d.fail(rng, summary, "%s.", firstLines(err))
		return false
	}
	return true
}

// firstLines joins a joined error's lines with "; ".
func firstLines(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// readFleet decodes the fleet block, or returns nil when the file has none.
// The host_id default (machine id, hostname) is left to the agent, which
// reads the machine; every other default is fleet's (WithDefaults).
func (d *decoder) readFleet(raws []rawFleet) *fleet.Fleet {
	if len(raws) == 0 {
		return nil
	}
	r := raws[0]
	for _, extra := range raws[1:] {
		d.fail(extra.DefRange, "Duplicate fleet block",
			"a config file has at most one fleet block and the first is at line %d; merge them.", r.DefRange.Start.Line)
	}
	hostID := eval[string](d, r.HostID, "host_id", "a string", r.DefRange)
	labels := eval[map[string]string](d, r.Labels, "labels", `a map of strings such as { role = "canary" }`, r.DefRange)
	ttl := eval[string](d, r.SessionTTL, "session_ttl", `a duration string such as "15s"`, r.DefRange)
	onUnavail := eval[string](d, r.OnUnavailable, "on_unavailable", `"hold" or "local"`, r.DefRange)

	f := fleet.Fleet{HostID: hostID.Val, Labels: fleet.NewLabels(labels.Val), OnUnavailable: onUnavail.Val}
	if ttl.Set {
		f.SessionTTL = d.Duration(ttl, "session_ttl", 0)
	}
	probe := func(s setting[string], change func(*fleet.Fleet)) {
		if !s.Set || s.Bad {
			return
		}
		p := probeFleet()
		change(&p)
		d.checkFleet(s.Range, "Invalid fleet setting", p)
	}
	probe(hostID, func(p *fleet.Fleet) { p.HostID = hostID.Val })
	if labels.Set && !labels.Bad {
		p := probeFleet()
		p.Labels = f.Labels
		d.checkFleet(labels.Range, "Invalid fleet setting", p)
	}
	probe(ttl, func(p *fleet.Fleet) { p.SessionTTL = f.SessionTTL })
	probe(onUnavail, func(p *fleet.Fleet) { p.OnUnavailable = onUnavail.Val })

	ok := true
	if len(r.Etcd) > 0 {
		e := r.Etcd[0]
		for _, extra := range r.Etcd[1:] {
			d.fail(extra.DefRange, "Duplicate etcd block", "the fleet block has one etcd block, at line %d.", e.DefRange.Start.Line)
		}
		f.Etcd, ok = d.readEtcd(e)
	}
	if len(r.FleetLock) > 0 {
		l := r.FleetLock[0]
		for _, extra := range r.FleetLock[1:] {
			d.fail(extra.DefRange, "Duplicate fleetlock block", "the fleet block has one fleetlock block, at line %d.", l.DefRange.Start.Line)
		}
		url := eval[string](d, l.URL, "url", "a string", l.DefRange)
		group := eval[string](d, l.Group, "group", "a string", l.DefRange)
		f.FleetLock = fleet.FleetLock{URL: url.Val, Group: group.Val}
		if !url.Set && !url.Bad {
			d.fail(l.DefRange, "Missing fleetlock url", `the fleetlock block needs url, e.g. url = "http://10.0.0.9:8080".`)
			ok = false
		} else if url.Set {
			p := probeFleet()
			p.Etcd, p.FleetLock = fleet.Etcd{}, fleet.FleetLock{URL: url.Val, Group: "g"}
			ok = d.checkFleet(url.Range, "Invalid fleetlock url", p) && ok
		}
	}
	switch {
	case len(r.Etcd) > 0 && len(r.FleetLock) > 0:
		d.fail(r.FleetLock[0].DefRange, "Two fleet backends",
			"the fleet block has an etcd block (line %d) and a fleetlock block; keep one of them.", r.Etcd[0].DefRange.Start.Line)
		return &f
	case len(r.Etcd) == 0 && len(r.FleetLock) == 0:
		d.fail(r.DefRange, "Missing fleet backend",
			`the fleet block needs etcd { endpoints = ["https://10.0.0.1:2379"] } or fleetlock { url = "..." }.`)
		return &f
	}
	withDefaults, _ := f.WithDefaults(nil)
	if ok && !d.Diags.HasErrors() {
		check := withDefaults
		if check.HostID == "" {
			check.HostID = "probe" // the agent fills it in from the machine
		}
		d.checkFleet(r.DefRange, "Invalid fleet block", check)
	}
	return &withDefaults
}

// readEtcd decodes the etcd block; ok is false when a problem was reported.
func (d *decoder) readEtcd(e rawEtcd) (fleet.Etcd, bool) {
	eps := eval[[]string](d, e.Endpoints, "endpoints", `a list of URLs such as ["https://10.0.0.1:2379"]`, e.DefRange)
	prefix := eval[string](d, e.Prefix, "prefix", "a string", e.DefRange)
	ca := eval[string](d, e.CAFile, "ca_file", "a string", e.DefRange)
	cert := eval[string](d, e.CertFile, "cert_file", "a string", e.DefRange)
	key := eval[string](d, e.KeyFile, "key_file", "a string", e.DefRange)
	user := eval[string](d, e.Username, "username", "a string", e.DefRange)
	pw := eval[string](d, e.Password, "password", "a string", e.DefRange)
	out := fleet.Etcd{
		Endpoints: fleet.NewEndpoints(eps.Val...), Prefix: prefix.Val,
		CAFile: ca.Val, CertFile: cert.Val, KeyFile: key.Val, Username: user.Val, Password: pw.Val,
	}
	ok := !eps.Bad && !prefix.Bad && !ca.Bad && !cert.Bad && !key.Bad && !user.Bad && !pw.Bad
	if !eps.Set || len(eps.Val) == 0 {
		if !eps.Bad {
			d.fail(eps.Range, "Missing etcd endpoints", `the etcd block needs endpoints, e.g. endpoints = ["https://10.0.0.1:2379"].`)
		}
		return out, false
	}
	probe := func(rng hcl.Range, change func(*fleet.Etcd)) {
		p := probeFleet()
		change(&p.Etcd)
		ok = d.checkFleet(rng, "Invalid etcd setting", p) && ok
	}
	probe(eps.Range, func(p *fleet.Etcd) { p.Endpoints = out.Endpoints })
	if prefix.Set {
		probe(prefix.Range, func(p *fleet.Etcd) { p.Prefix = out.Prefix })
	}
	if cert.Set != key.Set {
		rng := cert.Range
		if key.Set {
			rng = key.Range
		}
		d.fail(rng, "Invalid etcd setting", "cert_file and key_file go together; set both or neither.")
		ok = false
	}
	if pw.Set && !user.Set {
		// The range is the password's; the message never repeats its value.
		d.fail(pw.Range, "Invalid etcd setting", "password is set without a username; add username.")
		ok = false
	}
	return out, ok
}

// readRollout decodes an app's rollout block, or returns nil when it has none.
// Its defaults are fleet's (Rollout.WithDefaults).
func (d *decoder) readRollout(ra rawApp) (*fleet.Rollout, hcl.Range) {
	if len(ra.Rollouts) == 0 {
		return nil, hcl.Range{}
	}
	r := firstBlock(d, ra.Rollouts, func(b rawRollout) hcl.Range { return b.DefRange }, ra.Name, "rollout", "merge them")
	canary := eval[string](d, r.Canary, "canary", `a host count or a percentage such as "5%"`, r.DefRange)
	bake := eval[string](d, r.Bake, "bake", `a duration string such as "10m"`, r.DefRange)
	maxPar := eval[string](d, r.MaxParallel, "max_parallel", `a host count or a percentage such as "10%"`, r.DefRange)
	minHealthy := eval[string](d, r.MinHealthyTime, "min_healthy_time", `a duration string such as "30s"`, r.DefRange)
	threshold := eval[int](d, r.FailureThreshold, "failure_threshold", "a whole number", r.DefRange)

	ro := fleet.Rollout{Canary: fleet.Amount(canary.Val), MaxParallel: fleet.Amount(maxPar.Val), FailureThreshold: threshold.Val}
	if bake.Set {
		ro.Bake = d.Duration(bake, "bake", 0)
	}
	if minHealthy.Set {
		ro.MinHealthyTime = d.Duration(minHealthy, "min_healthy_time", 0)
	}
	check := func(set, bad bool, rng hcl.Range, change func(*fleet.Rollout)) {
		if !set || bad {
			return
		}
		p := fleet.Rollout{}.WithDefaults()
		change(&p)
		if err := p.Validate(); err != nil {
			d.fail(rng, "Invalid rollout setting", "%s.", firstLines(err))
		}
	}
	check(canary.Set, canary.Bad, canary.Range, func(p *fleet.Rollout) { p.Canary = ro.Canary })
	check(maxPar.Set, maxPar.Bad, maxPar.Range, func(p *fleet.Rollout) { p.MaxParallel = ro.MaxParallel })
	if threshold.Set && !threshold.Bad && threshold.Val < 1 {
		d.fail(threshold.Range, "Invalid rollout setting", "failure_threshold is %d; it must be at least 1.", threshold.Val)
	}
	out := ro.WithDefaults()
	return &out, r.DefRange
}

// checkRolloutsNeedFleet reports every rollout block of a file without a
// fleet block: a rollout is a fleet's.
func (d *decoder) checkRolloutsNeedFleet(f *fleet.Fleet, apps []appInput) {
	if f != nil {
		return
	}
	for _, a := range apps {
		if a.rollout != nil {
			d.fail(a.rolloutRange, "Rollout without a fleet",
				"app %q has a rollout block but the file has no fleet block; add fleet { etcd { endpoints = [...] } } or remove the rollout.", a.name)
		}
	}
}

// FleetOf returns the file's fleet block with the host id filled in from the
// machine when the file gives none (fleet.DefaultHostID), or an error.
func FleetOf(f *File) (fleet.Fleet, error) {
	if f.Fleet == nil {
		return fleet.Fleet{}, errors.New("the config file has no fleet block")
	}
	return f.Fleet.WithDefaults(fleet.DefaultHostID)
}
