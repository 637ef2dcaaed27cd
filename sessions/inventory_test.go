package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeProvider is a Provider with one XFn field per method. Nil funcs give
// harmless defaults.
type fakeProvider struct {
	NameFn          func() string
	CapabilitiesFn  func() Capabilities
	FindUserFn      func(ctx context.Context, email string) (User, error)
	ListSessionsFn  func(ctx context.Context, u User) ([]Session, error)
	RevokeSessionFn func(ctx context.Context, u User, id string) error
	RevokeAllFn     func(ctx context.Context, u User) error
}

var _ Provider = (*fakeProvider)(nil)

func (f *fakeProvider) Name() string { return f.NameFn() }

func (f *fakeProvider) Capabilities() Capabilities {
	if f.CapabilitiesFn == nil {
		return Capabilities{}
	}
	return f.CapabilitiesFn()
}

func (f *fakeProvider) FindUser(ctx context.Context, email string) (User, error) {
	return f.FindUserFn(ctx, email)
}

func (f *fakeProvider) ListSessions(ctx context.Context, u User) ([]Session, error) {
	if f.ListSessionsFn == nil {
		return nil, nil
	}
	return f.ListSessionsFn(ctx, u)
}

func (f *fakeProvider) RevokeSession(ctx context.Context, u User, id string) error {
	return f.RevokeSessionFn(ctx, u, id)
}

func (f *fakeProvider) RevokeAll(ctx context.Context, u User) error { return f.RevokeAllFn(ctx, u) }

func named(name string) func() string { return func() string { return name } }

// found returns a FindUser that knows every email.
func found(provider string) func(context.Context, string) (User, error) {
	return func(_ context.Context, email string) (User, error) {
		return User{Provider: provider, ID: "id-" + provider, Email: email}, nil
	}
}

// waitCtx blocks until ctx ends or d passes (simulated provider latency).
func waitCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func TestInventoryPartialResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		boom := errors.New("okta: 500 internal server error")
		ok := &fakeProvider{
			NameFn:         named("ok"),
			CapabilitiesFn: func() Capabilities { return Capabilities{ListSessions: true, RevokeAll: true} },
			FindUserFn:     found("ok"),
			ListSessionsFn: func(ctx context.Context, u User) ([]Session, error) {
				if err := waitCtx(ctx, 300*time.Millisecond); err != nil {
					return nil, err
				}
				// Returned oldest first; Lookup sorts most recent first.
				return []Session{
					{Provider: "ok", ID: "old", Kind: KindSession, LastActive: t0.Add(-time.Hour)},
					{ID: "new", Kind: KindSession, LastActive: t0.Add(-time.Minute)},
				}, nil
			},
		}
		broken := &fakeProvider{
			NameFn: named("broken"),
			FindUserFn: func(context.Context, string) (User, error) {
				return User{}, boom
			},
		}
		slow := &fakeProvider{
			NameFn:     named("slow"),
			FindUserFn: found("slow"),
			ListSessionsFn: func(ctx context.Context, u User) ([]Session, error) {
				if err := waitCtx(ctx, time.Minute); err != nil {
					return nil, fmt.Errorf("list: %w", err)
				}
				return []Session{{ID: "late"}}, nil
			},
		}
		none := &fakeProvider{
			NameFn: named("none"),
			FindUserFn: func(context.Context, string) (User, error) {
				return User{}, fmt.Errorf("find user: %w", ErrNoAccount)
			},
		}
		inv, err := NewInventory(InventoryConfig{Providers: []Provider{slow, ok, broken, none}})
		if err != nil {
			t.Fatal(err)
		}

		res := inv.Lookup(t.Context(), "bob@example.com")

		if took := time.Since(t0); took != DefaultProviderTimeout {
			t.Errorf("Lookup took %v, want the 5s per-provider deadline exactly", took)
		}
		var names []string
		for _, pr := range res.Providers {
			names = append(names, pr.Provider)
		}
		if diff := cmp.Diff([]string{"slow", "ok", "broken", "none"}, names); diff != "" {
			t.Errorf("providers not in configured order (-want +got):\n%s", diff)
		}
		slowR, okR, brokenR, noneR := res.Providers[0], res.Providers[1], res.Providers[2], res.Providers[3]

		// The healthy provider's answer survives the others' failures.
		if okR.Err != nil || !okR.Found {
			t.Errorf("ok: Found=%v Err=%v, want found without error", okR.Found, okR.Err)
		}
		if !okR.Caps.ListSessions || !okR.Caps.RevokeAll {
			t.Errorf("ok: Caps = %+v, want the provider's capabilities", okR.Caps)
		}
		var ids []string
		for _, s := range okR.Sessions {
			ids = append(ids, s.ID)
			if s.Provider != "ok" {
				t.Errorf("session %s Provider = %q, want filled in as %q", s.ID, s.Provider, "ok")
			}
		}
		if diff := cmp.Diff([]string{"new", "old"}, ids); diff != "" {
			t.Errorf("ok sessions not most-recent first (-want +got):\n%s", diff)
		}
		if okR.Elapsed != 300*time.Millisecond {
			t.Errorf("ok Elapsed = %v, want 300ms", okR.Elapsed)
		}

		if !errors.Is(brokenR.Err, boom) || brokenR.Found {
			t.Errorf("broken: Found=%v Err=%v, want not found wrapping the provider error", brokenR.Found, brokenR.Err)
		}

		if noneR.Err != nil || noneR.Found || len(noneR.Sessions) != 0 {
			t.Errorf("none: Found=%v Err=%v Sessions=%v, want a clean 'no account there'", noneR.Found, noneR.Err, noneR.Sessions)
		}

		if !errors.Is(slowR.Err, ErrTimeout) || !errors.Is(slowR.Err, context.DeadlineExceeded) {
			t.Errorf("slow: Err = %v, want ErrTimeout and context.DeadlineExceeded", slowR.Err)
		}
		if want := "list sessions: timed out after 5s"; slowR.Err == nil || slowR.Err.Error() != want {
			t.Errorf("slow: Err = %v, want %q", slowR.Err, want)
		}
		// The user was found before the listing timed out: keep that.
		if !slowR.Found || slowR.User.ID != "id-slow" {
			t.Errorf("slow: Found=%v User=%+v, want the user found before the timeout", slowR.Found, slowR.User)
		}
		if slowR.Elapsed != DefaultProviderTimeout {
			t.Errorf("slow: Elapsed = %v, want 5s", slowR.Elapsed)
		}
	})
}

func TestInventoryAsksConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ps []Provider
		for i := range 4 {
			ps = append(ps, &fakeProvider{
				NameFn: named(fmt.Sprint("p", i)),
				FindUserFn: func(ctx context.Context, email string) (User, error) {
					return User{ID: "u"}, waitCtx(ctx, time.Second)
				},
				ListSessionsFn: func(ctx context.Context, u User) ([]Session, error) {
					return []Session{{ID: "s"}}, waitCtx(ctx, time.Second)
				},
			})
		}
		inv, err := NewInventory(InventoryConfig{Providers: ps})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res := inv.Lookup(t.Context(), "alice@example.com")
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("4 providers of 2s each took %v, want 2s (all at once)", took)
		}
		for _, pr := range res.Providers {
			if pr.Err != nil || len(pr.Sessions) != 1 {
				t.Errorf("%s: Err=%v Sessions=%d, want 1 session", pr.Provider, pr.Err, len(pr.Sessions))
			}
		}
	})
}

func TestInventoryAbandonsProviderIgnoringContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		returned := make(chan struct{})
		hung := &fakeProvider{
			NameFn: named("hung"),
			FindUserFn: func(ctx context.Context, email string) (User, error) {
				defer close(returned)
				time.Sleep(time.Hour) // a provider that ignores ctx entirely
				return User{ID: "late"}, nil
			},
		}
		fine := &fakeProvider{NameFn: named("fine"), FindUserFn: found("fine")}
		inv, err := NewInventory(InventoryConfig{Providers: []Provider{hung, fine}, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res := inv.Lookup(t.Context(), "carol@example.com")
		if took := time.Since(start); took != 2*time.Second+abandonGrace {
			t.Errorf("Lookup took %v, want the 2s deadline plus %v grace", took, abandonGrace)
		}
		if got, want := fmt.Sprint(res.Providers[0].Err), "lookup: timed out after 2s"; got != want {
			t.Errorf("hung: Err = %q, want %q", got, want)
		}
		if res.Providers[0].Found {
			t.Errorf("hung: Found = true, want false: its late answer must be dropped")
		}
		if !res.Providers[1].Found || res.Providers[1].Err != nil {
			t.Errorf("fine: Found=%v Err=%v, want found", res.Providers[1].Found, res.Providers[1].Err)
		}
		<-returned // the abandoned call ends in the background without blocking
	})
}

