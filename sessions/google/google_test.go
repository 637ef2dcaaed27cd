package google

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	adminEmail  = "admin@example.com"
	saEmail     = "warden@acme-prod.iam.gserviceaccount.com"
	keyID       = "kid-0123456789abcdef"
	accessToken = "ya29.fake-access-token-42"
)

// testKey is the fake service account's RSA key, made once per test binary.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func keyPEM() string {
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func credentialsJSON() []byte {
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "acme-prod",
		"private_key_id": keyID,
		"private_key":    keyPEM(),
		"client_email":   saEmail,
		"client_id":      "1234567890",
		"token_uri":      "https://oauth2.googleapis.com/token",
	})
	return b
}

// plainForbidden scripts a 403 that is not a quota signal.
const plainForbidden = 1403

// fake is Google's token endpoint plus the Directory API.
type fake struct {
	t            *testing.T
	mu           sync.Mutex
	tokenCalls   int
	claims       map[string]any // of the last assertion
	calls        map[string]int
	script       map[string][]int // "METHOD /path" → statuses to answer first
	users        map[string]map[string]any
	tokens       []map[string]any
	asps         []map[string]any
	devices      []map[string]any
	devQueries   []string
	deleted      []string
	signedOut    []string
	refuseTokens bool
	echo         bool // error answers quote credentials
}

