package kratos_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/kratos"
)

// TestRealKratos drives the connector against a real Kratos v1.3.1 started by
// scripts/kratos.sh. The server may be shared by several test runs, so every
// identity gets a random email and is deleted afterwards.
func TestRealKratos(t *testing.T) {
	admin := strings.TrimRight(os.Getenv("KRATOS_ADMIN_URL"), "/")
	if admin == "" {
		t.Skip("KRATOS_ADMIN_URL not set: start Kratos with scripts/kratos.sh")
	}
	public := strings.TrimRight(os.Getenv("KRATOS_PUBLIC_URL"), "/")
	if public == "" {
		// Our test config: admin 44340 means public 44330.
		if !strings.HasSuffix(admin, ":44340") {
			t.Fatalf("KRATOS_PUBLIC_URL not set and cannot be derived from %q", admin)
		}
		public = strings.TrimSuffix(admin, ":44340") + ":44330"
	}
	k := &realKratos{t: t, admin: admin, public: public, hc: &http.Client{Timeout: 10 * time.Second}}
	ctx := t.Context()

	const password = "correct-horse-battery-9"
	emailA, emailB := randomEmail(t, "alice"), randomEmail(t, "bob")
	idA := k.createIdentity(ctx, emailA, password)
	idB := k.createIdentity(ctx, emailB, password)

	type login struct {
		ua, ip, city, country string
		token, id             string
	}
	logins := []*login{
		{ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Gecko/20100101 Firefox/128.0", ip: "203.0.113.7", city: "Berlin", country: "DE"},
		{ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ip: "198.51.100.23", city: "Paris", country: "FR"},
		{ua: "warden-cli/1.0", ip: "192.0.2.44"},
	}
	for _, l := range logins {
		l.token, l.id = k.login(ctx, emailA, password, l.ua, l.ip, l.city, l.country)
	}
	tokenB, sessB := k.login(ctx, emailB, password, "curl/8.5.0", "198.51.100.99", "Oslo", "NO")

	p, err := kratos.New(kratos.Config{AdminURL: admin})
	if err != nil {
		t.Fatalf("kratos.New: %v", err)
	}

	// FindUser, case-insensitively, and an unknown email.
	userA, err := p.FindUser(ctx, strings.ToUpper(emailA))
	if err != nil {
		t.Fatalf("FindUser(%s): %v", emailA, err)
	}
	if userA.ID != idA || userA.Email != emailA || userA.Provider != "kratos" {
		t.Errorf("FindUser = %+v, want id %s email %s", userA, idA, emailA)
	}
	if _, err := p.FindUser(ctx, randomEmail(t, "nobody")); !errors.Is(err, sessions.ErrNoAccount) {
		t.Errorf("FindUser(unknown): err = %v, want ErrNoAccount", err)
	}
	userB := sessions.User{Provider: "kratos", ID: idB, Email: emailB}

	// ListSessions shows the three devices as Kratos recorded them.
	type row struct {
		IP, UA, Location, Country string
		Active                    bool
	}
	list := func() map[string]row {
		t.Helper()
		ss, err := p.ListSessions(ctx, userA)
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		out := map[string]row{}
		for _, s := range ss {
			if s.Provider != "kratos" || s.Kind != sessions.KindSession || s.Created.IsZero() || !s.Expires.After(s.Created) {
				t.Errorf("session %s: provider %q kind %q created %v expires %v", s.ID, s.Provider, s.Kind, s.Created, s.Expires)
			}
			out[s.ID] = row{s.IP, s.UserAgent, s.Location, s.Country, s.Active}
		}
		return out
	}
	want := map[string]row{}
	for _, l := range logins {
		loc := ""
		if l.city != "" {
			loc = l.city + ", " + l.country
		}
		want[l.id] = row{l.ip, l.ua, loc, l.country, true}
	}
	if diff := cmp.Diff(want, list()); diff != "" {
		t.Fatalf("ListSessions after 3 logins (-want +got):\n%s", diff)
	}

	// Revoke one: its token dies at once, it stays listed as inactive.
	if err := p.RevokeSession(ctx, userA, logins[1].id); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	k.wantWhoami(ctx, logins[1].token, http.StatusUnauthorized, "revoked session")
	k.wantWhoami(ctx, logins[0].token, http.StatusOK, "other session of the same user")
	r := want[logins[1].id]
	r.Active = false
	want[logins[1].id] = r
	if diff := cmp.Diff(want, list()); diff != "" {
		t.Errorf("ListSessions after revoking one (-want +got):\n%s", diff)
	}
	if err := p.RevokeSession(ctx, userA, logins[1].id); err != nil {
		t.Errorf("RevokeSession again (already inactive) = %v, want nil", err)
	}
	if err := p.RevokeSession(ctx, userA, "00000000-0000-4000-8000-000000000001"); err != nil {
		t.Errorf("RevokeSession(unknown id) = %v, want nil", err)
	}
	if err := p.RevokeSession(ctx, userA, sessB); !errors.Is(err, kratos.ErrOtherOwner) {
		t.Errorf("RevokeSession(B's session as A) = %v, want ErrOtherOwner", err)
	}
	k.wantWhoami(ctx, tokenB, http.StatusOK, "B after A tried to revoke B's session")

	// ListAll sees B's live session with its owner, and not A's revoked one.
	all, owners, err := p.ListAll(ctx)
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	if len(all) != len(owners) {
		t.Fatalf("ListAll: %d sessions but %d owners", len(all), len(owners))
	}
	found := map[string]string{}
	for i, s := range all {
		found[s.ID] = owners[i].Email + " " + s.IP + " " + s.Country
	}
	if got, want := found[sessB], emailB+" 198.51.100.99 NO"; got != want {
		t.Errorf("ListAll entry for B's session = %q, want %q", got, want)
	}
	if got, ok := found[logins[1].id]; ok {
		t.Errorf("ListAll lists A's revoked session: %q", got)
	}

	// Revoke all: A's sessions are gone and every token dies; B is untouched.
	if err := p.RevokeAll(ctx, userA); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	if got := list(); len(got) != 0 {
		t.Errorf("ListSessions after RevokeAll = %v, want none", got)
	}
	for _, l := range logins {
		k.wantWhoami(ctx, l.token, http.StatusUnauthorized, "after RevokeAll")
	}
	if err := p.RevokeAll(ctx, userA); err != nil {
		t.Errorf("RevokeAll again = %v, want nil", err)
	}
	ssB, err := p.ListSessions(ctx, userB)
	if err != nil {
		t.Fatalf("ListSessions(B): %v", err)
	}
	if len(ssB) != 1 || ssB[0].ID != sessB || !ssB[0].Active {
		t.Errorf("B's sessions after A's revokes = %+v, want only %s, active", ssB, sessB)
	}
	k.wantWhoami(ctx, tokenB, http.StatusOK, "B after A's RevokeAll")
}

type realKratos struct {
	t             *testing.T
	admin, public string
	hc            *http.Client
}

func randomEmail(t *testing.T, who string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s-%x@warden-test.example.com", who, b)
}

// do sends a JSON request and decodes a JSON answer; it returns the status.
func (k *realKratos) do(ctx context.Context, method, u string, hdr http.Header, in, out any) int {
	k.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			k.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		k.t.Fatal(err)
	}
	for name, v := range hdr {
		req.Header[name] = v
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		k.t.Fatal(err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			k.t.Fatalf("%s %s: decode: %v", method, u, err)
		}
	}
	return resp.StatusCode
}