func TestInventoryRecoversProviderPanic(t *testing.T) {
	panicky := &fakeProvider{
		NameFn:     named("panicky"),
		FindUserFn: found("panicky"),
		ListSessionsFn: func(context.Context, User) ([]Session, error) {
			var list []Session
			return list[:1], nil // out of range: a real bug, not a polite panic
		},
	}
	fine := &fakeProvider{NameFn: named("fine"), FindUserFn: found("fine")}
	var logs strings.Builder
	inv, err := NewInventory(InventoryConfig{
		Providers: []Provider{panicky, fine},
		Logger:    slogTo(&logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	res := inv.Lookup(t.Context(), "dave@example.com")
	if err := res.Providers[0].Err; !errors.Is(err, ErrProviderPanic) || err.Error() != "list sessions: provider panicked" {
		t.Errorf("panicky: Err = %v, want %q", err, "list sessions: provider panicked")
	}
	if res.Providers[1].Err != nil || !res.Providers[1].Found {
		t.Errorf("fine: Err=%v Found=%v, want found", res.Providers[1].Err, res.Providers[1].Found)
	}
	if !strings.Contains(logs.String(), "slice bounds out of range") {
		t.Errorf("panic value not logged; log:\n%s", logs.String())
	}
}

func TestInventoryCallerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{
			NameFn: named("p"),
			FindUserFn: func(ctx context.Context, email string) (User, error) {
				return User{}, waitCtx(ctx, time.Minute)
			},
		}
		inv, err := NewInventory(InventoryConfig{Providers: []Provider{p}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		res := inv.Lookup(ctx, "erin@example.com")
		err = res.Providers[0].Err
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
			t.Errorf("Err = %v, want the caller's deadline, not a provider timeout", err)
		}
	})
}

func TestInventoryRejectsNonEmail(t *testing.T) {
	asked := 0
	p := &fakeProvider{NameFn: named("p"), FindUserFn: func(context.Context, string) (User, error) {
		asked++
		return User{}, nil
	}}
	inv, err := NewInventory(InventoryConfig{Providers: []Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"", "   ", "bob", "@example.com", "bob@", "bob smith@example.com", "a@b\x00c"} {
		res := inv.Lookup(t.Context(), email)
		if len(res.Providers) != 1 || !errors.Is(res.Providers[0].Err, ErrInvalidEmail) {
			t.Errorf("Lookup(%q) = %+v, want ErrInvalidEmail", email, res.Providers)
		}
	}
	if asked != 0 {
		t.Errorf("providers asked %d times about non-emails, want 0", asked)
	}
}

func TestNewInventoryValidates(t *testing.T) {
	a := &fakeProvider{NameFn: named("a")}
	cases := map[string]InventoryConfig{
		"nil provider":     {Providers: []Provider{nil}},
		"unnamed provider": {Providers: []Provider{&fakeProvider{NameFn: named("")}}},
		"duplicate":        {Providers: []Provider{a, &fakeProvider{NameFn: named("a")}}},
		"negative timeout": {Timeout: -time.Second},
	}
	for name, cfg := range cases {
		if _, err := NewInventory(cfg); err == nil {
			t.Errorf("%s: NewInventory succeeded, want an error", name)
		}
	}
	inv, err := NewInventory(InventoryConfig{})
	if err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if res := inv.Lookup(t.Context(), "a@example.com"); len(res.Providers) != 0 {
		t.Errorf("zero config Lookup = %+v, want no providers", res)
	}
}

func TestInventoryProviderByName(t *testing.T) {
	a, b := &fakeProvider{NameFn: named("a")}, &fakeProvider{NameFn: named("b")}
	inv, err := NewInventory(InventoryConfig{Providers: []Provider{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := inv.Provider("b"); !ok || got != Provider(b) {
		t.Errorf("Provider(b) = %v, %v; want b", got, ok)
	}
	if _, ok := inv.Provider("c"); ok {
		t.Errorf("Provider(c) found, want not found")
	}
	ps := inv.Providers()
	if len(ps) != 2 || ps[0] != Provider(a) || ps[1] != Provider(b) {
		t.Errorf("Providers() = %v, want [a b]", ps)
	}
	ps[0] = b // callers cannot reorder the inventory
	if inv.Providers()[0] != Provider(a) {
		t.Errorf("Providers() exposes the inventory's slice")
	}
}

// httpProvider is the tiny provider of BenchmarkInventory: FindUser is a GET
// to its own server.
type httpProvider struct {
	name   string
	url    string
	client *http.Client
}

func (p *httpProvider) Name() string               { return p.name }
func (p *httpProvider) Capabilities() Capabilities { return Capabilities{ListSessions: true} }
func (p *httpProvider) FindUser(ctx context.Context, email string) (User, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return User{}, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return User{}, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return User{}, err
	}
	return User{ID: "u", Email: email}, nil
}
func (p *httpProvider) ListSessions(context.Context, User) ([]Session, error) {
	return []Session{{ID: "s", Kind: KindSession}}, nil
}
func (p *httpProvider) RevokeSession(context.Context, User, string) error { return nil }
func (p *httpProvider) RevokeAll(context.Context, User) error             { return nil }

func BenchmarkInventory(b *testing.B) {
	const latency = 100 * time.Millisecond
	var ps []Provider
	for i := range 6 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(latency) // simulated provider latency, server side
			_, _ = io.WriteString(w, `{"id":"u"}`)
		}))
		b.Cleanup(srv.Close)
		ps = append(ps, &httpProvider{name: fmt.Sprint("p", i), url: srv.URL, client: srv.Client()})
	}
	inv, err := NewInventory(InventoryConfig{Providers: ps})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	start := time.Now()
	n := 0
	for b.Loop() {
		res := inv.Lookup(ctx, "bob@example.com")
		for _, pr := range res.Providers {
			if pr.Err != nil {
				b.Fatalf("%s: %v", pr.Provider, pr.Err)
			}
		}
		n++
	}
	per := time.Since(start) / time.Duration(n)
	b.ReportMetric(float64(per)/float64(latency), "ratio")
	b.ReportMetric(float64(per)/float64(time.Millisecond), "ms/op")
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
