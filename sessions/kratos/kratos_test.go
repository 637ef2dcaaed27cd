package kratos

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
)

const (
	alice  = "0b7f3f0e-6f7b-4c0e-9a51-0d3c6f4b1a01"
	bob    = "0b7f3f0e-6f7b-4c0e-9a51-0d3c6f4b1a02"
	nobody = "0b7f3f0e-6f7b-4c0e-9a51-0d3c6f4b1aff"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func sid(n int) string {
	return "5e55e55e-0000-4000-8000-" + strings.Repeat("0", 8) + twoDigits(n) + "00"
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

func dev(ip, ua, loc string) map[string]any {
	return map[string]any{"id": "d-" + ip, "ip_address": ip, "user_agent": ua, "location": loc}
}

func newProvider(t *testing.T, f *fakeKratos, cfg Config) *Provider {
	t.Helper()
	srv := f.start()
	cfg.AdminURL = srv.URL
	cfg.HTTP = srv.Client()
	cfg.Rate = 1000
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"zero":        {},
		"relative":    {AdminURL: "/admin"},
		"scheme":      {AdminURL: "ftp://kratos:4434"},
		"token crlf":  {AdminURL: "http://127.0.0.1:4434", Token: "a\r\nX-Evil: 1"},
		"negative ps": {AdminURL: "http://127.0.0.1:4434", PageSize: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	p, err := New(Config{AdminURL: "http://127.0.0.1:4434/"})
	if err != nil {
		t.Fatalf("New with only AdminURL: %v", err)
	}
	if p.Name() != "kratos" {
		t.Errorf("Name = %q", p.Name())
	}
	c := p.Capabilities()
	if !c.ListSessions || !c.RevokeOne || !c.RevokeAll || c.EffectWithin != 0 || c.ListSignIns || c.Ends == "" {
		t.Errorf("Capabilities = %+v, want list, revoke one and all, immediate", c)
	}
}

func TestFindUser(t *testing.T) {
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	f.addIdentity(bob, "bob@example.com")
	p := newProvider(t, f, Config{})

	u, err := p.FindUser(t.Context(), "Alice@Example.com")
	if err != nil {
		t.Fatalf("FindUser: %v", err)
	}
	want := sessions.User{Provider: "kratos", ID: alice, Email: "alice@example.com"}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("FindUser (-want +got):\n%s", diff)
	}

	if _, err := p.FindUser(t.Context(), "carol@example.com"); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("unknown email: err = %v, want ErrNoAccount", err)
	}

	before := f.count("GET /admin/identities")
	if _, err := p.FindUser(t.Context(), "  "); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("empty email: err = %v, want ErrNoAccount", err)
	}
	if got := f.count("GET /admin/identities"); got != before {
		t.Errorf("empty email sent a request (it would list every identity)")
	}
}

func TestFindUserIgnoredFilterIsNotGuessed(t *testing.T) {
	f := newFake(t)
	f.ignoreFilter = true
	f.addIdentity(alice, "alice@example.com")
	f.addIdentity(bob, "bob@example.com")
	p := newProvider(t, f, Config{})

	u, err := p.FindUser(t.Context(), "bob@example.com")
	if err != nil || u.ID != bob {
		t.Errorf("FindUser(bob) over an unfiltered answer = %+v, %v; want bob's identity", u, err)
	}
	if _, err := p.FindUser(t.Context(), "carol@example.com"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("FindUser(carol) over an unfiltered answer: err = %v, want ErrAmbiguous (never someone else)", err)
	}

	one := newFake(t)
	one.ignoreFilter = true
	one.addIdentity(alice, "alice@example.com")
	p1 := newProvider(t, one, Config{})
	if u, err := p1.FindUser(t.Context(), "carol@example.com"); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("FindUser(carol) when the only answer is alice = %+v, %v; want ErrNoAccount", u, err)
	}
}

func TestListSessionsPagesAndIgnoresLink(t *testing.T) {
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	f.addIdentity(bob, "bob@example.com")
	// Five sessions for alice (oldest first), one for bob in between.
	for i := 1; i <= 5; i++ {
		f.addSession(&fakeSession{ID: sid(i), IdentityID: alice, Active: true, At: t0.Add(time.Duration(i) * time.Hour),
			Devices: []map[string]any{dev("203.0.113."+twoDigits(i), "warden-cli/1.0", "")}})
		if i == 3 {
			f.addSession(&fakeSession{ID: sid(50), IdentityID: bob, Active: true, At: t0})
		}
	}
	p := newProvider(t, f, Config{PageSize: 2})

	got, err := p.ListSessions(t.Context(), sessions.User{Provider: "kratos", ID: alice})
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	want := []string{sid(5), sid(4), sid(3), sid(2), sid(1)}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("session ids, newest first (-want +got):\n%s", diff)
	}
	var pages []string
	for _, q := range f.queries {
		pages = append(pages, q.Get("per_page")+"/"+q.Get("page"))
	}
	if diff := cmp.Diff([]string{"2/1", "2/2", "2/3"}, pages); diff != "" {
		t.Errorf("per_page/page requested (-want +got):\n%s", diff)
	}
}

