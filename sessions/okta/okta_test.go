package okta

import (
	"errors"
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
)

func newProvider(t *testing.T, f *fakeOkta, mod func(*Config)) *Provider {
	t.Helper()
	cfg := Config{
		OrgURL:   "https://acme.okta.com",
		APIToken: testToken,
		HTTP:     httpclienttest.Client(f),
		Rate:     rate.Inf,
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
	return sessions.User{Provider: Name, ID: "00ualice", Email: "alice@example.com", Name: "Alice Liddell", ManagerEmail: "mona@example.com"}
}

func seeded() *fakeOkta {
	f := newFakeOkta()
	f.users = []map[string]any{
		oktaUser("00ualice", "alice@example.com", "Alice", "Liddell", map[string]any{"managerId": "00umona"}),
		oktaUser("00umona", "mona@example.com", "Mona", "Manager", nil),
		oktaUser("00ubob", "bob@example.com", "Bob", "Builder", map[string]any{"manager": "mona@example.com"}),
		oktaUser("00uquote", `o"brien\x@example.com`, "O", "Brien", nil),
	}
	return f
}

func TestFindUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		p := newProvider(t, f, nil)
		tests := []struct {
			email string
			want  sessions.User
		}{
			{"alice@example.com", alice()},
			{"BOB@example.com", sessions.User{Provider: Name, ID: "00ubob", Email: "bob@example.com", Name: "Bob Builder", ManagerEmail: "mona@example.com"}},
			{`o"brien\x@example.com`, sessions.User{Provider: Name, ID: "00uquote", Email: `o"brien\x@example.com`, Name: "O Brien"}},
		}
		for _, tt := range tests {
			got, err := p.FindUser(t.Context(), tt.email)
			if err != nil {
				t.Fatalf("FindUser(%q): %v", tt.email, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FindUser(%q) (-want +got):\n%s", tt.email, diff)
			}
		}
		if _, err := p.FindUser(t.Context(), "nobody@example.com"); !errors.Is(err, sessions.ErrNoAccount) {
			t.Fatalf("unknown user: err = %v, want ErrNoAccount", err)
		}
	})
}

func TestListSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now().UTC() // 2000-01-01 in the bubble
		ago := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
		f := seeded()
		f.events = []map[string]any{
			signInEvent("ev-old", "00ualice", ago(24*8), "102old", "198.51.100.1", chromeMac, "Paris", "France", "SUCCESS"),
			signInEvent("ev-1", "00ualice", ago(50), "102laptop", "203.0.113.7", chromeMac, "Berlin", "Germany", "SUCCESS"),
			signInEvent("ev-bob", "00ubob", ago(40), "102bob", "192.0.2.9", chromeMac, "Oslo", "Norway", "SUCCESS"),
			signInEvent("ev-fail", "00ualice", ago(30), "", "192.0.2.66", chromeMac, "Lagos", "Nigeria", "FAILURE"),
			signInEvent("ev-2", "00ualice", ago(20), "102phone", "198.51.100.23", iphone, "", "", "SUCCESS"),
			signInEvent("ev-3", "00ualice", ago(5), "102laptop", "203.0.113.8", chromeMac, "Hamburg", "Germany", "SUCCESS"),
			signInEvent("ev-4", "00ualice", ago(1), "", "192.0.2.10", "okhttp/4.9.3", "Berlin", "Germany", "SUCCESS"),
		}
		f.clients["00ualice"] = []map[string]any{{"client_id": "0oaslack", "client_name": "Slack"}}
		f.tokens["0oaslack"] = []map[string]any{{
			"id": "oar1", "status": "ACTIVE", "created": "1999-12-01T10:00:00.000Z",
			"lastUpdated": "1999-12-30T10:00:00.000Z", "expiresAt": "2000-03-01T10:00:00.000Z",
			"clientId": "0oaslack", "userId": "00ualice", "issuer": "https://acme.okta.com/oauth2/default", "scopes": []string{"offline_access"},
		}}
		p := newProvider(t, f, nil)
		got, err := p.ListSessions(t.Context(), alice())
		if err != nil {
			t.Fatal(err)
		}
		ts := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
		want := []sessions.Session{
			{Provider: Name, ID: "event:ev-4", Kind: sessions.KindSignIn, Created: ago(1), LastActive: ago(1),
				IP: "192.0.2.10", UserAgent: "okhttp/4.9.3", Device: sessions.Device{OS: "Mac OS X", Client: "okhttp"}, Location: "Berlin, Germany"},
			{Provider: Name, ID: "102laptop", Kind: sessions.KindSignIn, Created: ago(50), LastActive: ago(5),
				IP: "203.0.113.8", UserAgent: chromeMac, Device: sessions.Device{OS: "macOS", Browser: "Chrome 126"}, Location: "Hamburg, Germany"},
			{Provider: Name, ID: "102phone", Kind: sessions.KindSignIn, Created: ago(20), LastActive: ago(20),
				IP: "198.51.100.23", UserAgent: iphone, Device: sessions.Device{OS: "iOS 17", Browser: "Safari 17", Mobile: true}},
			{Provider: Name, ID: "oar1", Kind: sessions.KindToken, Created: ts("1999-12-01T10:00:00Z"),
				LastActive: ts("1999-12-30T10:00:00Z"), Expires: ts("2000-03-01T10:00:00Z"), Client: "Slack", Active: true},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("sessions (-want +got):\n%s", diff)
		}
		// 5 matching events at 2 a page: 3 pages, each following Link.
		if n := f.count("GET /api/v1/logs"); n != 3 {
			t.Fatalf("log pages fetched = %d, want 3", n)
		}
		q := f.requests[0].URL.Query()
		if q.Get("since") != now.Add(-7*24*time.Hour).Format(time.RFC3339) {
			t.Fatalf("since = %q, want 7 days back", q.Get("since"))
		}
	})
}

