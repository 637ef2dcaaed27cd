package auth0

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
	chromeMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	iphone    = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	aliceID   = "auth0|alice01"
)

func newProvider(t *testing.T, f *fakeAuth0, mod func(*Config)) *Provider {
	t.Helper()
	cfg := Config{
		URL:          "https://acme.auth0.com",
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		HTTP:         httpclienttest.Client(f),
		Rate:         rate.Inf,
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

func alice() sessions.User {
	return sessions.User{Provider: Name, ID: aliceID, Email: "alice@example.com", Name: "Alice Liddell", ManagerEmail: "mona@example.com"}
}

func seeded() *fakeAuth0 {
	f := newFakeAuth0()
	f.users = []map[string]any{
		{"user_id": aliceID, "email": "alice@example.com", "name": "Alice Liddell", "nickname": "alice",
			"app_metadata": map[string]any{"manager_email": "mona@example.com"}},
		{"user_id": "google-oauth2|bob", "email": "bob@example.com", "name": "bob@example.com", "nickname": "bob"},
	}
	return f
}

func TestFindUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, seeded(), nil)
		got, err := p.FindUser(t.Context(), "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(alice(), got); diff != "" {
			t.Fatalf("alice (-want +got):\n%s", diff)
		}
		got, err = p.FindUser(t.Context(), "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		want := sessions.User{Provider: Name, ID: "google-oauth2|bob", Email: "bob@example.com", Name: "bob"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("bob (-want +got):\n%s", diff)
		}
		if _, err := p.FindUser(t.Context(), "nobody@example.com"); !errors.Is(err, sessions.ErrNoAccount) {
			t.Fatalf("unknown user: err = %v, want ErrNoAccount", err)
		}
	})
}

func TestListSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now().UTC()
		ago := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
		f := seeded()
		f.sessions[aliceID] = []map[string]any{
			auth0Session("s1", aliceID, ago(100), ago(2), "203.0.113.7", chromeMac),
			auth0Session("s2", aliceID, ago(50), ago(1), "198.51.100.23", iphone),
			auth0Session("s3", aliceID, ago(10), ago(10), "", ""),
		}
		f.refreshTokens[aliceID] = []map[string]any{{
			"id": "rt1", "user_id": aliceID, "created_at": "1999-12-20T00:00:00.000Z",
			"expires_at": "2000-01-20T00:00:00.000Z", "idle_expires_at": "2000-01-05T00:00:00.000Z",
			"last_exchanged_at": "1999-12-31T12:00:00.000Z", "client_id": "mobile-app", "session_id": "s2", "rotating": true,
			"device": map[string]any{"last_ip": "198.51.100.23", "last_user_agent": "okhttp/4.9.3"},
		}}
		p := newProvider(t, f, nil)
		got, err := p.ListSessions(t.Context(), alice())
		if err != nil {
			t.Fatal(err)
		}
		ts := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
		want := []sessions.Session{
			{Provider: Name, ID: "s1", Kind: sessions.KindSession, Created: ago(100), LastActive: ago(2), Expires: ago(2).Add(72 * time.Hour),
				IP: "203.0.113.7", UserAgent: chromeMac, Device: sessions.Device{OS: "macOS", Browser: "Chrome 126"}, Active: true},
			{Provider: Name, ID: "s2", Kind: sessions.KindSession, Created: ago(50), LastActive: ago(1), Expires: ago(1).Add(72 * time.Hour),
				IP: "198.51.100.23", UserAgent: iphone, Device: sessions.Device{OS: "iOS 17", Browser: "Safari 17", Mobile: true}, Active: true},
			// No last_* device data: the initial ones stand in.
			{Provider: Name, ID: "s3", Kind: sessions.KindSession, Created: ago(10), LastActive: ago(10), Expires: ago(10).Add(72 * time.Hour),
				IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", Device: sessions.ParseUserAgent("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"), Active: true},
			{Provider: Name, ID: "rt1", Kind: sessions.KindToken, Created: ts("1999-12-20T00:00:00Z"), LastActive: ts("1999-12-31T12:00:00Z"),
				Expires: ts("2000-01-05T00:00:00Z"), IP: "198.51.100.23", UserAgent: "okhttp/4.9.3", Device: sessions.Device{Client: "okhttp"},
				Client: "mobile-app", Active: true},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("sessions (-want +got):\n%s", diff)
		}
		// 3 sessions at 2 a page: the checkpoint was followed once.
		if n := f.count("GET /api/v2/users/" + aliceID + "/sessions"); n != 2 {
			t.Fatalf("session pages = %d, want 2", n)
		}
	})
}

func TestTokenFetchedOnceAndCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		p := newProvider(t, f, nil)
		ctx := t.Context()
		if _, err := p.FindUser(ctx, "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ListSessions(ctx, alice()); err != nil {
			t.Fatal(err)
		}
		if err := p.RevokeAll(ctx, alice()); err != nil {
			t.Fatal(err)
		}
		if n := f.count("POST /oauth/token"); n != 1 {
			t.Fatalf("token requests = %d, want 1 for 3 calls", n)
		}
	})
}

func TestThrottleIsWaitedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		now := time.Now()
		f.on("GET /api/v2/users-by-email", reply{status: 429, header: map[string]string{
			"date":                  now.UTC().Format(http.TimeFormat),
			"x-ratelimit-limit":     "50",
			"x-ratelimit-remaining": "0",
			"x-ratelimit-reset":     strconv.FormatInt(now.Add(4*time.Second).Unix(), 10),
		}, body: `{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"}`})
		p := newProvider(t, f, nil)
		u, err := p.FindUser(t.Context(), "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != aliceID {
			t.Fatalf("user = %+v", u)
		}
		if got := time.Since(now); got != 5*time.Second {
			t.Fatalf("waited %v, want 5s (reset − date + 1 s)", got)
		}
		if n := f.count("GET /api/v2/users-by-email"); n != 2 {
			t.Fatalf("calls = %d, want 2", n)
		}
	})
}

func TestRevoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		f.sessions[aliceID] = []map[string]any{auth0Session("s1", aliceID, time.Now(), time.Now(), "", "")}
		f.refreshTokens[aliceID] = []map[string]any{{"id": "rt1"}}
		p := newProvider(t, f, nil)
		ctx := t.Context()

		if err := p.RevokeSession(ctx, alice(), "s1"); err != nil {
			t.Fatalf("revoke session: %v", err)
		}
		if len(f.sessions[aliceID]) != 0 {
			t.Fatal("session survived its revoke")
		}
		if err := p.RevokeSession(ctx, alice(), "s1"); err != nil {
			t.Fatalf("revoke gone session (404) = %v, want nil", err)
		}

		f.on("DELETE /api/v2/users/"+aliceID+"/sessions",
			reply{status: 503, body: `{"statusCode":503,"error":"Service Unavailable","message":"try later"}`},
			reply{status: 502, body: `<html>bad gateway</html>`})
		if err := p.RevokeAll(ctx, alice()); err != nil {
			t.Fatalf("revoke all after 5xx: %v", err)
		}
		if n := f.count("DELETE /api/v2/users/" + aliceID + "/sessions"); n != 3 {
			t.Fatalf("revoke all calls = %d, want 3", n)
		}

		if err := p.RevokeTokens(ctx, alice()); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.refreshTokens[aliceID]; ok {
			t.Fatal("refresh tokens survived")
		}
	})
}

func TestUnknownUserSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, seeded(), nil)
		_, err := p.ListSessions(t.Context(), sessions.User{ID: "auth0|ghost"})
		if !errors.Is(err, sessions.ErrNoAccount) {
			t.Fatalf("err = %v, want ErrNoAccount", err)
		}
	})
}

