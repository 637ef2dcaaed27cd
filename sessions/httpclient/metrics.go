package httpclient

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records what the shared HTTP layer sees at each provider: how long
// every attempt took and how often the provider said "slow down". Labels are
// the provider's name and a status class, never a path, user or email. A nil
// *Metrics records nothing.
//
//	warden_provider_http_request_duration_seconds{provider, code}  histogram, one sample per attempt;
//	    code is "2xx", "3xx", "4xx", "429", "5xx" or "error" (no answer)
//	warden_provider_throttles_total{provider}  counter of throttle signals seen
//	    (429 with or without Retry-After / X-Rate-Limit-Reset, Google's quota 403)
type Metrics struct {
	requests  *prometheus.HistogramVec
	throttles *prometheus.CounterVec
}

// requestBuckets spans a fast local provider to a slow audit-log query.
var requestBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// NewMetrics creates the HTTP layer's metrics and registers them with reg
// (nil: not registered, still usable).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_provider_http_request_duration_seconds",
			Help:    "Time of one HTTP attempt to an identity provider, by provider and status class.",
			Buckets: requestBuckets,
		}, []string{"provider", "code"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_provider_throttles_total",
			Help: "Throttle signals (429, Retry-After, X-Rate-Limit-Reset, quota 403) received from identity providers.",
		}, []string{"provider"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.throttles} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register httpclient metrics: %w", err)
			}
		}
	}
	return m, nil
}

// HTTPClient returns a copy of hc (nil: a client with a 30 s timeout) that
// carries m. Give it to a connector as its Config.HTTP: every Client built on
// it (Config.HTTP) records into m even when Config.Metrics is nil, so
// connectors need no metrics setting of their own. Requests pass through
// unchanged. A nil m returns hc as it is.
func (m *Metrics) HTTPClient(hc *http.Client) *http.Client {
	if m == nil {
		return hc
	}
	var out http.Client
	if hc != nil {
		out = *hc
	} else {
		out.Timeout = defaultTimeout
	}
	out.Transport = &carrier{base: out.Transport, m: m}
	return &out
}

// carrier is the transport of HTTPClient: it only passes requests on, and
// tells New which Metrics to record into.
type carrier struct {
	base http.RoundTripper // nil: http.DefaultTransport
	m    *Metrics
}

// RoundTrip sends r with the wrapped transport.
func (c *carrier) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.base == nil {
		return http.DefaultTransport.RoundTrip(r)
	}
	return c.base.RoundTrip(r)
}

// metricsOf returns the Metrics hc carries (see HTTPClient), or nil.
func metricsOf(hc *http.Client) *Metrics {
	if hc == nil {
		return nil
	}
	if c, ok := hc.Transport.(*carrier); ok {
		return c.m
	}
	return nil
}

// attempt records one attempt: its status (0 with err when nothing came
// back) and how long it took.
func (m *Metrics) attempt(provider string, status int, err error, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(provider, codeClass(status, err)).Observe(d.Seconds())
}

// throttle counts one throttle signal.
func (m *Metrics) throttle(provider string) {
	if m == nil {
		return
	}
	m.throttles.WithLabelValues(provider).Inc()
}

// codeClass is the bounded status label of an attempt.
func codeClass(status int, err error) string {
	switch {
	case err != nil || status == 0:
		return "error"
	case status == http.StatusTooManyRequests:
		return "429"
	case status >= 100 && status < 600:
		return strconv.Itoa(status/100) + "xx"
	}
	return "error"
}
