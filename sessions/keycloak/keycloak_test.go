package keycloak

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
	"github.com/warden-sec/warden/sessions/httpclient/httpclienttest"
)

const (
	realm       = "acme"
	clientID    = "warden"
	secret      = "kc-secret-3b9f0c"
	accessToken = "kc-access-token-77aa"
)

// fake is a Keycloak realm speaking the Admin REST API's JSON.
type fake struct {
	mu           sync.Mutex
	tokenCalls   int
	calls        map[string]int   // "METHOD /path" → count
	queries      []string         // raw queries of session list calls
	script       map[string][]int // "METHOD /path" → statuses to answer first
	users        []map[string]any // UserRepresentation
	sessions     map[string][]kcSession
	consents     map[string][]kcConsent
	deleted      []string // session ids and "user/consent" deleted
	loggedOut    []string
	ignorePaging bool
	echoSecrets  bool // error bodies quote the credentials, as a hostile proxy might
}

func newFake() *fake {
	return &fake{
		calls:  map[string]int{},
		script: map[string][]int{},
		users: []map[string]any{
			{"id": "u-1", "username": "alice", "email": "alice@example.com", "firstName": "Alice", "lastName": "Liddell"},
			{"id": "u-2", "username": "malice", "email": "malice@example.com"},
		},
		sessions: map[string][]kcSession{
			"u-1": {
				{ID: "s-1", UserID: "u-1", IPAddress: "203.0.113.7", Start: 1717236000000, LastAccess: 1717239600000, Clients: map[string]string{"uuid-b": "wiki", "uuid-a": "account"}},
				{ID: "s-2", UserID: "u-1", IPAddress: "198.51.100.23", Start: 1717322400000, LastAccess: 1717322500000},
				{ID: "s-3", UserID: "u-1", IPAddress: "192.0.2.44", Start: 1717408800000, LastAccess: 1717408800000},
			},
			"u-2": {{ID: "s-other", UserID: "u-2"}},
		},
		consents: map[string][]kcConsent{
			"u-1": {
				{ClientID: "grafana", GrantedClientScopes: []string{"profile"}, CreatedDate: 1717000000000, LastUpdatedDate: 1717100000000},
				{ClientID: "cli", CreatedDate: 1717200000000},
			},
		},
	}
}

