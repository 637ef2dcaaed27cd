package commands

import (
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records the commands people type and the hygiene figures Warden
// last computed. Labels are the verb and the outcome, never a user. A nil
// *Metrics records nothing.
//
//	warden_commands_total{verb, outcome}  counter
//	warden_hygiene_stale_sessions  gauge
//	warden_hygiene_unmanaged_devices  gauge
//
// verb is one of the /sessions verbs, "invalid" for text that does not
// parse, or "other"; outcome is ok, refused (not allowed), usage_error (the
// command cannot be done as typed) or error (Warden failed).
type Metrics struct {
	commands  *prometheus.CounterVec
	stale     prometheus.Gauge
	unmanaged prometheus.Gauge
}

// Command outcomes, the values of the outcome label.
const (
	OutcomeOK         = "ok"
	OutcomeRefused    = "refused"
	OutcomeUsageError = "usage_error"
	OutcomeError      = "error"
)

// verbInvalid is the verb label of text that does not parse.
const verbInvalid = "invalid"

// NewMetrics creates the command metrics and registers them with reg (nil:
// not registered, still usable).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_commands_total",
			Help: "/sessions commands answered, by verb and outcome (ok, refused, usage_error, error).",
		}, []string{"verb", "outcome"}),
		stale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_hygiene_stale_sessions",
			Help: "Stale sessions found by the last hygiene report.",
		}),
		unmanaged: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_hygiene_unmanaged_devices",
			Help: "Sessions on unmanaged devices found by the last hygiene report.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.commands, m.stale, m.unmanaged} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register command metrics: %w", err)
			}
		}
	}
	return m, nil
}

// SetHygiene records what the last hygiene report (or org-wide scan) found:
// how many sessions are stale and how many are on unmanaged devices.
func (m *Metrics) SetHygiene(stale, unmanaged int) {
	if m == nil {
		return
	}
	m.stale.Set(float64(stale))
	m.unmanaged.Set(float64(unmanaged))
}

// command counts one answered command. parseErr is Parse's error; reply is
// what the person was shown, whose fixed error text (errors.go) tells the
// outcome.
func (m *Metrics) command(verb string, parseErr error, reply Reply) {
	if m == nil {
		return
	}
	switch {
	case parseErr != nil:
		verb = verbInvalid
	case !slices.Contains(verbs, verb):
		verb = "other"
	}
	m.commands.WithLabelValues(verb, commandOutcome(parseErr, reply)).Inc()
}

// refusals are the error kinds that mean "you may not".
var refusals = []errorKind{kindNotResponder, kindNotYours, kindSelfApproval, kindNotApprover, kindNotSubject}

// commandOutcome classifies a reply: a parse error is a usage error; the
// internal error text an error; a refusal text refused; any other fixed
// error text a usage error (no such run, no email, …); anything else ok.
func commandOutcome(parseErr error, reply Reply) string {
	if parseErr != nil {
		return OutcomeUsageError
	}
	if reply.Text == "" {
		return OutcomeOK
	}
	if reply.Text == errorText[kindInternal] {
		return OutcomeError
	}
	for _, k := range refusals {
		if reply.Text == errorText[k] {
			return OutcomeRefused
		}
	}
	for _, text := range errorText {
		if reply.Text == text {
			return OutcomeUsageError
		}
	}
	return OutcomeOK
}
