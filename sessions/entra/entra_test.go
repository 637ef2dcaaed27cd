package entra

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient/httpclienttest"
)

const (
	tenant      = "contoso.onmicrosoft.com"
	clientID    = "11111111-2222-3333-4444-555555555555"
	secret      = "entra~secret.Zq8Q~abcdefgh"
	accessToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.graph-token"
	aliceID     = "aaaaaaaa-0000-0000-0000-000000000001"
)

// fake is the Microsoft identity platform's token endpoint plus Graph v1.0.
type fake struct {
	mu          sync.Mutex
	base        string // scheme://host of the fake, for @odata.nextLink
	tokenCalls  int
	tokenForm   url.Values
	calls       map[string]int
	queries     map[string][]string // path → raw queries
	script      map[string][]int    // "METHOD /path" → statuses to answer first
	signIns     []map[string]any
	pageSize    int
	devices     []map[string]any
	grants      []map[string]any
	revoked     []string
	deleted     []string
	revokeValue any
	echo        bool
}

func newFake() *fake {
	return &fake{
		calls:   map[string]int{},
		queries: map[string][]string{},
		script:  map[string][]int{},
		signIns: []map[string]any{
			{"id": "si-1", "createdDateTime": "2024-06-01T10:00:00Z", "userId": aliceID, "appDisplayName": "Office 365 Exchange Online", "appId": "00000002-0000-0ff1-ce00-000000000000",
				"ipAddress": "203.0.113.7", "clientAppUsed": "Browser", "isInteractive": true,
				"deviceDetail": map[string]any{"deviceId": "", "displayName": "", "operatingSystem": "Windows10", "browser": "Edge 125.0.0", "isCompliant": false, "isManaged": false, "trustType": ""},
				"location":     map[string]any{"city": "Berlin", "state": "Berlin", "countryOrRegion": "DE"},
				"status":       map[string]any{"errorCode": 0}},
			{"id": "si-2", "createdDateTime": "2024-05-31T09:00:00Z", "userId": aliceID, "appDisplayName": "Microsoft Teams",
				"ipAddress": "198.51.100.23", "clientAppUsed": "Mobile Apps and Desktop clients",
				"deviceDetail": map[string]any{"deviceId": "dev-1", "displayName": "Alice iPhone", "operatingSystem": "Ios", "browser": "", "isCompliant": true, "isManaged": true},
				"location":     map[string]any{"city": "", "countryOrRegion": "US"},
				"status":       map[string]any{"errorCode": 0}},
			{"id": "si-3", "createdDateTime": "2024-05-30T08:00:00Z", "userId": aliceID, "appDisplayName": "Azure Portal",
				"ipAddress": "192.0.2.66", "clientAppUsed": "Browser",
				"status": map[string]any{"errorCode": 50126, "failureReason": "Invalid username or password"}},
			{"id": "si-4", "createdDateTime": "2024-05-29T07:00:00Z", "userId": aliceID, "appDisplayName": "",
				"appId": "app-guid", "ipAddress": "2001:db8::1", "clientAppUsed": "Browser",
				"deviceDetail": map[string]any{"operatingSystem": "MacOs", "browser": "Safari 17.5"},
				"status":       map[string]any{"errorCode": 0}},
		},
		pageSize: 2,
		devices: []map[string]any{
			{"@odata.type": "#microsoft.graph.device", "id": "d-obj-1", "deviceId": "dev-1", "displayName": "Alice iPhone", "operatingSystem": "iOS", "operatingSystemVersion": "17.5",
				"approximateLastSignInDateTime": "2024-06-01T09:59:00Z", "registrationDateTime": "2024-01-02T03:04:05Z", "isManaged": true, "isCompliant": true, "accountEnabled": true},
			{"@odata.type": "#microsoft.graph.device", "id": "d-obj-2", "displayName": "OLD-LAPTOP", "operatingSystem": "Windows", "operatingSystemVersion": "10.0.19045",
				"registrationDateTime": "2022-01-02T03:04:05Z", "isManaged": nil, "accountEnabled": false},
		},
		grants: []map[string]any{
			{"id": "g-1", "clientId": "sp-zoom", "consentType": "Principal", "principalId": aliceID, "resourceId": "sp-graph", "scope": "User.Read Mail.Read"},
			{"id": "g-2", "clientId": "sp-miro", "consentType": "Principal", "principalId": aliceID, "resourceId": "sp-graph", "scope": "User.Read"},
		},
		revokeValue: true,
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
	if r.URL.Path == "/"+tenant+"/oauth2/v2.0/token" {
		f.tokenCalls++
		_ = r.ParseForm()
		f.tokenForm = r.PostForm
		if r.PostForm.Get("client_secret") != secret || r.PostForm.Get("client_id") != clientID {
			writeJSON(w, http.StatusUnauthorized, map[string]any{
				"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided: " + r.PostForm.Get("client_secret"),
			})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": accessToken})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		writeJSON(w, http.StatusUnauthorized, graphError("InvalidAuthenticationToken"))
		return
	}
	if q := f.script[key]; len(q) > 0 {
		f.script[key] = q[1:]
		if q[0] == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		code := "generalException"
		if f.echo {
			code = secret + " " + accessToken
		}
		writeJSON(w, q[0], graphError(code))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1.0/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.queries[rest] = append(f.queries[rest], r.URL.RawQuery)
	parts := strings.Split(rest, "/")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && rest == "users":
		var out []map[string]any
		if q.Get("$filter") == "mail eq 'alice@contoso.com'" {
			out = append(out, alice())
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "users":
		if parts[1] == "alice@contoso.onmicrosoft.com" || parts[1] == aliceID {
			writeJSON(w, http.StatusOK, alice())
			return
		}
		writeJSON(w, http.StatusNotFound, graphError("Request_ResourceNotFound"))
	case r.Method == http.MethodGet && len(parts) == 3 && parts[2] == "manager":
		if parts[1] == aliceID {
			writeJSON(w, http.StatusOK, map[string]any{"@odata.type": "#microsoft.graph.user", "mail": "queen@contoso.com", "userPrincipalName": "queen@contoso.onmicrosoft.com"})
			return
		}
		writeJSON(w, http.StatusNotFound, graphError("Request_ResourceNotFound"))
	case r.Method == http.MethodGet && rest == "auditLogs/signIns":
		if q.Get("$filter") != "userId eq '"+aliceID+"'" {
			writeJSON(w, http.StatusOK, map[string]any{"value": []any{}})
			return
		}
		from, _ := strconv.Atoi(q.Get("$skiptoken"))
		to := min(from+f.pageSize, len(f.signIns))
		out := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": f.signIns[from:to]}
		if to < len(f.signIns) {
			out["@odata.nextLink"] = f.base + "/v1.0/auditLogs/signIns?$filter=" + strings.ReplaceAll(q.Get("$filter"), " ", "%20") + "&$top=" + q.Get("$top") + "&$skiptoken=" + strconv.Itoa(to)
		}
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[2] == "registeredDevices":
		writeJSON(w, http.StatusOK, map[string]any{"value": f.devices})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[2] == "oauth2PermissionGrants":
		writeJSON(w, http.StatusOK, map[string]any{"value": f.grants})
	case r.Method == http.MethodDelete && len(parts) == 2 && parts[0] == "oauth2PermissionGrants":
		for i, g := range f.grants {
			if g["id"] == parts[1] {
				f.grants = append(f.grants[:i:i], f.grants[i+1:]...)
				f.deleted = append(f.deleted, parts[1])
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, graphError("Request_ResourceNotFound"))
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "revokeSignInSessions":
		f.revoked = append(f.revoked, parts[1])
		if f.revokeValue == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": f.revokeValue})
	default:
		http.NotFound(w, r)
	}
}

func alice() map[string]any {
	return map[string]any{"id": aliceID, "displayName": "Alice Liddell", "mail": "alice@contoso.com", "userPrincipalName": "alice@contoso.onmicrosoft.com"}
}

func graphError(code string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": "something went wrong", "innerError": map[string]any{"request-id": "r-1"}}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func serve(t *testing.T, f *fake, mod func(*Config)) *Provider {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.base = srv.URL
	cfg := Config{
		GraphURL: srv.URL + "/v1.0", TokenURL: srv.URL + "/" + tenant + "/oauth2/v2.0/token",
		ClientID: clientID, ClientSecret: secret, HTTP: srv.Client(), Rate: rate.Inf, SignInRate: rate.Inf, SignInTop: 2,
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// inMemory reaches f without sockets, for synctest; the token URL is the
// default one with the tenant filled in.
func inMemory(t *testing.T, f *fake, mod func(*Config)) *Provider {
	t.Helper()
	f.base = "https://graph.microsoft.com"
	cfg := Config{TenantID: tenant, ClientID: clientID, ClientSecret: secret, HTTP: httpclienttest.Client(f), SignInTop: 2}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var aliceUser = sessions.User{Provider: Name, ID: aliceID, Email: "alice@contoso.com", Name: "Alice Liddell", ManagerEmail: "queen@contoso.com"}

func TestFindUser(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	// By UPN, then (not a UPN) by mail.
	for _, email := range []string{"alice@contoso.onmicrosoft.com", "alice@contoso.com"} {
		got, err := p.FindUser(t.Context(), email)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(aliceUser, got); diff != "" {
			t.Errorf("FindUser(%q) (-want +got):\n%s", email, diff)
		}
	}
	if _, err := p.FindUser(t.Context(), "nobody@contoso.com"); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("FindUser(nobody) = %v, want ErrNoAccount", err)
	}
	if diff := cmp.Diff([]string{"%24filter=mail+eq+%27alice%40contoso.com%27&%24select=id%2CdisplayName%2Cmail%2CuserPrincipalName&%24top=2",
		"%24filter=mail+eq+%27nobody%40contoso.com%27&%24select=id%2CdisplayName%2Cmail%2CuserPrincipalName&%24top=2"}, f.queries["users"]); diff != "" {
		t.Errorf("mail filter queries (-want +got):\n%s", diff)
	}
}

func TestFindUserWithoutManager(t *testing.T) {
	f := newFake()
	f.script["GET /v1.0/users/"+aliceID+"/manager"] = []int{http.StatusNotFound}
	p := serve(t, f, nil)
	got, err := p.FindUser(t.Context(), "alice@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.ManagerEmail != "" || got.ID != aliceID {
		t.Errorf("got %+v, want alice with no manager", got)
	}
}

func TestFindUserQuotesApostrophes(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	if _, err := p.FindUser(t.Context(), "o'brien@contoso.com"); !errors.Is(err, sessions.ErrNoAccount) {
		t.Fatalf("err = %v, want ErrNoAccount", err)
	}
	qs := f.queries["users"]
	if len(qs) != 1 || !strings.Contains(qs[0], "%27o%27%27brien%40contoso.com%27") {
		t.Errorf("filter queries = %v, want the apostrophe doubled", qs)
	}
}

func TestListSessionsFollowsNextLinkAndMaps(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	got, err := p.ListSessions(t.Context(), aliceUser)
	if err != nil {
		t.Fatal(err)
	}
	want := []sessions.Session{
		{Provider: Name, ID: "si-1", Kind: sessions.KindSignIn, Created: time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC), IP: "203.0.113.7",
			Device: sessions.Device{OS: "Windows10", Browser: "Edge 125.0.0"}, Location: "Berlin, DE", Country: "DE", Managed: sessions.ManagedNo, Client: "Office 365 Exchange Online", Active: true},
		{Provider: Name, ID: "si-2", Kind: sessions.KindSignIn, Created: time.Date(2024, 5, 31, 9, 0, 0, 0, time.UTC), IP: "198.51.100.23",
			Device: sessions.Device{OS: "Ios", Client: "Mobile Apps and Desktop clients", Mobile: true}, Location: "US", Country: "US", Managed: sessions.ManagedYes, Client: "Microsoft Teams", Active: true},
		// si-3 failed: it is not a place Alice is signed in.
		{Provider: Name, ID: "si-4", Kind: sessions.KindSignIn, Created: time.Date(2024, 5, 29, 7, 0, 0, 0, time.UTC), IP: "2001:db8::1",
			Device: sessions.Device{OS: "MacOs", Browser: "Safari 17.5"}, Managed: sessions.ManagedNo, Client: "app-guid", Active: true},
		{Provider: Name, ID: "device:d-obj-1", Kind: sessions.KindDevice, Created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), LastActive: time.Date(2024, 6, 1, 9, 59, 0, 0, time.UTC),
			Device: sessions.Device{OS: "iOS 17.5", Client: "Alice iPhone", Mobile: true}, Managed: sessions.ManagedYes, Active: true},
		{Provider: Name, ID: "device:d-obj-2", Kind: sessions.KindDevice, Created: time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC),
			Device: sessions.Device{OS: "Windows 10.0.19045", Client: "OLD-LAPTOP"}, Active: false},
		{Provider: Name, ID: "grant:g-1", Kind: sessions.KindToken, Client: "sp-zoom", Active: true},
		{Provider: Name, ID: "grant:g-2", Kind: sessions.KindToken, Client: "sp-miro", Active: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSessions (-want +got):\n%s", diff)
	}
	if n := f.count("GET /v1.0/auditLogs/signIns"); n != 2 {
		t.Errorf("sign-in pages read = %d, want 2", n)
	}
}

func TestSignInPagesAreBounded(t *testing.T) {
	f := newFake()
	f.pageSize = 1
	p := serve(t, f, func(c *Config) { c.SignInPages = 2 })
	got, err := p.ListSessions(t.Context(), aliceUser)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count("GET /v1.0/auditLogs/signIns"); n != 2 {
		t.Errorf("sign-in pages read = %d, want 2 (the bound)", n)
	}
	var ids []string
	for _, s := range got {
		if s.Kind == sessions.KindSignIn {
			ids = append(ids, s.ID)
		}
	}
	if diff := cmp.Diff([]string{"si-1", "si-2"}, ids); diff != "" {
		t.Errorf("sign-ins (-want +got):\n%s", diff)
	}
}

func TestNextLinkToAnotherHostIsRefused(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	f.base = "https://evil.example" // the fake now points nextLink elsewhere
	_, err := p.ListSessions(t.Context(), aliceUser)
	if err == nil {
		t.Fatal("followed a nextLink to another host")
	}
}

func TestDevicesRefusedAreSkipped(t *testing.T) {
	f := newFake()
	f.script["GET /v1.0/users/"+aliceID+"/registeredDevices"] = []int{http.StatusForbidden}
	p := serve(t, f, nil)
	got, err := p.ListSessions(t.Context(), aliceUser)
	if err != nil {
		t.Fatalf("a refused device listing failed the whole list: %v", err)
	}
	for _, s := range got {
		if s.Kind == sessions.KindDevice {
			t.Errorf("device %s listed although Graph refused", s.ID)
		}
	}
}

func TestThrottleIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.script["POST /v1.0/users/"+aliceID+"/revokeSignInSessions"] = []int{http.StatusTooManyRequests}
		p := inMemory(t, f, nil)
		start := time.Now()
		if err := p.RevokeAll(t.Context(), aliceUser); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("retried after %v, want Retry-After honoured", waited)
		}
		if diff := cmp.Diff([]string{aliceID}, f.revoked); diff != "" {
			t.Errorf("revoked (-want +got):\n%s", diff)
		}
		if got := f.tokenForm.Get("scope"); got != "https://graph.microsoft.com/.default" {
			t.Errorf("token scope = %q", got)
		}
	})
}

func TestSignInsArePacedForReportsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.pageSize = 1
		for i := range 6 { // 10 sign-ins, one a page
			f.signIns = append(f.signIns, map[string]any{"id": fmt.Sprintf("extra-%d", i), "userId": aliceID, "status": map[string]any{"errorCode": 0}})
		}
		p := inMemory(t, f, func(c *Config) { c.SignInPages = 10 })
		start := time.Now()
		if _, err := p.ListSessions(t.Context(), aliceUser); err != nil {
			t.Fatal(err)
		}
		// 10 requests at 5 per 10 s: the burst of 5, then one every 2 s.
		if took := time.Since(start); took < 10*time.Second {
			t.Errorf("10 sign-in pages took %v, want ≥ 10 s to stay under 5 per 10 s", took)
		}
	})
}

func TestServerErrorIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.script["GET /v1.0/auditLogs/signIns"] = []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout}
		p := inMemory(t, f, func(c *Config) { c.SignInRate = rate.Inf })
		got, err := p.ListSessions(t.Context(), aliceUser)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Error("nothing listed after the retries")
		}
	})
}

func TestRevokeAll(t *testing.T) {
	t.Run("v1.0 value true", func(t *testing.T) {
		f := newFake()
		p := serve(t, f, nil)
		if err := p.RevokeAll(t.Context(), aliceUser); err != nil {
			t.Fatal(err)
		}
		if len(f.revoked) != 1 {
			t.Errorf("revoked %v", f.revoked)
		}
	})
	t.Run("beta 204", func(t *testing.T) {
		f := newFake()
		f.revokeValue = nil
		if err := serve(t, f, nil).RevokeAll(t.Context(), aliceUser); err != nil {
			t.Errorf("204: %v, want nil", err)
		}
	})
	t.Run("value false", func(t *testing.T) {
		f := newFake()
		f.revokeValue = false
		if err := serve(t, f, nil).RevokeAll(t.Context(), aliceUser); err == nil {
			t.Error("value false reported as success")
		}
	})
	t.Run("user gone", func(t *testing.T) {
		f := newFake()
		f.script["POST /v1.0/users/"+aliceID+"/revokeSignInSessions"] = []int{http.StatusNotFound}
		if err := serve(t, f, nil).RevokeAll(t.Context(), aliceUser); err != nil {
			t.Errorf("404: %v, want nil", err)
		}
	})
}