func (f *fake) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.calls[key]++

	if r.URL.Path == "/realms/"+realm+"/protocol/openid-connect/token" {
		f.tokenCalls++
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != clientID || r.PostForm.Get("client_secret") != secret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"unauthorized_client","error_description":"Invalid client credentials for ` + r.PostForm.Get("client_secret") + `"}`))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": accessToken, "token_type": "Bearer", "expires_in": 300})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "HTTP 401 Unauthorized"})
		return
	}
	if q := f.script[key]; len(q) > 0 {
		f.script[key] = q[1:]
		if q[0] == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		body := map[string]any{"error": "unknown_error"}
		if f.echoSecrets {
			// Both land where the shared layer looks for an error code.
			body["error"] = secret + " " + accessToken
			body["error_description"] = "secret " + secret + " token " + accessToken
		}
		writeJSON(w, q[0], body)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/realms/"+realm+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case r.Method == http.MethodGet && rest == "users":
		out := []map[string]any{}
		email := strings.ToLower(r.URL.Query().Get("email")) // Keycloak stores emails lowercased
		for _, u := range f.users {
			// Like Keycloak before exact=true existed: a substring match.
			if strings.Contains(u["email"].(string), email) {
				out = append(out, u)
			}
		}
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "users" && parts[2] == "sessions":
		f.queries = append(f.queries, r.URL.RawQuery)
		all := f.sessions[parts[1]]
		if f.ignorePaging {
			writeJSON(w, http.StatusOK, all)
			return
		}
		first, _ := strconv.Atoi(r.URL.Query().Get("first"))
		maxN, _ := strconv.Atoi(r.URL.Query().Get("max"))
		first = min(first, len(all))
		writeJSON(w, http.StatusOK, all[first:min(first+maxN, len(all))])
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "users" && parts[2] == "consents":
		writeJSON(w, http.StatusOK, append([]kcConsent{}, f.consents[parts[1]]...))
	case r.Method == http.MethodDelete && len(parts) == 4 && parts[0] == "users" && parts[2] == "consents":
		for i, c := range f.consents[parts[1]] {
			if c.ClientID == parts[3] {
				f.consents[parts[1]] = append(f.consents[parts[1]][:i:i], f.consents[parts[1]][i+1:]...)
				f.deleted = append(f.deleted, parts[1]+"/"+parts[3])
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Consent nor offline token not found"})
	case r.Method == http.MethodDelete && len(parts) == 2 && parts[0] == "sessions":
		for uid, ss := range f.sessions {
			for i, s := range ss {
				if s.ID == parts[1] {
					f.sessions[uid] = append(ss[:i:i], ss[i+1:]...)
					f.deleted = append(f.deleted, s.ID)
					w.WriteHeader(http.StatusNoContent)
					return
				}
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Sesssion not found"})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "users" && parts[2] == "logout":
		f.loggedOut = append(f.loggedOut, parts[1])
		delete(f.sessions, parts[1])
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serve starts f on a real socket and returns a Provider for it.
func serve(t *testing.T, f *fake, mod func(*Config)) *Provider {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := Config{URL: srv.URL, Realm: realm, ClientID: clientID, ClientSecret: secret, HTTP: srv.Client(), Rate: rate.Inf}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// inMemory returns a Provider reaching f without sockets, for synctest.
func inMemory(t *testing.T, f *fake) *Provider {
	t.Helper()
	p, err := New(Config{URL: "https://sso.example.test", Realm: realm, ClientID: clientID, ClientSecret: secret, HTTP: httpclienttest.Client(f), Rate: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var alice = sessions.User{Provider: Name, ID: "u-1", Email: "alice@example.com", Name: "Alice Liddell"}

func TestFindUser(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)

	got, err := p.FindUser(t.Context(), "Alice@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("FindUser (-want +got):\n%s", diff)
	}

	// "lice@example.com" is a substring of both users' emails: an old
	// Keycloak answers both, and neither is that person.
	for _, email := range []string{"nobody@example.com", "lice@example.com"} {
		if _, err := p.FindUser(t.Context(), email); !errors.Is(err, sessions.ErrNoAccount) {
			t.Errorf("FindUser(%q) = %v, want ErrNoAccount", email, err)
		}
	}
}

func TestListSessionsPagesAndMapsFields(t *testing.T) {
	f := newFake()
	p := serve(t, f, func(c *Config) { c.PageSize = 2 })

	got, err := p.ListSessions(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	want := []sessions.Session{
		{Provider: Name, ID: "s-1", Kind: sessions.KindSession, Created: time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC), LastActive: time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC), IP: "203.0.113.7", Client: "account, wiki", Active: true},
		{Provider: Name, ID: "s-2", Kind: sessions.KindSession, Created: time.UnixMilli(1717322400000).UTC(), LastActive: time.UnixMilli(1717322500000).UTC(), IP: "198.51.100.23", Active: true},
		{Provider: Name, ID: "s-3", Kind: sessions.KindSession, Created: time.UnixMilli(1717408800000).UTC(), LastActive: time.UnixMilli(1717408800000).UTC(), IP: "192.0.2.44", Active: true},
		{Provider: Name, ID: "consent:grafana", Kind: sessions.KindToken, Created: time.UnixMilli(1717000000000).UTC(), LastActive: time.UnixMilli(1717100000000).UTC(), Client: "grafana", Active: true},
		{Provider: Name, ID: "consent:cli", Kind: sessions.KindToken, Created: time.UnixMilli(1717200000000).UTC(), Client: "cli", Active: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSessions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"first=0&max=2", "first=2&max=2"}, f.queries); diff != "" {
		t.Errorf("page queries (-want +got):\n%s", diff)
	}
}

func TestListSessionsServerIgnoringPagingStops(t *testing.T) {
	f := newFake()
	f.ignorePaging = true
	p := serve(t, f, func(c *Config) { c.PageSize = 2 })

	got, err := p.ListSessions(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if n := countKind(got, sessions.KindSession); n != 3 {
		t.Errorf("got %d live sessions, want 3 (no duplicates)", n)
	}
	if n := f.count("GET /admin/realms/acme/users/u-1/sessions"); n != 2 {
		t.Errorf("session list calls = %d, want 2 (stop when a page brings nothing new)", n)
	}
}

func countKind(ss []sessions.Session, k sessions.Kind) int {
	n := 0
	for _, s := range ss {
		if s.Kind == k {
			n++
		}
	}
	return n
}

func TestThrottleIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.script["GET /admin/realms/acme/users/u-1/sessions"] = []int{http.StatusTooManyRequests}
		p := inMemory(t, f)

		start := time.Now()
		got, err := p.ListSessions(t.Context(), alice)
		if err != nil {
			t.Fatal(err)
		}
		if n := countKind(got, sessions.KindSession); n != 3 {
			t.Errorf("got %d live sessions after the throttle, want 3", n)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("retried after %v, want the 1 s Retry-After honoured", waited)
		}
		if n := f.count("GET /admin/realms/acme/users/u-1/sessions"); n != 2 {
			t.Errorf("session list calls = %d, want 2", n)
		}
	})
}

func TestServerErrorIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.script["POST /admin/realms/acme/users/u-1/logout"] = []int{http.StatusBadGateway, http.StatusServiceUnavailable}
		p := inMemory(t, f)

		if err := p.RevokeAll(t.Context(), alice); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"u-1"}, f.loggedOut); diff != "" {
			t.Errorf("logged out (-want +got):\n%s", diff)
		}
		if n := f.count("POST /admin/realms/acme/users/u-1/logout"); n != 3 {
			t.Errorf("logout calls = %d, want 3", n)
		}
	})
}

func TestRevokeSession(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)

	if err := p.RevokeSession(t.Context(), alice, "s-2"); err != nil {
		t.Fatal(err)
	}
	// Another user's session is not alice's to end: nothing is deleted.
	if err := p.RevokeSession(t.Context(), alice, "s-other"); err != nil {
		t.Fatal(err)
	}
	// Already gone: success, no DELETE.
	if err := p.RevokeSession(t.Context(), alice, "s-2"); err != nil {
		t.Errorf("revoking a gone session: %v, want nil", err)
	}
	if err := p.RevokeSession(t.Context(), alice, "consent:grafana"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"s-2", "u-1/grafana"}, f.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "..", "."} {
		if err := p.RevokeSession(t.Context(), alice, bad); err == nil {
			t.Errorf("RevokeSession(%q) = nil, want an error", bad)
		}
	}
	if n := f.count("DELETE /admin/realms/acme"); n != 0 {
		t.Errorf("a dot id reached the realm itself")
	}
}

func TestRevokeSessionRacing404IsSuccess(t *testing.T) {
	f := newFake()
	f.script["DELETE /admin/realms/acme/sessions/s-1"] = []int{http.StatusNotFound}
	p := serve(t, f, nil)

	if err := p.RevokeSession(t.Context(), alice, "s-1"); err != nil {
		t.Errorf("DELETE answered 404: %v, want nil", err)
	}
	if n := f.count("DELETE /admin/realms/acme/sessions/s-1"); n != 1 {
		t.Errorf("delete calls = %d, want 1 (404 is not retried)", n)
	}
}

func TestRevokeAllUnknownUserIsSuccess(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	gone := sessions.User{Provider: Name, ID: "u-gone"}
	f.script["POST /admin/realms/acme/users/u-gone/logout"] = []int{http.StatusNotFound}
	if err := p.RevokeAll(t.Context(), gone); err != nil {
		t.Errorf("RevokeAll of a deleted user: %v, want nil", err)
	}
}

func TestRevokeTokens(t *testing.T) {
	f := newFake()
	// "cli" vanishes between list and delete.
	f.script["DELETE /admin/realms/acme/users/u-1/consents/cli"] = []int{http.StatusNotFound}
	p := serve(t, f, nil)

	if err := p.RevokeTokens(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"u-1/grafana"}, f.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	got, err := p.ListSessions(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if n := countKind(got, sessions.KindToken); n != 1 {
		t.Errorf("tokens after revoke = %d, want 1 (the fake kept cli after its scripted 404)", n)
	}
}

func TestTokenFetchedOnceAndCached(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	ctx := t.Context()

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := p.FindUser(ctx, "alice@example.com"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := p.ListSessions(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := p.RevokeAll(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if f.tokenCalls != 1 {
		t.Errorf("token endpoint called %d times, want 1", f.tokenCalls)
	}
}

func TestRefusedTokenIsRefetched(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	// Keycloak restarted and no longer knows the token.
	f.script["GET /admin/realms/acme/users"] = []int{http.StatusUnauthorized}
	if _, err := p.FindUser(t.Context(), "alice@example.com"); !errors.Is(err, sessions.ErrUnauthorized) {
		t.Fatalf("FindUser after 401 = %v, want ErrUnauthorized", err)
	}
	if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if f.tokenCalls != 2 {
		t.Errorf("token endpoint called %d times, want 2 (refetch after 401)", f.tokenCalls)
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	t.Run("refused credentials", func(t *testing.T) {
		f := newFake()
		p := serve(t, f, func(c *Config) { c.ClientSecret = "wrong-" + secret })
		_, err := p.FindUser(t.Context(), "alice@example.com")
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		assertClean(t, err)
		if f.tokenCalls != 1 {
			t.Errorf("token endpoint called %d times, want 1 (refusal is not retried)", f.tokenCalls)
		}
	})
	t.Run("error body", func(t *testing.T) {
		f := newFake()
		f.echoSecrets = true
		f.script["GET /admin/realms/acme/users"] = []int{http.StatusBadRequest}
		p := serve(t, f, nil)
		_, err := p.FindUser(t.Context(), "alice@example.com")
		var se *httpclient.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
			t.Fatalf("err = %v, want a 400 StatusError", err)
		}
		assertClean(t, err)
	})
}

func assertClean(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{secret, accessToken} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a credential", err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{URL: "https://sso.example.com", Realm: "r", ClientID: "c", ClientSecret: secret}
	for name, mod := range map[string]func(*Config){
		"no url":      func(c *Config) { c.URL = "" },
		"relative":    func(c *Config) { c.URL = "sso.example.com" },
		"no realm":    func(c *Config) { c.Realm = "" },
		"no secret":   func(c *Config) { c.ClientSecret = "" },
		"no clientID": func(c *Config) { c.ClientID = "" },
	} {
		cfg := ok
		mod(&cfg)
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: New succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error names the secret", name)
		}
	}
	if _, err := New(ok); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestCapabilitiesAreHonest(t *testing.T) {
	p := serve(t, newFake(), nil)
	c := p.Capabilities()
	if !c.ListSessions || !c.RevokeOne || !c.RevokeAll || !c.RevokeTokens || c.ListSignIns {
		t.Errorf("capabilities = %+v", c)
	}
	if !strings.Contains(c.Leaves, "Offline") {
		t.Errorf("Leaves should warn that offline sessions survive: %q", c.Leaves)
	}
}