func TestListSessionsStopsAtTotalCount(t *testing.T) {
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	for i := 1; i <= 4; i++ {
		f.addSession(&fakeSession{ID: sid(i), IdentityID: alice, Active: true, At: t0})
	}
	p := newProvider(t, f, Config{PageSize: 2})
	got, err := p.ListSessions(t.Context(), sessions.User{ID: alice})
	if err != nil || len(got) != 4 {
		t.Fatalf("ListSessions = %d sessions, %v; want 4", len(got), err)
	}
	if n := f.count("GET /admin/identities/" + alice + "/sessions"); n != 2 {
		t.Errorf("requests = %d, want 2 (a full last page ends at X-Total-Count)", n)
	}
}

func TestListSessionsMapsDevices(t *testing.T) {
	const iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	f.addSession(&fakeSession{ID: sid(1), IdentityID: alice, Active: true, At: t0,
		Devices: []map[string]any{dev("127.0.0.1:48896", "Mozilla/5.0 (Macintosh) Firefox/128.0", "")}})
	f.addSession(&fakeSession{ID: sid(2), IdentityID: alice, Active: true, At: t0.Add(time.Hour),
		Devices: []map[string]any{dev("203.0.113.7", iphone, "Berlin, DE")}})
	f.addSession(&fakeSession{ID: sid(3), IdentityID: alice, Active: false, At: t0.Add(2 * time.Hour),
		Devices: []map[string]any{dev("[2001:db8::1]:443", "", "DE")}})
	f.addSession(&fakeSession{ID: sid(4), IdentityID: alice, Active: true, At: t0.Add(3 * time.Hour),
		Devices: []map[string]any{dev("not-an-ip", "curl/8.5.0", "Zürich")}})
	p := newProvider(t, f, Config{})

	got, err := p.ListSessions(t.Context(), sessions.User{ID: alice})
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	exp := func(at time.Time) time.Time { return at.Add(24 * time.Hour) }
	want := []sessions.Session{
		{Provider: "kratos", ID: sid(4), Kind: sessions.KindSession, Created: t0.Add(3 * time.Hour), Expires: exp(t0.Add(3 * time.Hour)),
			IP: "", UserAgent: "curl/8.5.0", Device: sessions.ParseUserAgent("curl/8.5.0"), Location: "Zürich", Active: true},
		{Provider: "kratos", ID: sid(3), Kind: sessions.KindSession, Created: t0.Add(2 * time.Hour), Expires: exp(t0.Add(2 * time.Hour)),
			IP: "2001:db8::1", Location: "DE", Country: "DE", Active: false},
		{Provider: "kratos", ID: sid(2), Kind: sessions.KindSession, Created: t0.Add(time.Hour), Expires: exp(t0.Add(time.Hour)),
			IP: "203.0.113.7", UserAgent: iphone, Device: sessions.ParseUserAgent(iphone), Location: "Berlin, DE", Country: "DE", Active: true},
		{Provider: "kratos", ID: sid(1), Kind: sessions.KindSession, Created: t0, Expires: exp(t0),
			IP: "127.0.0.1", UserAgent: "Mozilla/5.0 (Macintosh) Firefox/128.0", Device: sessions.ParseUserAgent("Mozilla/5.0 (Macintosh) Firefox/128.0"), Active: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSessions (-want +got):\n%s", diff)
	}
	if !got[2].Device.Mobile {
		t.Errorf("iPhone session not shown as mobile: %+v", got[2].Device)
	}
}

func TestListSessionsUnknownIdentityIsEmpty(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, f, Config{})
	got, err := p.ListSessions(t.Context(), sessions.User{ID: nobody})
	if err != nil || len(got) != 0 {
		t.Errorf("ListSessions(unknown) = %v, %v; want no sessions and no error", got, err)
	}
}