func TestRevokeTokens(t *testing.T) {
	f := newFake()
	f.script["DELETE /v1.0/oauth2PermissionGrants/g-1"] = []int{http.StatusNotFound}
	p := serve(t, f, nil)
	if err := p.RevokeTokens(t.Context(), aliceUser); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"g-2"}, f.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
}

func TestRevokeSessionIsNotSupported(t *testing.T) {
	p := serve(t, newFake(), nil)
	if err := p.RevokeSession(t.Context(), aliceUser, "si-1"); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("RevokeSession = %v, want ErrNotSupported", err)
	}
	c := p.Capabilities()
	if c.RevokeOne || c.ListSessions || !c.ListSignIns || !c.RevokeAll || c.EffectWithin != 5*time.Minute || !strings.Contains(c.Ends, "within minutes") {
		t.Errorf("capabilities = %+v", c)
	}
}

func TestTokenFetchedOnceAndCached(t *testing.T) {
	f := newFake()
	p := serve(t, f, nil)
	if _, err := p.FindUser(t.Context(), "alice@contoso.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListSessions(t.Context(), aliceUser); err != nil {
		t.Fatal(err)
	}
	if err := p.RevokeAll(t.Context(), aliceUser); err != nil {
		t.Fatal(err)
	}
	if f.tokenCalls != 1 {
		t.Errorf("token endpoint called %d times, want 1", f.tokenCalls)
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	assertClean := func(t *testing.T, err error) {
		t.Helper()
		for _, s := range []string{secret, accessToken} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q quotes a credential", err)
			}
		}
	}
	t.Run("refused secret", func(t *testing.T) {
		f := newFake()
		p := serve(t, f, func(c *Config) { c.ClientSecret = secret + "-old" })
		_, err := p.FindUser(t.Context(), "alice@contoso.com")
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		assertClean(t, err)
		if strings.Contains(err.Error(), secret+"-old") {
			t.Errorf("error %q quotes the configured secret", err)
		}
	})
	t.Run("error body", func(t *testing.T) {
		f := newFake()
		f.echo = true
		f.script["POST /v1.0/users/"+aliceID+"/revokeSignInSessions"] = []int{http.StatusBadRequest}
		err := serve(t, f, nil).RevokeAll(t.Context(), aliceUser)
		if err == nil {
			t.Fatal("want an error")
		}
		assertClean(t, err)
	})
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no secret": {TenantID: tenant, ClientID: clientID},
		"no tenant": {ClientID: clientID, ClientSecret: secret},
		"bad graph": {TenantID: tenant, ClientID: clientID, ClientSecret: secret, GraphURL: "graph.microsoft.com"},
		"top 5000":  {TenantID: tenant, ClientID: clientID, ClientSecret: secret, SignInTop: 5000},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: New succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error quotes the secret", name)
		}
	}
}
