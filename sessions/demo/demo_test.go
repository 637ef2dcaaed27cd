package demo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

var seedTime = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func openDB(t *testing.T, path string) *storage.DB {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	return db
}

func newProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func list(t *testing.T, p *Provider, email string) (sessions.User, []sessions.Session) {
	t.Helper()
	u, err := p.FindUser(t.Context(), email)
	if err != nil {
		t.Fatalf("FindUser(%s): %v", email, err)
	}
	ss, err := p.ListSessions(t.Context(), u)
	if err != nil {
		t.Fatalf("ListSessions(%s): %v", email, err)
	}
	return u, ss
}

func ids(ss []sessions.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func byID(ss []sessions.Session, id string) (sessions.Session, bool) {
	for _, s := range ss {
		if s.ID == id {
			return s, true
		}
	}
	return sessions.Session{}, false
}

func TestSeededInventory(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "warden.db"))
	defer db.Close()
	p := newProvider(t, Config{Store: db, Now: fixedNow(seedTime)})

	managers := map[string]string{
		AliceEmail: "", BobEmail: CarolEmail, CarolEmail: "", DaveEmail: CarolEmail, ErinEmail: "",
	}
	docRanges := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
	}
	var all []sessions.Session
	for email, manager := range managers {
		u, ss := list(t, p, email)
		if u.Email != email || u.Provider != Name || u.ID == "" || u.Name == "" {
			t.Errorf("FindUser(%s) = %+v, want a complete demo user", email, u)
		}
		if u.ManagerEmail != manager {
			t.Errorf("%s manager = %q, want %q", email, u.ManagerEmail, manager)
		}
		if len(ss) < 2 {
			t.Errorf("%s has %d sessions, want a laptop and a phone at least", email, len(ss))
		}
		for i := 1; i < len(ss); i++ {
			if sessions.Activity(ss[i]).After(sessions.Activity(ss[i-1])) {
				t.Errorf("%s sessions not most recent first: %v", email, ids(ss))
			}
		}
		for _, s := range ss {
			if s.Provider != Name || !s.Active || s.UserAgent == "" || s.Location == "" {
				t.Errorf("session %s = %+v, want provider demo, active, with user agent and location", s.ID, s)
			}
			ip, err := netip.ParseAddr(s.IP)
			if err != nil || !slices.ContainsFunc(docRanges, func(r netip.Prefix) bool { return r.Contains(ip) }) {
				t.Errorf("session %s IP %q is not in a documentation range", s.ID, s.IP)
			}
		}
		all = append(all, ss...)
	}

	// Case-insensitive, surrounding spaces ignored.
	if u, err := p.FindUser(t.Context(), "  Bob.Engineer@EXAMPLE.com "); err != nil || u.Email != BobEmail {
		t.Errorf("FindUser(mixed case) = %+v, %v; want bob", u, err)
	}

	var stale, unmanaged, tokens []string
	for _, s := range all {
		if sessions.IsStale(s, seedTime, 45*24*time.Hour) {
			stale = append(stale, s.ID)
		}
		if sessions.IsUnmanaged(s) {
			unmanaged = append(unmanaged, s.ID)
		}
		if s.Kind == sessions.KindToken {
			tokens = append(tokens, s.ID)
		}
	}
	if diff := cmp.Diff([]string{"ds-bob-linux-firefox"}, stale); diff != "" {
		t.Errorf("stale (>45 days) sessions (-want +got):\n%s", diff)
	}
	if len(unmanaged) == 0 {
		t.Errorf("no unmanaged device in the seed")
	}

	// Times are relative to Now at first seed.
	_, alice := list(t, p, AliceEmail)
	mbp, ok := byID(alice, "ds-alice-mbp-chrome")
	if !ok {
		t.Fatalf("alice's laptop missing: %v", ids(alice))
	}
	if want := seedTime.Add(-10 * time.Minute); !mbp.LastActive.Equal(want) {
		t.Errorf("alice laptop LastActive = %v, want %v (10 minutes before seed)", mbp.LastActive, want)
	}
	if want := (sessions.Device{OS: "macOS", Browser: "Chrome 126"}); mbp.Device != want {
		t.Errorf("alice laptop Device = %+v, want %+v", mbp.Device, want)
	}
	cli, ok := byID(alice, "ds-alice-cli")
	if !ok || cli.Kind != sessions.KindToken || cli.Device.Client != "warden-cli" {
		t.Errorf("alice CLI token = %+v, want a warden-cli token", cli)
	}
	phone, _ := byID(alice, "ds-alice-iphone-slack")
	if want := (sessions.Device{OS: "iOS 17", Client: "Slack mobile", Mobile: true}); phone.Device != want {
		t.Errorf("alice phone Device = %+v, want %+v", phone.Device, want)
	}

	// Bob signs in only from Germany, except once from Brazil.
	_, bob := list(t, p, BobEmail)
	countries := map[string]int{}
	for _, s := range bob {
		countries[s.Country]++
	}
	if countries["BR"] != 1 || countries["DE"] < 3 {
		t.Errorf("bob's countries = %v, want mostly DE and one odd BR sign-in", countries)
	}
	if len(tokens) < 2 {
		t.Errorf("tokens = %v, want at least alice's CLI token and dave's", tokens)
	}
}

func TestRevokeSticksAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	db := openDB(t, path)
	p := newProvider(t, Config{Store: db, Now: fixedNow(seedTime)})

	bob, before := list(t, p, BobEmail)
	if _, ok := byID(before, "ds-bob-saopaulo-chrome"); !ok {
		t.Fatalf("seed lacks the São Paulo session: %v", ids(before))
	}
	if err := p.RevokeSession(t.Context(), bob, "ds-bob-saopaulo-chrome"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	_, after := list(t, p, BobEmail)
	if _, ok := byID(after, "ds-bob-saopaulo-chrome"); ok || len(after) != len(before)-1 {
		t.Errorf("after revoke: %v, want only the São Paulo session gone from %v", ids(after), ids(before))
	}
	// Revoking again, or an id that never existed, is success.
	for _, id := range []string{"ds-bob-saopaulo-chrome", "no-such-session"} {
		if err := p.RevokeSession(t.Context(), bob, id); err != nil {
			t.Errorf("RevokeSession(%s) = %v, want nil (already gone)", id, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart a week later: the revocation sticks and the seed is not redone.
	db = openDB(t, path)
	defer db.Close()
	later := seedTime.Add(7 * 24 * time.Hour)
	p = newProvider(t, Config{Store: db, Now: fixedNow(later)})
	_, reopened := list(t, p, BobEmail)
	if diff := cmp.Diff(ids(after), ids(reopened)); diff != "" {
		t.Errorf("after restart (-before restart +after):\n%s", diff)
	}
	edge, _ := byID(reopened, "ds-bob-win-edge")
	if want := seedTime.Add(-25 * time.Minute); !edge.LastActive.Equal(want) {
		t.Errorf("after restart LastActive = %v, want %v (seed kept, not redone)", edge.LastActive, want)
	}
}

func TestRevokeAllAndTokens(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "warden.db"))
	defer db.Close()
	p := newProvider(t, Config{Store: db, Now: fixedNow(seedTime)})
	dave, _ := list(t, p, DaveEmail)

	if err := p.RevokeAll(t.Context(), dave); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	_, left := list(t, p, DaveEmail)
	if diff := cmp.Diff([]string{"ds-dave-pat"}, ids(left)); diff != "" {
		t.Errorf("after RevokeAll, want only the token left (Capabilities.Leaves) (-want +got):\n%s", diff)
	}
	if err := p.RevokeAll(t.Context(), dave); err != nil {
		t.Errorf("second RevokeAll = %v, want nil", err)
	}
	if err := p.RevokeTokens(t.Context(), dave); err != nil {
		t.Fatalf("RevokeTokens: %v", err)
	}
	if _, left := list(t, p, DaveEmail); len(left) != 0 {
		t.Errorf("after RevokeTokens: %v, want nothing", ids(left))
	}
	// Other people are untouched.
	if _, bob := list(t, p, BobEmail); len(bob) != 5 {
		t.Errorf("bob has %d sessions after dave's offboarding, want 5", len(bob))
	}
	// RevokeTokens alone leaves sessions.
	alice, _ := list(t, p, AliceEmail)
	if err := p.RevokeTokens(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	_, aliceLeft := list(t, p, AliceEmail)
	if diff := cmp.Diff([]string{"ds-alice-mbp-chrome", "ds-alice-iphone-slack"}, ids(aliceLeft)); diff != "" {
		t.Errorf("after RevokeTokens (-want +got):\n%s", diff)
	}
}

func TestUnknownPerson(t *testing.T) {
	p := newProvider(t, Config{Now: fixedNow(seedTime)})
	ctx := t.Context()
	if _, err := p.FindUser(ctx, "mallory@example.com"); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("FindUser(unknown) = %v, want ErrNoAccount", err)
	}
	ghost := sessions.User{Provider: Name, ID: "demo-u-9999", Email: "mallory@example.com"}
	if _, err := p.ListSessions(ctx, ghost); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("ListSessions(unknown) = %v, want ErrNoAccount", err)
	}
	if err := p.RevokeAll(ctx, ghost); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("RevokeAll(unknown) = %v, want ErrNoAccount", err)
	}
	if err := p.AddSession(ctx, "mallory@example.com", sessions.Session{}); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("AddSession(unknown) = %v, want ErrNoAccount", err)
	}
}