func TestListSessionsBoundsPages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		f.endless = true
		f.events = []map[string]any{signInEvent("ev-1", "00ualice", time.Now().Add(-time.Hour), "102a", "192.0.2.1", "", "", "", "SUCCESS")}
		p := newProvider(t, f, func(c *Config) { c.MaxPages = 4 })
		if _, err := p.ListSessions(t.Context(), alice()); err != nil {
			t.Fatal(err)
		}
		if n := f.count("GET /api/v1/logs"); n != 4 {
			t.Fatalf("log pages fetched = %d, want the bound 4", n)
		}
	})
}

func TestThrottleIsWaitedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		now := time.Now()
		// Okta's clock runs 100 s ahead of ours; the reset is 2 s after its Date.
		server := now.Add(100 * time.Second)
		f.on("GET /api/v1/users", reply{status: 429, header: map[string]string{
			"Date":                   server.UTC().Format(http.TimeFormat),
			"X-Rate-Limit-Limit":     "600",
			"X-Rate-Limit-Remaining": "0",
			"X-Rate-Limit-Reset":     strconv.FormatInt(server.Add(2*time.Second).Unix(), 10),
			"X-Okta-Request-Id":      "reqThrottled",
		}, body: `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`})
		p := newProvider(t, f, nil)
		u, err := p.FindUser(t.Context(), "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != "00ualice" {
			t.Fatalf("user = %+v", u)
		}
		if n := f.count("GET /api/v1/users"); n != 2 {
			t.Fatalf("search calls = %d, want 2", n)
		}
		// The manager lookup came after the 3 s wait (reset − Date + 1 s).
		if got := time.Since(now); got != 3*time.Second {
			t.Fatalf("waited %v, want 3s", got)
		}
		if got := f.requests[1].Header.Get("X-Okta-Retry-For"); got != "reqThrottled" {
			t.Fatalf("X-Okta-Retry-For = %q", got)
		}
	})
}

func TestRevoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		f.sessions["102laptop"] = true
		f.clients["00ualice"] = []map[string]any{{"client_id": "0oaslack", "client_name": "Slack"}, {"client_id": "0oacli"}}
		p := newProvider(t, f, nil)
		ctx := t.Context()

		if err := p.RevokeSession(ctx, alice(), "102laptop"); err != nil {
			t.Fatalf("revoke live session: %v", err)
		}
		if f.sessions["102laptop"] {
			t.Fatal("session still live after revoke")
		}
		if err := p.RevokeSession(ctx, alice(), "102laptop"); err != nil {
			t.Fatalf("revoke gone session (404) = %v, want nil", err)
		}
		if err := p.RevokeSession(ctx, alice(), "event:ev-4"); !errors.Is(err, sessions.ErrNotSupported) {
			t.Fatalf("revoke sign-in without session id: err = %v, want ErrNotSupported", err)
		}

		f.on("DELETE /api/v1/users/00ualice/sessions", reply{status: 500, body: `{"errorCode":"E0000009","errorSummary":"Internal Server Error"}`})
		if err := p.RevokeAll(ctx, alice()); err != nil {
			t.Fatalf("revoke all after a 500: %v", err)
		}
		if n := f.count("DELETE /api/v1/users/00ualice/sessions"); n != 2 {
			t.Fatalf("revoke all calls = %d, want 2 (one retry)", n)
		}

		if err := p.RevokeTokens(ctx, alice()); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{
			"DELETE /api/v1/users/00ualice/clients/0oaslack/tokens",
			"DELETE /api/v1/users/00ualice/clients/0oaslack/grants",
			"DELETE /api/v1/users/00ualice/clients/0oacli/tokens",
			"DELETE /api/v1/users/00ualice/clients/0oacli/grants",
		} {
			if f.count(k) != 1 {
				t.Errorf("%s called %d times, want 1", k, f.count(k))
			}
		}
	})
}

func TestErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		f.on("DELETE /api/v1/users/00ualice/sessions", reply{status: 403,
			body: `{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action"}`})
		p := newProvider(t, f, nil)
		err := p.RevokeAll(t.Context(), alice())
		var se *httpclient.StatusError
		if !errors.As(err, &se) || se.Code != "E0000006" || se.Status != 403 {
			t.Fatalf("err = %v, want StatusError 403 E0000006", err)
		}
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		if strings.Contains(err.Error(), "permission") {
			t.Fatalf("error carries the response body: %v", err)
		}

		bad := newProvider(t, f, func(c *Config) { c.APIToken = "wrong-token-7f7f7f" })
		_, err = bad.FindUser(t.Context(), "alice@example.com")
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("bad token: err = %v, want ErrUnauthorized", err)
		}
		for _, secret := range []string{"wrong-token-7f7f7f", testToken, "Invalid token"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks %q: %v", secret, err)
			}
		}
	})
}

func TestCapabilities(t *testing.T) {
	p := newProvider(t, newFakeOkta(), nil)
	c := p.Capabilities()
	if c.ListSessions || !c.ListSignIns || !c.RevokeOne || !c.RevokeAll || !c.RevokeTokens || c.Ends == "" || c.Leaves == "" {
		t.Fatalf("capabilities not honest: %+v", c)
	}
	if p.Name() != "okta" {
		t.Fatalf("name = %q", p.Name())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{{}, {OrgURL: "https://acme.okta.com"}, {APIToken: "x"}, {OrgURL: "nope", APIToken: "tok-secret-1"}} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		} else if strings.Contains(err.Error(), "tok-secret-1") {
			t.Errorf("error leaks the token: %v", err)
		}
	}
}

func TestDotIDsNeverReachAPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := seeded()
		f.clients["00ualice"] = []map[string]any{{"client_id": ".."}, {"client_id": "0oaslack"}}
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
		if len(f.requests) != 0 {
			t.Fatalf("%d requests sent for bad ids, want 0", len(f.requests))
		}
		// A client id of ".." from the provider is skipped, the others revoked.
		if err := p.RevokeTokens(ctx, alice()); err != nil {
			t.Fatal(err)
		}
		for _, r := range f.requests {
			if strings.HasSuffix(strings.TrimSuffix(strings.TrimSuffix(r.URL.Path, "/tokens"), "/grants"), "/..") {
				t.Errorf("request reached %s", r.URL.Path)
			}
		}
		if n := f.count("DELETE /api/v1/users/00ualice/clients/0oaslack/tokens"); n != 1 {
			t.Errorf("slack tokens revoked %d times, want 1", n)
		}
	})
}

func TestLogClientDeviceAndLocation(t *testing.T) {
	var c LogClient
	c.UserAgent.RawUserAgent = "UNKNOWN-DOWNLOAD"
	c.UserAgent.OS, c.UserAgent.Browser = "Windows 10", "UNKNOWN"
	c.GeographicalContext.City, c.GeographicalContext.Country = " ", "Portugal"
	if d := c.Device(); d.OS != "Windows 10" || d.Browser != "" {
		t.Errorf("Device() = %+v, want OS from Okta and no UNKNOWN browser", d)
	}
	if got := c.Location(); got != "Portugal" {
		t.Errorf("Location() = %q, want Portugal", got)
	}
	c.UserAgent.RawUserAgent = chromeMac
	if d := c.Device(); d.OS != "macOS" || d.Browser != "Chrome 126" {
		t.Errorf("Device() = %+v, want the raw user agent to win", d)
	}
}
