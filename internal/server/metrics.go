package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// apiMetrics records request counts and latencies per service and action;
// the router reports every request to it.
type apiMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "api", Name: "requests_total",
			Help: "API requests by service, action and HTTP status code.",
		}, []string{"service", "action", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "berth", Subsystem: "api", Name: "request_duration_seconds",
			Help:    "API request latency by service and action.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"service", "action"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// ObserveRequest implements awsapi.Observer.
func (m *apiMetrics) ObserveRequest(service, action string, status int, d time.Duration) {
	m.requests.WithLabelValues(service, action, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(service, action).Observe(d.Seconds())
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
