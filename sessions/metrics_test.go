package sessions

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-sec/warden/internal/metricstest"
)

// tokenFake and listFake add the optional interfaces to fakeProvider.
type tokenFake struct {
	*fakeProvider
	err error
}

func (f tokenFake) RevokeTokens(context.Context, User) error { return f.err }

type listFake struct{ *fakeProvider }

func (listFake) ListAll(context.Context) ([]Session, []User, error) { return nil, nil, nil }

type fullFake struct{ tokenFake }

func (fullFake) ListAll(context.Context) ([]Session, []User, error) { return nil, nil, nil }

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// Lookups through an Inventory of instrumented providers are counted by
// provider, operation and outcome; a provider that misses its deadline
// counts as a timeout.
func TestInstrumentRecordsCallsByOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reg := newTestMetrics(t)
		okta := &fakeProvider{NameFn: named("okta"), FindUserFn: found("okta")}
		auth0 := &fakeProvider{NameFn: named("auth0"), FindUserFn: func(context.Context, string) (User, error) {
			return User{}, ErrNoAccount
		}}
		slow := &fakeProvider{NameFn: named("slow"), FindUserFn: func(ctx context.Context, _ string) (User, error) {
			return User{}, waitCtx(ctx, time.Hour)
		}}
		broken := &fakeProvider{NameFn: named("broken"), FindUserFn: found("broken"),
			ListSessionsFn: func(context.Context, User) ([]Session, error) { return nil, errors.New("boom") }}
		var ps []Provider
		for _, p := range []Provider{okta, auth0, slow, broken} {
			ps = append(ps, Instrument(p, m))
		}
		inv, err := NewInventory(InventoryConfig{Providers: ps, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		inv.Lookup(t.Context(), "ana@example.com")

		calls := func(provider, op, outcome string) float64 {
			return metricstest.Value(t, reg, "warden_provider_calls_total", "provider", provider, "op", op, "outcome", outcome)
		}
		for _, tc := range []struct {
			provider, op, outcome string
		}{
			{"okta", OpFindUser, OutcomeOK},
			{"okta", OpListSessions, OutcomeOK},
			{"auth0", OpFindUser, OutcomeNoAccount},
			{"slow", OpFindUser, OutcomeTimeout},
			{"broken", OpFindUser, OutcomeOK},
			{"broken", OpListSessions, OutcomeError},
		} {
			if got := calls(tc.provider, tc.op, tc.outcome); got != 1 {
				t.Errorf("calls{%s,%s,%s} = %v, want 1", tc.provider, tc.op, tc.outcome, got)
			}
		}
		if got := calls("auth0", OpListSessions, OutcomeOK); got != 0 {
			t.Errorf("auth0 listed sessions of a person it does not know: %v calls", got)
		}
		hist := metricstest.Value(t, reg, "warden_provider_call_duration_seconds", "provider", "slow", "op", OpFindUser)
		sum := metricstest.Sum(t, reg, "warden_provider_call_duration_seconds", "provider", "slow", "op", OpFindUser)
		if hist != 1 || sum < 5 {
			t.Errorf("slow find_user: %v samples summing %vs, want 1 of at least the 5s deadline", hist, sum)
		}
	})
}

// The wrapper keeps the optional interfaces exactly when the provider has
// them, and records revocations, including a not_found revoke.
func TestInstrumentKeepsOptionalInterfaces(t *testing.T) {
	m, reg := newTestMetrics(t)
	base := func(name string) *fakeProvider {
		return &fakeProvider{NameFn: named(name), FindUserFn: found(name),
			RevokeSessionFn: func(context.Context, User, string) error { return ErrNotFound },
			RevokeAllFn:     func(context.Context, User) error { return nil }}
	}
	for _, tc := range []struct {
		p             Provider
		tokens, lists bool
	}{
		{base("plain"), false, false},
		{tokenFake{fakeProvider: base("tok")}, true, false},
		{listFake{base("lst")}, false, true},
		{fullFake{tokenFake{fakeProvider: base("full")}}, true, true},
	} {
		w := Instrument(tc.p, m)
		name := w.Name()
		_, tokens := w.(TokenRevoker)
		_, lists := w.(Lister)
		if tokens != tc.tokens || lists != tc.lists {
			t.Errorf("%s: TokenRevoker %v Lister %v, want %v %v", name, tokens, lists, tc.tokens, tc.lists)
		}
		if u, ok := w.(interface{ Unwrap() Provider }); !ok || u.Unwrap() != tc.p {
			t.Errorf("%s: Unwrap does not return the provider", name)
		}
		ctx := t.Context()
		_ = w.RevokeSession(ctx, User{}, "s1")
		_ = w.RevokeAll(ctx, User{})
		if tr, ok := w.(TokenRevoker); ok {
			_ = tr.RevokeTokens(ctx, User{})
		}
		if l, ok := w.(Lister); ok {
			_, _, _ = l.ListAll(ctx)
		}
		val := func(op, outcome string) float64 {
			return metricstest.Value(t, reg, "warden_provider_calls_total", "provider", name, "op", op, "outcome", outcome)
		}
		if val(OpRevokeSession, OutcomeNotFound) != 1 || val(OpRevokeAll, OutcomeOK) != 1 {
			t.Errorf("%s: revoke calls not recorded", name)
		}
		if want := map[bool]float64{true: 1}[tc.tokens]; val(OpRevokeTokens, OutcomeOK) != want {
			t.Errorf("%s: revoke_tokens = %v, want %v", name, val(OpRevokeTokens, OutcomeOK), want)
		}
		if want := map[bool]float64{true: 1}[tc.lists]; val(OpListAll, OutcomeOK) != want {
			t.Errorf("%s: list_all = %v, want %v", name, val(OpListAll, OutcomeOK), want)
		}
	}
	if p := Instrument(base("x"), nil); p.Name() != "x" {
		t.Errorf("Instrument with nil metrics changed the provider")
	}
	if _, ok := Instrument(base("x"), nil).(*fakeProvider); !ok {
		t.Errorf("Instrument with nil metrics wrapped the provider")
	}
}
