package agent

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the agent's Prometheus metrics, on a registry of its own (never the
// global one), labelled by app.
type metrics struct {
	reg *prometheus.Registry

	polls            *prometheus.CounterVec
	deploys          *prometheus.CounterVec
	diskFull         *prometheus.GaugeVec
	deployDuration   *prometheus.HistogramVec
	versionInfo      *prometheus.GaugeVec
	lastDeploy       *prometheus.GaugeVec
	registryRequests *prometheus.CounterVec
	reloads          *prometheus.CounterVec
	lastReloadOK     prometheus.Gauge
	lastReloadTime   prometheus.Gauge

	// versions is the version each app's deployed_version_info series
	// names, so setVersion deletes the old series by its labels instead of
	// scanning every app's (which made 2,000 first deploys quadratic).
	versionsMu sync.Mutex
	versions   map[string]string
}

// workloadCollector reports each app's workload (runners with a process) at
// scrape time, so removed apps simply stop appearing.
type workloadCollector struct {
	statuses func() []Status
	up       *prometheus.Desc
	restarts *prometheus.Desc
	looping  *prometheus.Desc
}

func newWorkloadCollector(statuses func() []Status) *workloadCollector {
	return &workloadCollector{
		statuses: statuses,
		up:       prometheus.NewDesc("dewy_app_up", "1 if the app's process is running (server and container runners).", []string{"app"}, nil),
		restarts: prometheus.NewDesc("dewy_app_restarts", "Crash restarts of the app's process since its release was deployed or resumed.", []string{"app"}, nil),
		looping:  prometheus.NewDesc("dewy_app_crash_looping", "1 if the app's process restarted 3 or more times in the last minute.", []string{"app"}, nil),
	}
}

func (c *workloadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.restarts
	ch <- c.looping
}

func (c *workloadCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.statuses() {
		if s.Workload == nil {
			continue
		}
		sendGauge(ch, c.up, boolValue(s.Workload.Running), s.Name)
		sendGauge(ch, c.restarts, float64(s.Workload.Restarts), s.Name)
		sendGauge(ch, c.looping, boolValue(s.Workload.CrashLooping), s.Name)
	}
}

// sendGauge sends one gauge sample, read at scrape time, to a collector's
// channel.
func sendGauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// boolValue is a yes/no gauge's value: 1 for true, 0 for false.
func boolValue(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func newMetrics() *metrics {
	m := &metrics{
		reg:      prometheus.NewRegistry(),
		versions: map[string]string{},
		polls:    counterVec("dewy_polls_total", "Registry polls by app and result (ok, error).", "app", "result"),
		deploys:  counterVec("dewy_deploys_total", "Deploys by app and result (success, failure).", "app", "result"),
		diskFull: gaugeVec("dewy_disk_full", "1 while an app's last deploy stopped for lack of disk space or inodes above the reserve (agent min_free_space), else 0.", "app"),
		deployDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dewy_deploy_duration_seconds",
			Help:    "Time from deciding to deploy to the runner reporting done (download included).",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"app"}),
		versionInfo:      gaugeVec("dewy_deployed_version_info", "1 for the version each app has deployed.", "app", "version"),
		lastDeploy:       gaugeVec("dewy_last_successful_deploy_timestamp_seconds", "Unix time of each app's last successful deploy.", "app"),
		registryRequests: counterVec("dewy_registry_requests_total", "HTTP requests to registries by app and status code (304 = not modified; 0 = no response).", "app", "code"),
		reloads:          counterVec("dewy_config_reloads_total", "Config reloads by result (success, failure).", "result"),
		lastReloadOK:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "dewy_config_last_reload_successful", Help: "1 if the last config reload succeeded, else 0."}),
		lastReloadTime:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "dewy_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last successful config load."}),
	}
	m.reg.MustRegister(m.polls, m.deploys, m.diskFull, m.deployDuration, m.versionInfo, m.lastDeploy,
		m.registryRequests, m.reloads, m.lastReloadOK, m.lastReloadTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counterVec and gaugeVec make the plain labelled metrics: a name, a help text
// and the label names.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// forget removes an app's series once it is removed from the file.
func (m *metrics) forget(app string) {
	m.versionsMu.Lock()
	delete(m.versions, app)
	m.versionsMu.Unlock()
	l := prometheus.Labels{"app": app}
	m.polls.DeletePartialMatch(l)
	m.deploys.DeletePartialMatch(l)
	m.diskFull.DeletePartialMatch(l)
	m.deployDuration.DeletePartialMatch(l)
	m.versionInfo.DeletePartialMatch(l)
	m.lastDeploy.DeletePartialMatch(l)
	m.registryRequests.DeletePartialMatch(l)
}

// setVersion makes version the only deployed_version_info series of app.
func (m *metrics) setVersion(app, version string) {
	m.versionsMu.Lock()
	defer m.versionsMu.Unlock()
	if prev, ok := m.versions[app]; ok && prev != version {
		m.versionInfo.DeleteLabelValues(app, prev)
	}
	if version == "" {
		delete(m.versions, app)
		return
	}
	m.versionInfo.WithLabelValues(app, version).Set(1)
	m.versions[app] = version
}

// countingTransport counts an app's registry requests by status code.
type countingTransport struct {
	next    http.RoundTripper
	counter *prometheus.CounterVec
	app     string
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	code := "0"
	if resp != nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.counter.WithLabelValues(t.app, code).Inc()
	return resp, err
}

// appClient returns an HTTP client for one app that shares base's transport and
// counts requests by status code.
func (m *metrics) appClient(base *http.Client, app string) *http.Client {
	c := *base
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = &countingTransport{next: next, counter: m.registryRequests, app: app}
	return &c
}