func TestErrorsCarryCodeNotBodyOrSecret(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		f.on("DELETE /api/v2/users/"+aliceID+"/refresh-tokens", reply{status: 403,
			body: `{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: delete:refresh_tokens","errorCode":"insufficient_scope"}`})
		p := newProvider(t, f, nil)
		err := p.RevokeTokens(t.Context(), alice())
		var se *httpclient.StatusError
		if !errors.As(err, &se) || se.Status != 403 || se.Code != "insufficient_scope" {
			t.Fatalf("err = %v, want StatusError 403 insufficient_scope", err)
		}
		if !errors.Is(err, sessions.ErrUnauthorized) || strings.Contains(err.Error(), "expected any of") {
			t.Fatalf("err = %v: want ErrUnauthorized without the body", err)
		}

		// A wrong secret: the token endpoint echoes it in its error body.
		wrong := "cs-WRONG-feedbeef"
		bad := newProvider(t, f, func(c *Config) { c.ClientSecret = wrong })
		_, err = bad.FindUser(t.Context(), "alice@example.com")
		if err == nil {
			t.Fatal("wrong secret accepted")
		}
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		for e := error(err); e != nil; e = errors.Unwrap(e) {
			msg := e.Error() + fmt.Sprintf(" %+v", e)
			for _, s := range []string{wrong, testClientSecret, "at-1", "Unauthorized:"} {
				if strings.Contains(msg, s) {
					t.Fatalf("error leaks %q: %s", s, msg)
				}
			}
		}
		// The refused token request was not retried.
		if n := f.count("POST /oauth/token"); n != 2 {
			t.Fatalf("token requests = %d, want 2 (1 good, 1 refused once)", n)
		}
	})
}

func TestTokenEndpointOutageIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		f.on("POST /oauth/token", reply{status: 503, body: `{"error":"temporarily_unavailable"}`})
		p := newProvider(t, f, nil)
		if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
			t.Fatalf("find user after a token-endpoint 503: %v", err)
		}
		if n := f.count("POST /oauth/token"); n != 2 {
			t.Fatalf("token requests = %d, want 2", n)
		}
	})
}

func TestCapabilities(t *testing.T) {
	p := newProvider(t, newFakeAuth0(), nil)
	c := p.Capabilities()
	if !c.ListSessions || c.ListSignIns || !c.RevokeOne || !c.RevokeAll || !c.RevokeTokens {
		t.Fatalf("capabilities: %+v", c)
	}
	if c.EffectWithin == 0 || !strings.Contains(c.Ends, "asynchronously") || c.Leaves == "" {
		t.Fatalf("auth0 revocation is asynchronous, capabilities must say so: %+v", c)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {URL: "https://a.auth0.com"}, {Domain: "a.auth0.com", ClientID: "x"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	// Domain alone works, and the audience defaults to it.
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		p := newProvider(t, f, func(c *Config) { c.URL, c.Domain = "", "acme.auth0.com" })
		if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTokenRefusedBeforeExpiryIsRefetched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		p := newProvider(t, f, nil)
		if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		// The token was revoked long before its 24 h expiry: the next call is
		// refused, and the one after it gets and uses a fresh token.
		f.on("GET /api/v2/users-by-email", reply{status: 401, body: `{"statusCode":401,"error":"Unauthorized","message":"Invalid token"}`})
		if _, err := p.FindUser(t.Context(), "alice@example.com"); !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
			t.Fatalf("call after the 401: %v", err)
		}
		if n := f.count("POST /oauth/token"); n != 2 {
			t.Fatalf("token requests = %d, want 2 (refetch after 401)", n)
		}
	})
}

func TestDotIDsNeverReachAPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		p := newProvider(t, f, nil)
		ctx := t.Context()
		for _, bad := range []string{"", ".", ".."} {
			if err := p.RevokeSession(ctx, alice(), bad); !errors.Is(err, sessions.ErrNotFound) {
				t.Errorf("RevokeSession(%q) = %v, want ErrNotFound", bad, err)
			}
			u := sessions.User{Provider: Name, ID: bad}
			if _, err := p.ListSessions(ctx, u); !errors.Is(err, sessions.ErrNoAccount) {
				t.Errorf("ListSessions(ID %q) = %v, want ErrNoAccount", bad, err)
			}
			if err := p.RevokeAll(ctx, u); !errors.Is(err, sessions.ErrNoAccount) {
				t.Errorf("RevokeAll(ID %q) = %v, want ErrNoAccount", bad, err)
			}
			if err := p.RevokeTokens(ctx, u); !errors.Is(err, sessions.ErrNoAccount) {
				t.Errorf("RevokeTokens(ID %q) = %v, want ErrNoAccount", bad, err)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for k, n := range f.calls {
			if strings.Contains(k, "/api/v2/") {
				t.Errorf("%s called %d times; a bad id must send no request", k, n)
			}
		}
	})
}