func TestInvalidIDsSendNothing(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, f, Config{})
	bad := sessions.User{ID: "../identities"}
	if _, err := p.ListSessions(t.Context(), bad); !errors.Is(err, ErrInvalidID) {
		t.Errorf("ListSessions(bad id): err = %v, want ErrInvalidID", err)
	}
	if err := p.RevokeAll(t.Context(), bad); !errors.Is(err, ErrInvalidID) {
		t.Errorf("RevokeAll(bad id): err = %v, want ErrInvalidID", err)
	}
	if err := p.RevokeSession(t.Context(), sessions.User{ID: alice}, "x/../../identities"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("RevokeSession(bad id): err = %v, want ErrInvalidID", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 0 {
		t.Errorf("requests sent for invalid ids: %v", f.calls)
	}
}

func TestRevokeSession(t *testing.T) {
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	f.addIdentity(bob, "bob@example.com")
	f.addSession(&fakeSession{ID: sid(1), IdentityID: alice, Active: true, At: t0})
	f.addSession(&fakeSession{ID: sid(2), IdentityID: alice, Active: true, At: t0.Add(time.Hour)})
	f.addSession(&fakeSession{ID: sid(9), IdentityID: bob, Active: true, At: t0})
	p := newProvider(t, f, Config{})
	a := sessions.User{Provider: "kratos", ID: alice}

	if err := p.RevokeSession(t.Context(), a, sid(1)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	got, err := p.ListSessions(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	active := map[string]bool{}
	for _, s := range got {
		active[s.ID] = s.Active
	}
	if diff := cmp.Diff(map[string]bool{sid(1): false, sid(2): true}, active); diff != "" {
		t.Errorf("after revoke, active by id (-want +got):\n%s", diff)
	}

	// Again: already inactive is success and sends no second DELETE.
	if err := p.RevokeSession(t.Context(), a, sid(1)); err != nil {
		t.Errorf("second RevokeSession: %v", err)
	}
	if n := f.count("DELETE /admin/sessions/" + sid(1)); n != 1 {
		t.Errorf("DELETE count = %d, want 1", n)
	}

	// Unknown session: 404 is success.
	if err := p.RevokeSession(t.Context(), a, sid(77)); err != nil {
		t.Errorf("RevokeSession(unknown) = %v, want nil", err)
	}

	// A session that disappears between the check and the DELETE.
	f.script("DELETE /admin/sessions/"+sid(2), http.StatusNotFound)
	if err := p.RevokeSession(t.Context(), a, sid(2)); err != nil {
		t.Errorf("RevokeSession with DELETE 404 = %v, want nil", err)
	}

	// Bob's session asked for under alice: refused, and bob stays signed in.
	if err := p.RevokeSession(t.Context(), a, sid(9)); !errors.Is(err, ErrOtherOwner) {
		t.Errorf("RevokeSession(bob's id as alice): err = %v, want ErrOtherOwner", err)
	}
	if n := f.count("DELETE /admin/sessions/" + sid(9)); n != 0 {
		t.Errorf("bob's session got %d DELETEs", n)
	}
}

func TestRevokeAll(t *testing.T) {
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	f.addIdentity(bob, "bob@example.com")
	f.addSession(&fakeSession{ID: sid(1), IdentityID: alice, Active: true, At: t0})
	f.addSession(&fakeSession{ID: sid(2), IdentityID: alice, Active: false, At: t0})
	f.addSession(&fakeSession{ID: sid(9), IdentityID: bob, Active: true, At: t0})
	p := newProvider(t, f, Config{})

	if err := p.RevokeAll(t.Context(), sessions.User{ID: alice}); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	if got, err := p.ListSessions(t.Context(), sessions.User{ID: alice}); err != nil || len(got) != 0 {
		t.Errorf("alice after RevokeAll = %v, %v; want none", got, err)
	}
	if got, err := p.ListSessions(t.Context(), sessions.User{ID: bob}); err != nil || len(got) != 1 || !got[0].Active {
		t.Errorf("bob after alice's RevokeAll = %+v, %v; want his one live session", got, err)
	}
	if err := p.RevokeAll(t.Context(), sessions.User{ID: nobody}); err != nil {
		t.Errorf("RevokeAll(unknown identity, 404) = %v, want nil", err)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.addIdentity(alice, "alice@example.com")
		f.addSession(&fakeSession{ID: sid(1), IdentityID: alice, Active: true, At: t0})
		f.script("GET /admin/identities/"+alice+"/sessions", http.StatusServiceUnavailable, http.StatusBadGateway)
		f.script("DELETE /admin/identities/"+alice+"/sessions", http.StatusInternalServerError)
		p, err := New(Config{AdminURL: "http://kratos.test", HTTP: &http.Client{Transport: handlerTransport{f}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.ListSessions(t.Context(), sessions.User{ID: alice})
		if err != nil || len(got) != 1 {
			t.Fatalf("ListSessions through two 5xx = %v, %v; want the session", got, err)
		}
		if n := f.count("GET /admin/identities/" + alice + "/sessions"); n != 3 {
			t.Errorf("list attempts = %d, want 3", n)
		}
		if err := p.RevokeAll(t.Context(), sessions.User{ID: alice}); err != nil {
			t.Fatalf("RevokeAll through a 500: %v", err)
		}
		if n := f.count("DELETE /admin/identities/" + alice + "/sessions"); n != 2 {
			t.Errorf("revoke-all attempts = %d, want 2", n)
		}
	})
}

func TestPersistentServerErrorIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.addIdentity(alice, "alice@example.com")
		f.script("DELETE /admin/identities/"+alice+"/sessions", 500, 500, 500, 500, 500, 500, 500, 500)
		p, err := New(Config{AdminURL: "http://kratos.test", HTTP: &http.Client{Transport: handlerTransport{f}}})
		if err != nil {
			t.Fatal(err)
		}
		err = p.RevokeAll(t.Context(), sessions.User{ID: alice})
		if se, ok := errors.AsType[*httpclient.StatusError](err); !ok || se.Status != 500 {
			t.Errorf("RevokeAll against a broken server: err = %v, want a 500 StatusError (never a silent success)", err)
		}
	})
}

func TestTokenSentAndNeverLeaked(t *testing.T) {
	const token = "ory_pat_SuperSecretValue123"
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	f.script("GET /admin/identities", http.StatusUnauthorized)
	f.script("DELETE /admin/identities/"+alice+"/sessions", http.StatusForbidden)
	p := newProvider(t, f, Config{Token: token})

	_, err := p.FindUser(t.Context(), "alice@example.com")
	if !errors.Is(err, sessions.ErrUnauthorized) {
		t.Errorf("FindUser on 401: err = %v, want ErrUnauthorized", err)
	}
	err2 := p.RevokeAll(t.Context(), sessions.User{ID: alice})
	if !errors.Is(err2, sessions.ErrUnauthorized) {
		t.Errorf("RevokeAll on 403: err = %v, want ErrUnauthorized", err2)
	}
	for _, e := range []error{err, err2} {
		if e != nil && strings.Contains(e.Error(), "SuperSecret") {
			t.Errorf("error leaks the token: %v", e)
		}
	}
	if n := f.count("GET /admin/identities"); n != 1 {
		t.Errorf("401 was retried: %d attempts", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.auth {
		if a != "Bearer "+token {
			t.Errorf("Authorization = %q, want the bearer token", a)
		}
	}
}

func TestListAll(t *testing.T) {
	f := newFake(t)
	f.addIdentity(alice, "alice@example.com")
	f.addIdentity(bob, "bob@example.com")
	f.addSession(&fakeSession{ID: sid(1), IdentityID: alice, Active: true, At: t0,
		Devices: []map[string]any{dev("198.51.100.1", "warden-cli/1.0", "Paris, FR")}})
	f.addSession(&fakeSession{ID: sid(2), IdentityID: bob, Active: true, At: t0})
	f.addSession(&fakeSession{ID: sid(3), IdentityID: alice, Active: false, At: t0})
	f.addSession(&fakeSession{ID: sid(4), IdentityID: bob, Active: true, At: t0})
	f.addSession(&fakeSession{ID: sid(5), IdentityID: alice, Active: true, At: t0})
	p := newProvider(t, f, Config{PageSize: 2})

	ss, us, err := p.ListAll(t.Context())
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	type pair struct{ Session, User, Email, IP, Country string }
	var got []pair
	for i := range ss {
		got = append(got, pair{ss[i].ID, us[i].ID, us[i].Email, ss[i].IP, ss[i].Country})
	}
	want := []pair{
		{sid(5), alice, "alice@example.com", "", ""},
		{sid(4), bob, "bob@example.com", "", ""},
		{sid(2), bob, "bob@example.com", "", ""},
		{sid(1), alice, "alice@example.com", "198.51.100.1", "FR"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListAll active sessions with owners (-want +got):\n%s", diff)
	}
	if n := f.count("GET /admin/sessions"); n != 2 {
		t.Errorf("org-wide pages fetched = %d, want 2 (page_token paging)", n)
	}
}