func TestAddSessionAndListAll(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "warden.db"))
	defer db.Close()
	now := seedTime.Add(time.Hour)
	p := newProvider(t, Config{Store: db, Now: fixedNow(now)})
	ctx := t.Context()

	err := p.AddSession(ctx, ErinEmail, sessions.Session{
		IP:        "203.0.113.9",
		UserAgent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
		Location:  "Lisbon, PT",
		Country:   "PT",
	})
	if err != nil {
		t.Fatalf("AddSession: %v", err)
	}
	_, erin := list(t, p, ErinEmail)
	if len(erin) != 3 {
		t.Fatalf("erin has %v, want the 2 seeded sessions plus the new one", ids(erin))
	}
	added := erin[0] // the most recent
	if added.ID == "" || added.Kind != sessions.KindSession || !added.Created.Equal(now) || !added.LastActive.Equal(now) {
		t.Errorf("added session = %+v, want an id, kind session, created and active now", added)
	}
	if want := (sessions.Device{OS: "Android 14", Browser: "Chrome 126", Mobile: true}); added.Device != want {
		t.Errorf("added Device = %+v, want %+v parsed from the user agent", added.Device, want)
	}

	// Same id again replaces; another user's id is refused.
	added.Location = "Porto, PT"
	if err := p.AddSession(ctx, ErinEmail, added); err != nil {
		t.Fatalf("AddSession(replace): %v", err)
	}
	if _, erin := list(t, p, ErinEmail); len(erin) != 3 || erin[0].Location != "Porto, PT" {
		t.Errorf("after replace: %+v, want 3 sessions with the new one in Porto", erin)
	}
	if err := p.AddSession(ctx, ErinEmail, sessions.Session{ID: "ds-bob-win-edge"}); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("AddSession(bob's id to erin) = %v, want ErrDuplicateID", err)
	}

	ss, us, err := p.ListAll(ctx)
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	if len(ss) != len(us) || len(ss) != 16 {
		t.Fatalf("ListAll = %d sessions, %d owners; want 16 of each (15 seeded + 1)", len(ss), len(us))
	}
	owner := map[string]string{}
	for i := range ss {
		owner[ss[i].ID] = us[i].Email
	}
	for id, want := range map[string]string{added.ID: ErinEmail, "ds-bob-linux-firefox": BobEmail, "ds-dave-pat": DaveEmail} {
		if owner[id] != want {
			t.Errorf("ListAll owner of %s = %q, want %q", id, owner[id], want)
		}
	}
}

func TestConcurrentRevokesAllLand(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "warden.db"))
	defer db.Close()
	// Two providers over one file, as two handlers racing: compare-and-swap
	// must retry so that no revocation is lost.
	p1 := newProvider(t, Config{Store: db, Now: fixedNow(seedTime)})
	p2 := newProvider(t, Config{Store: db, Now: fixedNow(seedTime)})
	bob, all := list(t, p1, BobEmail)
	var wg sync.WaitGroup
	errs := make(chan error, len(all))
	for i, s := range all {
		p := p1
		if i%2 == 1 {
			p = p2
		}
		wg.Go(func() { errs <- p.RevokeSession(t.Context(), bob, s.ID) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("RevokeSession: %v", err)
		}
	}
	if _, left := list(t, p1, BobEmail); len(left) != 0 {
		t.Errorf("after %d concurrent revokes, left: %v; want none", len(all), ids(left))
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{Latency: 300 * time.Millisecond})
		start := time.Now()
		if _, err := p.FindUser(t.Context(), AliceEmail); err != nil {
			t.Fatalf("FindUser: %v", err)
		}
		if took := time.Since(start); took != 300*time.Millisecond {
			t.Errorf("FindUser took %v, want the 300ms simulated latency", took)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err := p.FindUser(ctx, AliceEmail)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 100*time.Millisecond {
			t.Errorf("FindUser under a 100ms deadline = %v after %v, want DeadlineExceeded at 100ms", err, time.Since(start))
		}
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	store := newMemStore()
	if _, err := store.Put(t.Context(), storage.ProviderState, stateKey, 0, []byte(`{"v":2,"users":[]}`)); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, Config{Store: store})
	if _, err := p.FindUser(t.Context(), AliceEmail); !errors.Is(err, ErrSchema) {
		t.Errorf("FindUser over a v2 document = %v, want ErrSchema", err)
	}
}

func TestInventoryOverDemo(t *testing.T) {
	p := newProvider(t, Config{Now: fixedNow(seedTime)})
	inv, err := sessions.NewInventory(sessions.InventoryConfig{Providers: []sessions.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	res := inv.Lookup(t.Context(), DaveEmail)
	if len(res.Providers) != 1 {
		t.Fatalf("Lookup = %+v, want one provider", res)
	}
	pr := res.Providers[0]
	if pr.Err != nil || !pr.Found || len(pr.Sessions) != 3 || !pr.Caps.RevokeTokens {
		t.Errorf("Lookup(dave) = %+v, want 3 sessions and token revocation", pr)
	}
	if got := fmt.Sprint(ids(pr.Sessions)); got != "[ds-dave-win-chrome ds-dave-win-slack ds-dave-pat]" {
		t.Errorf("dave's sessions = %s, want most recent first", got)
	}
}

func TestNewRejectsNegativeLatency(t *testing.T) {
	if _, err := New(Config{Latency: -time.Second}); err == nil {
		t.Errorf("New(negative latency) succeeded, want an error")
	}
}