func (k *realKratos) createIdentity(ctx context.Context, email, password string) string {
	k.t.Helper()
	var id struct{ ID string }
	in := map[string]any{
		"schema_id": "default",
		"traits":    map[string]any{"email": email},
		"credentials": map[string]any{
			"password": map[string]any{"config": map[string]any{"password": password}},
		},
	}
	if st := k.do(ctx, http.MethodPost, k.admin+"/admin/identities", nil, in, &id); st != http.StatusCreated {
		k.t.Fatalf("create identity: status %d", st)
	}
	k.t.Cleanup(func() {
		// The server may be shared: leave nothing behind.
		k.do(context.Background(), http.MethodDelete, k.admin+"/admin/identities/"+id.ID, nil, nil, nil)
	})
	return id.ID
}

// login runs the native API login flow with the device headers Kratos
// records, and returns the session token and session id.
func (k *realKratos) login(ctx context.Context, email, password, ua, ip, city, country string) (token, id string) {
	k.t.Helper()
	var flow struct {
		UI struct {
			Action string `json:"action"`
		} `json:"ui"`
	}
	if st := k.do(ctx, http.MethodGet, k.public+"/self-service/login/api", nil, nil, &flow); st != http.StatusOK {
		k.t.Fatalf("start login flow: status %d", st)
	}
	action, err := url.Parse(flow.UI.Action)
	if err != nil || action.Query().Get("flow") == "" {
		k.t.Fatalf("login flow action %q unusable", flow.UI.Action)
	}
	hdr := http.Header{"User-Agent": {ua}, "True-Client-Ip": {ip}}
	if city != "" {
		hdr.Set("Cf-Ipcity", city)
		hdr.Set("Cf-Ipcountry", country)
	}
	var res struct {
		SessionToken string `json:"session_token"`
		Session      struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	in := map[string]string{"method": "password", "identifier": email, "password": password}
	if st := k.do(ctx, http.MethodPost, k.public+"/self-service/login?"+action.RawQuery, hdr, in, &res); st != http.StatusOK {
		k.t.Fatalf("login as %s: status %d", email, st)
	}
	if res.SessionToken == "" || res.Session.ID == "" {
		k.t.Fatalf("login as %s: no session token or id", email)
	}
	return res.SessionToken, res.Session.ID
}

func (k *realKratos) wantWhoami(ctx context.Context, token string, want int, what string) {
	k.t.Helper()
	if st := k.do(ctx, http.MethodGet, k.public+"/sessions/whoami", http.Header{"X-Session-Token": {token}}, nil, nil); st != want {
		k.t.Errorf("whoami (%s) = %d, want %d", what, st, want)
	}
}
