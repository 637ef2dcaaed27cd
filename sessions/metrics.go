package sessions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records every call Warden makes to a provider. Labels are the
// provider's name, the operation and the outcome, never a user or an email.
// A nil *Metrics records nothing.
//
//	warden_provider_calls_total{provider, op, outcome}  counter
//	warden_provider_call_duration_seconds{provider, op}  histogram
//
// op is one of find_user, list_sessions, revoke_session, revoke_all,
// revoke_tokens, list_all; outcome one of ok, no_account, not_found,
// timeout, error.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Operations and outcomes, the values of the op and outcome labels.
const (
	OpFindUser      = "find_user"
	OpListSessions  = "list_sessions"
	OpRevokeSession = "revoke_session"
	OpRevokeAll     = "revoke_all"
	OpRevokeTokens  = "revoke_tokens"
	OpListAll       = "list_all"

	OutcomeOK        = "ok"
	OutcomeNoAccount = "no_account"
	OutcomeNotFound  = "not_found"
	OutcomeTimeout   = "timeout"
	OutcomeError     = "error"
)

// callBuckets covers a cached lookup to a provider call that hit its
// deadline after retries.
var callBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics creates the provider-call metrics and registers them with reg
// (nil: not registered, still usable).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_provider_calls_total",
			Help: "Calls to identity providers, by provider, operation and outcome.",
		}, []string{"provider", "op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_provider_call_duration_seconds",
			Help:    "Time of one call to an identity provider, retries included, by provider and operation.",
			Buckets: callBuckets,
		}, []string{"provider", "op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.calls, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register provider metrics: %w", err)
			}
		}
	}
	return m, nil
}

// observe records one call.
func (m *Metrics) observe(ctx context.Context, provider, op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(provider, op, outcome(ctx, err)).Inc()
	m.duration.WithLabelValues(provider, op).Observe(time.Since(start).Seconds())
}

// outcome classifies a call's error.
func outcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrNoAccount):
		return OutcomeNoAccount
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrTimeout),
		errors.Is(ctx.Err(), context.DeadlineExceeded):
		return OutcomeTimeout
	}
	if t, ok := errors.AsType[interface {
		error
		Timeout() bool
	}](err); ok && t.Timeout() {
		return OutcomeTimeout
	}
	return OutcomeError
}

// Instrument returns p with every call recorded in m. The result implements
// TokenRevoker and Lister exactly when p does, so callers that check for
// them keep working; Unwrap returns p. A nil m returns p itself.
func Instrument(p Provider, m *Metrics) Provider {
	if p == nil || m == nil {
		return p
	}
	base := &instrumented{p: p, m: m, name: p.Name()}
	tr, tokens := p.(TokenRevoker)
	l, lists := p.(Lister)
	switch {
	case tokens && lists:
		return &instrumentedFull{base, tokenCalls{base, tr}, listCalls{base, l}}
	case tokens:
		return &instrumentedTokens{base, tokenCalls{base, tr}}
	case lists:
		return &instrumentedLister{base, listCalls{base, l}}
	}
	return base
}

// instrumented wraps the Provider methods.
type instrumented struct {
	p    Provider
	m    *Metrics
	name string
}

// Unwrap returns the provider Instrument wrapped.
func (w *instrumented) Unwrap() Provider { return w.p }

func (w *instrumented) Name() string               { return w.name }
func (w *instrumented) Capabilities() Capabilities { return w.p.Capabilities() }

func (w *instrumented) FindUser(ctx context.Context, email string) (User, error) {
	start := time.Now()
	u, err := w.p.FindUser(ctx, email)
	w.m.observe(ctx, w.name, OpFindUser, start, err)
	return u, err
}

func (w *instrumented) ListSessions(ctx context.Context, u User) ([]Session, error) {
	start := time.Now()
	ss, err := w.p.ListSessions(ctx, u)
	w.m.observe(ctx, w.name, OpListSessions, start, err)
	return ss, err
}

func (w *instrumented) RevokeSession(ctx context.Context, u User, id string) error {
	start := time.Now()
	err := w.p.RevokeSession(ctx, u, id)
	w.m.observe(ctx, w.name, OpRevokeSession, start, err)
	return err
}

func (w *instrumented) RevokeAll(ctx context.Context, u User) error {
	start := time.Now()
	err := w.p.RevokeAll(ctx, u)
	w.m.observe(ctx, w.name, OpRevokeAll, start, err)
	return err
}

// tokenCalls and listCalls carry the optional methods.
type tokenCalls struct {
	w  *instrumented
	tr TokenRevoker
}

func (t tokenCalls) RevokeTokens(ctx context.Context, u User) error {
	start := time.Now()
	err := t.tr.RevokeTokens(ctx, u)
	t.w.m.observe(ctx, t.w.name, OpRevokeTokens, start, err)
	return err
}

type listCalls struct {
	w *instrumented
	l Lister
}

func (l listCalls) ListAll(ctx context.Context) ([]Session, []User, error) {
	start := time.Now()
	ss, us, err := l.l.ListAll(ctx)
	l.w.m.observe(ctx, l.w.name, OpListAll, start, err)
	return ss, us, err
}

type instrumentedTokens struct {
	*instrumented
	tokenCalls
}

type instrumentedLister struct {
	*instrumented
	listCalls
}

type instrumentedFull struct {
	*instrumented
	tokenCalls
	listCalls
}
