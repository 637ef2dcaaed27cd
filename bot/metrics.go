package bot

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
)

// Metrics records what the transport sees. The only label is the envelope
// type, a fixed set. A nil *Metrics records nothing.
//
//	warden_slack_envelopes_total{type}  counter of envelopes received
//	warden_slack_ack_duration_seconds{type}  histogram: envelope received → ack handed to the socket
//	warden_slack_connected  gauge, 1 while the Socket Mode connection is up
//
// type is slash_commands, block_actions, view_submission, interactive (any
// other interaction) or events_api.
type Metrics struct {
	envelopes *prometheus.CounterVec
	ack       *prometheus.HistogramVec
	connected prometheus.Gauge
}

// Envelope types, the values of the type label.
const (
	envSlashCommand   = "slash_commands"
	envBlockActions   = "block_actions"
	envViewSubmission = "view_submission"
	envInteractive    = "interactive"
	envEventsAPI      = "events_api"
)

// ackBuckets: most acks take well under a millisecond; a view_submission's
// waits for Handler.Submit (up to 1.5 s); Slack gives up at 3 s.
var ackBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3}

// NewMetrics creates the transport's metrics and registers them with reg
// (nil: not registered, still usable).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_slack_envelopes_total",
			Help: "Socket Mode envelopes received from Slack, by type.",
		}, []string{"type"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_slack_ack_duration_seconds",
			Help:    "Time from receiving a Socket Mode envelope to sending its ack, by type.",
			Buckets: ackBuckets,
		}, []string{"type"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_slack_connected",
			Help: "1 while the Socket Mode connection to Slack is up, else 0.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.envelopes, m.ack, m.connected} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register bot metrics: %w", err)
			}
		}
	}
	return m, nil
}

// envelope counts one envelope received.
func (m *Metrics) envelope(typ string) {
	if m == nil {
		return
	}
	m.envelopes.WithLabelValues(typ).Inc()
}

// acked records the time from receipt to ack.
func (m *Metrics) acked(typ string, d time.Duration) {
	if m == nil {
		return
	}
	m.ack.WithLabelValues(typ).Observe(d.Seconds())
}

// interactionType maps an interaction to its envelope type label.
func interactionType(t slack.InteractionType) string {
	switch t {
	case slack.InteractionTypeBlockActions:
		return envBlockActions
	case slack.InteractionTypeViewSubmission:
		return envViewSubmission
	}
	return envInteractive
}

// setConnected records whether the socket is up and returns the previous
// value.
func (a *App) setConnected(v bool) (was bool) {
	was = a.connected.Swap(v)
	if a.metrics != nil {
		g := 0.0
		if v {
			g = 1
		}
		a.metrics.connected.Set(g)
	}
	return was
}
