package config

import (
	"errors"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/fleet"
	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
)

// This file decodes the top-level `fleet {}` block and an app's `rollout {}`
// block into fleet.Fleet and fleet.Rollout. The rules and the defaults live
// in package fleet (Validate, WithDefaults); here each attribute is checked on
// its own against them, so every problem points at its attribute. The etcd
// password is a secret: no message ever repeats it.

// rawRollout is an app's `rollout {}` block, read by readRollout.
type rawRollout = hclsettings.Block

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
func (d *decoder) readFleet(raws []hclsettings.Block) *fleet.Fleet {
	if len(raws) == 0 {
		return nil
	}
	blk := raws[0]
	for _, extra := range raws[1:] {
		d.fail(extra.DefRange, "Duplicate fleet block",
			"a config file has at most one fleet block and the first is at line %d; merge them.", blk.DefRange.Start.Line)
	}
	r := d.Read(blk.Body, blk.DefRange)
	hostID := hclsettings.Get[string](r, "host_id", "a string")
	labels := hclsettings.Get[map[string]string](r, "labels", `a map of strings such as { role = "canary" }`)
	ttl := hclsettings.Get[string](r, "session_ttl", `a duration string such as "15s"`)
	onUnavail := hclsettings.Get[string](r, "on_unavailable", `"hold" or "local"`)
	etcds, locks := r.Blocks("etcd"), r.Blocks("fleetlock")
	r.Close()

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
	if len(etcds) > 0 {
		e := etcds[0]
		for _, extra := range etcds[1:] {
			d.fail(extra.DefRange, "Duplicate etcd block", "the fleet block has one etcd block, at line %d.", e.DefRange.Start.Line)
		}
		f.Etcd, ok = d.readEtcd(e)
	}
	if len(locks) > 0 {
		l := locks[0]
		for _, extra := range locks[1:] {
			d.fail(extra.DefRange, "Duplicate fleetlock block", "the fleet block has one fleetlock block, at line %d.", l.DefRange.Start.Line)
		}
		lr := d.Read(l.Body, l.DefRange)
		url := hclsettings.Get[string](lr, "url", "a string")
		group := hclsettings.Get[string](lr, "group", "a string")
		lr.Close()
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
	case len(etcds) > 0 && len(locks) > 0:
		d.fail(locks[0].DefRange, "Two fleet backends",
			"the fleet block has an etcd block (line %d) and a fleetlock block; keep one of them.", etcds[0].DefRange.Start.Line)
		return &f
	case len(etcds) == 0 && len(locks) == 0:
		d.fail(blk.DefRange, "Missing fleet backend",
			`the fleet block needs etcd { endpoints = ["https://10.0.0.1:2379"] } or fleetlock { url = "..." }.`)
		return &f
	}
	withDefaults, _ := f.WithDefaults(nil)
	if ok && !d.Diags.HasErrors() {
		check := withDefaults
		if check.HostID == "" {
			check.HostID = "probe" // the agent fills it in from the machine
		}
		d.checkFleet(blk.DefRange, "Invalid fleet block", check)
	}
	return &withDefaults
}

// readEtcd decodes the etcd block; ok is false when a problem was reported.
func (d *decoder) readEtcd(e hclsettings.Block) (fleet.Etcd, bool) {
	r := d.Read(e.Body, e.DefRange)
	eps := hclsettings.Get[[]string](r, "endpoints", `a list of URLs such as ["https://10.0.0.1:2379"]`)
	prefix := hclsettings.Get[string](r, "prefix", "a string")
	ca := hclsettings.Get[string](r, "ca_file", "a string")
	cert := hclsettings.Get[string](r, "cert_file", "a string")
	key := hclsettings.Get[string](r, "key_file", "a string")
	user := hclsettings.Get[string](r, "username", "a string")
	pw := hclsettings.Get[string](r, "password", "a string")
	r.Close()
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
	blk := firstBlock(d, ra.Rollouts, func(b rawRollout) hcl.Range { return b.DefRange }, ra.Name, "rollout", "merge them")
	r := d.Read(blk.Body, blk.DefRange)
	canary := hclsettings.Get[string](r, "canary", `a host count or a percentage such as "5%"`)
	bake := hclsettings.Get[string](r, "bake", `a duration string such as "10m"`)
	maxPar := hclsettings.Get[string](r, "max_parallel", `a host count or a percentage such as "10%"`)
	minHealthy := hclsettings.Get[string](r, "min_healthy_time", `a duration string such as "30s"`)
	threshold := hclsettings.Get[int](r, "failure_threshold", "a whole number")
	r.Close()

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
	return &out, blk.DefRange
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
