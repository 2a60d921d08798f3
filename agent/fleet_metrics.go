package agent

import "github.com/prometheus/client_golang/prometheus"

// fleetCollector exports each app's part in the fleet, read from the
// statuses when /metrics is scraped. Apps outside a fleet export nothing.
type fleetCollector struct {
	statuses                            func() []Status
	phase, waiting, bad, available, pol *prometheus.Desc
}

func newFleetCollector(statuses func() []Status) *fleetCollector {
	return &fleetCollector{
		statuses:  statuses,
		phase:     prometheus.NewDesc("dewy_fleet_phase", "1 for the app's current rollout phase on this host (canary, bake, slot, deploying, healthy, hold, paused, stopped, ...).", []string{"app", "phase"}, nil),
		waiting:   prometheus.NewDesc("dewy_fleet_waiting", "1 if the app waits for the fleet before it deploys.", []string{"app"}, nil),
		bad:       prometheus.NewDesc("dewy_fleet_bad_version", "1 for each version bad for the whole fleet.", []string{"app", "version"}, nil),
		available: prometheus.NewDesc("dewy_fleet_available", "1 if etcd can be reached; 0 while on_unavailable decides.", []string{"app"}, nil),
		pol:       prometheus.NewDesc("dewy_fleet_poller", "1 if this host polls the registry for the fleet.", []string{"app"}, nil),
	}
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.phase, c.waiting, c.bad, c.available, c.pol} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.statuses() {
		f := s.Fleet
		if f == nil {
			continue
		}
		sendGauge(ch, c.phase, 1, s.Name, f.Phase)
		sendGauge(ch, c.waiting, boolValue(f.Wait != ""), s.Name)
		sendGauge(ch, c.available, boolValue(f.Available), s.Name)
		sendGauge(ch, c.pol, boolValue(f.Poller), s.Name)
		for _, v := range f.Bad {
			sendGauge(ch, c.bad, 1, s.Name, v)
		}
	}
}