func newFake(t *testing.T) *fake {
	alice := map[string]any{
		"id": "1001", "primaryEmail": "alice@example.com",
		"name":      map[string]any{"fullName": "Alice Liddell"},
		"relations": []map[string]any{{"type": "spouse", "value": "bob@example.com"}, {"type": "manager", "value": "queen@example.com"}},
	}
	return &fake{
		t:      t,
		calls:  map[string]int{},
		script: map[string][]int{},
		users:  map[string]map[string]any{"alice@example.com": alice, "alice@alias.example.com": alice, "1001": alice},
		tokens: []map[string]any{
			{"kind": "admin#directory#token", "clientId": "123.apps.googleusercontent.com", "displayText": "Zoom", "scopes": []string{"openid", "email"}, "nativeApp": false, "anonymous": false, "userKey": "1001"},
			{"kind": "admin#directory#token", "clientId": "456.apps.googleusercontent.com", "displayText": "", "scopes": []string{"https://mail.google.com/"}, "userKey": "1001"},
		},
		asps: []map[string]any{
			{"kind": "admin#directory#asp", "codeId": 17, "name": "Thunderbird", "creationTime": "1717236000000", "lastTimeUsed": "1717239600000", "userKey": "1001"},
			{"kind": "admin#directory#asp", "codeId": 18, "name": "old printer", "creationTime": "1717000000000", "lastTimeUsed": "0", "userKey": "1001"},
		},
		devices: []map[string]any{
			{"resourceId": "res-a", "deviceId": "d-a", "email": []string{"alice@example.com"}, "model": "Pixel 8", "os": "Android 14", "type": "ANDROID", "status": "APPROVED", "firstSync": "2024-05-01T08:00:00.000Z", "lastSync": "2024-06-01T09:30:00.000Z"},
			{"resourceId": "res-b", "deviceId": "d-b", "email": []string{"alice@example.com"}, "model": "iPhone", "os": "iOS 17.5", "type": "IOS_SYNC", "status": "BLOCKED", "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)", "firstSync": "2024-04-01T08:00:00Z", "lastSync": "2024-04-02T08:00:00Z"},
			{"resourceId": "res-c", "deviceId": "d-c", "email": []string{"alice@example.com"}, "model": "", "os": "", "type": "GOOGLE_SYNC", "status": "APPROVED"},
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
	if r.URL.Path == "/token" {
		f.serveToken(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		writeJSON(w, http.StatusUnauthorized, gError(401, "authError"))
		return
	}
	if q := f.script[key]; len(q) > 0 {
		f.script[key] = q[1:]
		switch {
		case q[0] == http.StatusForbidden:
			writeJSON(w, http.StatusForbidden, gError(403, "userRateLimitExceeded"))
		case q[0] == plainForbidden:
			writeJSON(w, http.StatusForbidden, gError(403, "forbidden"))
		case f.echo:
			writeJSON(w, q[0], gError(q[0], keyID+" "+accessToken))
		default:
			writeJSON(w, q[0], gError(q[0], "backendError"))
		}
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/directory/v1/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "users":
		u, ok := f.users[parts[1]]
		if !ok {
			writeJSON(w, http.StatusNotFound, gError(404, "notFound"))
			return
		}
		writeJSON(w, http.StatusOK, u)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "users" && parts[2] == "tokens":
		writeJSON(w, http.StatusOK, map[string]any{"kind": "admin#directory#tokenList", "items": f.tokens})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "users" && parts[2] == "asps":
		writeJSON(w, http.StatusOK, map[string]any{"kind": "admin#directory#asps", "items": f.asps})
	case r.Method == http.MethodDelete && len(parts) == 4 && parts[0] == "users" && parts[2] == "tokens":
		f.delete(w, &f.tokens, "clientId", parts[3], "token/")
	case r.Method == http.MethodDelete && len(parts) == 4 && parts[0] == "users" && parts[2] == "asps":
		f.delete(w, &f.asps, "codeId", parts[3], "asp/")
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "users" && parts[2] == "signOut":
		f.signedOut = append(f.signedOut, parts[1])
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && rest == "customer/my_customer/devices/mobile":
		f.devQueries = append(f.devQueries, r.URL.RawQuery)
		if r.URL.Query().Get("query") != "email:alice@example.com" {
			writeJSON(w, http.StatusOK, map[string]any{"kind": "admin#directory#mobiledevices"})
			return
		}
		from, _ := strconv.Atoi(r.URL.Query().Get("pageToken"))
		to := min(from+2, len(f.devices))
		out := map[string]any{"kind": "admin#directory#mobiledevices", "mobiledevices": f.devices[from:to]}
		if to < len(f.devices) {
			out["nextPageToken"] = strconv.Itoa(to)
		}
		writeJSON(w, http.StatusOK, out)
	default:
		http.NotFound(w, r)
	}
}

func (f *fake) delete(w http.ResponseWriter, list *[]map[string]any, field, id, tag string) {
	for i, it := range *list {
		if toString(it[field]) == id {
			*list = append((*list)[:i:i], (*list)[i+1:]...)
			f.deleted = append(f.deleted, tag+id)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, gError(404, "notFound"))
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	}
	return ""
}

// serveToken checks the JWT bearer assertion as Google would: signature,
// issuer, subject and scopes.
func (f *fake) serveToken(w http.ResponseWriter, r *http.Request) {
	f.tokenCalls++
	_ = r.ParseForm()
	refuse := func() {
		desc := "Invalid grant"
		if f.echo {
			desc = keyPEM()
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": desc})
	}
	if f.refuseTokens || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		refuse()
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		refuse()
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		refuse()
		return
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&testKey().PublicKey, crypto.SHA256, sum[:], sig) != nil {
		refuse()
		return
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		refuse()
		return
	}
	f.claims = claims
	writeJSON(w, http.StatusOK, map[string]any{"access_token": accessToken, "token_type": "Bearer", "expires_in": 3599})
}

func gError(code int, reason string) map[string]any {
	return map[string]any{"error": map[string]any{
		"code": code, "message": "something " + reason,
		"errors": []map[string]any{{"message": "something", "domain": "global", "reason": reason}},
	}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func serve(t *testing.T, f *fake) *Provider {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	p, err := New(Config{BaseURL: srv.URL, TokenURL: srv.URL + "/token", CredentialsJSON: credentialsJSON(), AdminEmail: adminEmail, HTTP: srv.Client(), Rate: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func inMemory(t *testing.T, f *fake) *Provider {
	t.Helper()
	p, err := New(Config{TokenURL: "https://oauth2.example.test/token", CredentialsJSON: credentialsJSON(), AdminEmail: adminEmail, HTTP: httpclienttest.Client(f), Rate: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var alice = sessions.User{Provider: Name, ID: "1001", Email: "alice@example.com", Name: "Alice Liddell", ManagerEmail: "queen@example.com"}

func TestFindUser(t *testing.T) {
	f := newFake(t)
	p := serve(t, f)

	for _, email := range []string{"alice@example.com", "alice@alias.example.com"} {
		got, err := p.FindUser(t.Context(), email)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(alice, got); diff != "" {
			t.Errorf("FindUser(%q) (-want +got):\n%s", email, diff)
		}
	}
	if _, err := p.FindUser(t.Context(), "nobody@example.com"); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("FindUser(nobody) = %v, want ErrNoAccount", err)
	}
}

func TestTokenImpersonatesAdminWithScopes(t *testing.T) {
	f := newFake(t)
	p := serve(t, f)
	if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if f.claims["sub"] != adminEmail || f.claims["iss"] != saEmail {
		t.Errorf("assertion sub=%v iss=%v, want sub=%s iss=%s", f.claims["sub"], f.claims["iss"], adminEmail, saEmail)
	}
	scopes := strings.Fields(toString(f.claims["scope"]))
	if diff := cmp.Diff([]string{ScopeUserSecurity, ScopeUserReadonly, ScopeMobileReadony}, scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
}

func TestListSessionsMapsTokensPasswordsAndPagedDevices(t *testing.T) {
	f := newFake(t)
	p := serve(t, f)
	got, err := p.ListSessions(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	iphone := sessions.ParseUserAgent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)")
	iphone.OS, iphone.Client, iphone.Mobile = "iOS 17.5", "iPhone", true
	want := []sessions.Session{
		{Provider: Name, ID: "token:123.apps.googleusercontent.com", Kind: sessions.KindToken, Client: "Zoom", Active: true},
		{Provider: Name, ID: "token:456.apps.googleusercontent.com", Kind: sessions.KindToken, Client: "456.apps.googleusercontent.com", Active: true},
		{Provider: Name, ID: "asp:17", Kind: sessions.KindToken, Created: time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC), LastActive: time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC), Client: "Thunderbird", Active: true},
		{Provider: Name, ID: "asp:18", Kind: sessions.KindToken, Created: time.UnixMilli(1717000000000).UTC(), Client: "old printer", Active: true},
		{Provider: Name, ID: "device:res-a", Kind: sessions.KindDevice, Created: time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC), LastActive: time.Date(2024, 6, 1, 9, 30, 0, 0, time.UTC), Device: sessions.Device{OS: "Android 14", Client: "Pixel 8", Mobile: true}, Managed: sessions.ManagedYes, Active: true},
		{Provider: Name, ID: "device:res-b", Kind: sessions.KindDevice, Created: time.Date(2024, 4, 1, 8, 0, 0, 0, time.UTC), LastActive: time.Date(2024, 4, 2, 8, 0, 0, 0, time.UTC), UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)", Device: iphone, Managed: sessions.ManagedYes, Active: false},
		{Provider: Name, ID: "device:res-c", Kind: sessions.KindDevice, Device: sessions.Device{Mobile: true}, Managed: sessions.ManagedYes, Active: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSessions (-want +got):\n%s", diff)
	}
	wantQ := []string{
		"maxResults=100&projection=BASIC&query=email%3Aalice%40example.com",
		"maxResults=100&pageToken=2&projection=BASIC&query=email%3Aalice%40example.com",
	}
	if diff := cmp.Diff(wantQ, f.devQueries); diff != "" {
		t.Errorf("device page queries (-want +got):\n%s", diff)
	}
}

func TestQuotaThrottleIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.script["POST /admin/directory/v1/users/1001/signOut"] = []int{http.StatusForbidden, http.StatusForbidden}
		p := inMemory(t, f)
		if err := p.RevokeAll(t.Context(), alice); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"1001"}, f.signedOut); diff != "" {
			t.Errorf("signed out (-want +got):\n%s", diff)
		}
		if n := f.count("POST /admin/directory/v1/users/1001/signOut"); n != 3 {
			t.Errorf("signOut calls = %d, want 3", n)
		}
	})
}

func TestPlainForbiddenIsNotRetried(t *testing.T) {
	f := newFake(t)
	f.script["GET /admin/directory/v1/users/1001/tokens"] = []int{plainForbidden}
	p := serve(t, f)
	_, err := p.ListSessions(t.Context(), alice)
	var se *httpclient.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusForbidden || !errors.Is(err, sessions.ErrUnauthorized) {
		t.Fatalf("err = %v, want a 403 meaning ErrUnauthorized", err)
	}
	if errors.Is(err, httpclient.ErrThrottled) {
		t.Errorf("a plain 403 was taken for a quota signal")
	}
	if n := f.count("GET /admin/directory/v1/users/1001/tokens"); n != 1 {
		t.Errorf("calls = %d, want 1 (a plain 403 is final)", n)
	}
}

func TestServerErrorIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.script["GET /admin/directory/v1/users/alice@example.com"] = []int{http.StatusServiceUnavailable}
		p := inMemory(t, f)
		if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		if n := f.count("GET /admin/directory/v1/users/alice@example.com"); n != 2 {
			t.Errorf("calls = %d, want 2", n)
		}
	})
}

func TestRevokeSessionIsNotSupported(t *testing.T) {
	f := newFake(t)
	p := serve(t, f)
	if err := p.RevokeSession(t.Context(), alice, "token:123.apps.googleusercontent.com"); !errors.Is(err, sessions.ErrNotSupported) {
		t.Errorf("RevokeSession = %v, want ErrNotSupported", err)
	}
	if c := p.Capabilities(); c.RevokeOne || c.ListSessions || !c.RevokeAll || !c.RevokeTokens || !c.ListDevices {
		t.Errorf("capabilities = %+v", c)
	}
	if len(f.deleted) != 0 {
		t.Errorf("something was deleted: %v", f.deleted)
	}
}

func TestRevokeAllUnknownUserIsSuccess(t *testing.T) {
	f := newFake(t)
	f.script["POST /admin/directory/v1/users/9999/signOut"] = []int{http.StatusNotFound}
	p := serve(t, f)
	if err := p.RevokeAll(t.Context(), sessions.User{Provider: Name, ID: "9999"}); err != nil {
		t.Errorf("RevokeAll of a deleted user: %v, want nil", err)
	}
}

func TestRevokeTokens(t *testing.T) {
	f := newFake(t)
	// The Zoom grant disappears between list and delete.
	f.script["DELETE /admin/directory/v1/users/1001/tokens/123.apps.googleusercontent.com"] = []int{http.StatusNotFound}
	p := serve(t, f)
	if err := p.RevokeTokens(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	want := []string{"token/456.apps.googleusercontent.com", "asp/17", "asp/18"}
	if diff := cmp.Diff(want, f.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
}

func TestTokenFetchedOnceAndCached(t *testing.T) {
	f := newFake(t)
	p := serve(t, f)
	for range 3 {
		if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.ListSessions(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	if f.tokenCalls != 1 {
		t.Errorf("token endpoint called %d times, want 1", f.tokenCalls)
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	key := keyPEM()
	keyBody := strings.Split(key, "\n")[1] // one line of the key's base64
	secrets := []string{key, keyBody, keyID, accessToken}
	assertClean := func(t *testing.T, err error) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q quotes a credential", err)
			}
		}
	}
	t.Run("refused service account", func(t *testing.T) {
		f := newFake(t)
		f.refuseTokens, f.echo = true, true
		p := serve(t, f)
		_, err := p.FindUser(t.Context(), "alice@example.com")
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		assertClean(t, err)
	})
	t.Run("error body", func(t *testing.T) {
		f := newFake(t)
		f.echo = true
		f.script["GET /admin/directory/v1/users/alice@example.com"] = []int{http.StatusBadRequest}
		p := serve(t, f)
		_, err := p.FindUser(t.Context(), "alice@example.com")
		if err == nil {
			t.Fatal("want an error")
		}
		assertClean(t, err)
	})
	t.Run("bad key", func(t *testing.T) {
		bad := strings.Replace(string(credentialsJSON()), "MII", "XXX", 1)
		_, err := New(Config{CredentialsJSON: []byte(bad), AdminEmail: adminEmail})
		if err == nil {
			t.Fatal("a corrupt key was accepted")
		}
		assertClean(t, err)
	})
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no credentials": {AdminEmail: adminEmail},
		"no admin":       {CredentialsJSON: credentialsJSON()},
		"not a key":      {CredentialsJSON: []byte(`{"type":"authorized_user"}`), AdminEmail: adminEmail},
		"bad base":       {CredentialsJSON: credentialsJSON(), AdminEmail: adminEmail, BaseURL: "admin.googleapis.com"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
