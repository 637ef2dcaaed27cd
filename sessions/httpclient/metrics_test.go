package httpclient

import (
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/internal/metricstest"
	"github.com/warden-sec/warden/sessions/httpclient/httpclienttest"
)

// A provider that throttles twice, then fails once with a 500 and then
// answers: every attempt is timed under its status class and each throttle
// signal is counted, whether Config.Metrics is set or the metrics arrive
// through the connector's http.Client.
func TestMetricsCountAttemptsAndThrottles(t *testing.T) {
	googleQuota := `{"error":{"code":403,"errors":[{"reason":"userRateLimitExceeded"}]}}`
	for _, how := range []string{"config", "http client"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				m, err := NewMetrics(reg)
				if err != nil {
					t.Fatal(err)
				}
				s := &script{answers: []answer{
					{status: 429, header: map[string]string{"Retry-After": "1"}},
					{status: 403, body: googleQuota},
					{status: 500},
				}}
				c := newTestClient(t, GoogleQuota, s, func(cfg *Config) {
					cfg.Provider = "google"
					cfg.MaxAttempts = 5
					if how == "config" {
						cfg.Metrics = m
					} else {
						cfg.HTTP = m.HTTPClient(httpclienttest.Client(s))
					}
				})
				if _, err := c.JSON(t.Context(), http.MethodGet, "/users", nil, nil, nil); err != nil {
					t.Fatalf("request: %v", err)
				}
				const hist = "warden_provider_http_request_duration_seconds"
				for _, tc := range []struct {
					code string
					want float64
				}{{"429", 1}, {"4xx", 1}, {"5xx", 1}, {"2xx", 1}, {"error", 0}} {
					if got := metricstest.Value(t, reg, hist, "provider", "google", "code", tc.code); got != tc.want {
						t.Errorf("%s{code=%q} = %v, want %v", hist, tc.code, got, tc.want)
					}
				}
				if got := metricstest.Value(t, reg, "warden_provider_throttles_total", "provider", "google"); got != 2 {
					t.Errorf("throttles = %v, want 2 (the 429 and the quota 403; the 500 is no throttle)", got)
				}
			})
		})
	}
}

// A connection that fails is timed as "error"; a plain 403 is no throttle.
func TestMetricsTransportErrorAndPlain403(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := &script{answers: []answer{{netErr: true}, {status: 403, body: `{"error":"forbidden"}`}}}
	c := newTestClient(t, RetryAfter, s, func(cfg *Config) {
		cfg.Metrics = m
		cfg.Rate = rate.Inf
		cfg.Backoff = 1 // the retry after the broken connection is immediate
	})
	if _, err := c.JSON(t.Context(), http.MethodGet, "/users", nil, nil, nil); err == nil {
		t.Fatal("a 403 answer succeeded")
	}
	if got := metricstest.Value(t, reg, "warden_provider_http_request_duration_seconds", "provider", "acme", "code", "error"); got != 1 {
		t.Errorf("error attempts = %v, want 1", got)
	}
	if got := metricstest.Value(t, reg, "warden_provider_http_request_duration_seconds", "provider", "acme", "code", "4xx"); got != 1 {
		t.Errorf("4xx attempts = %v, want 1", got)
	}
	if got := metricstest.Value(t, reg, "warden_provider_throttles_total", "provider", "acme"); got != 0 {
		t.Errorf("throttles = %v, want 0", got)
	}
}

// A Client without metrics works as before, and a nil *Metrics is inert.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	if hc := m.HTTPClient(nil); hc != nil {
		t.Errorf("nil Metrics wrapped a client")
	}
	m.attempt("x", 200, nil, 0)
	m.throttle("x")
	c := newTestClient(t, RetryAfter, &script{}, nil)
	if _, err := c.JSON(t.Context(), http.MethodGet, "/", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}
