package slackgrid

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
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

const adminToken = "xoxp-1111-2222-3333-cafebabe"

// fake is an Enterprise Grid org speaking the Web API: form posts with a
// Bearer token, HTTP 200 with {"ok":false} on failure, 429 + Retry-After.
type fake struct {
	mu       sync.Mutex
	calls    map[string]int                         // method → count
	forms    map[string][]string                    // method → encoded forms received
	status   map[string][]int                       // method → HTTP statuses to answer first
	codes    map[string][]string                    // method → Slack error codes to answer first
	users    map[string]map[string]any              // email → user object
	sessions map[string]map[string][]map[string]any // team → user → active_sessions
	pageSize int
	invalid  []string // "user/session" invalidated
	resets   []string
}

func newFake() *fake {
	return &fake{
		calls:  map[string]int{},
		forms:  map[string][]string{},
		status: map[string][]int{},
		codes:  map[string][]string{},
		users: map[string]map[string]any{
			"alice@example.com": {
				"id": "W0ALICE", "team_id": "T0MAIN", "name": "alice", "real_name": "Alice Liddell",
				"profile":         map[string]any{"email": "alice@example.com", "real_name": "Alice Liddell"},
				"enterprise_user": map[string]any{"enterprise_id": "E0ORG", "teams": []string{"T0MAIN", "T0SIDE"}},
			},
			"gone@example.com": {"id": "W0GONE", "team_id": "T0MAIN", "deleted": true, "profile": map[string]any{"email": "gone@example.com"}},
		},
		sessions: map[string]map[string][]map[string]any{
			"T0MAIN": {"W0ALICE": {
				{"user_id": "W0ALICE", "team_id": "T0MAIN", "session_id": 9001,
					"created": map[string]any{"device_hardware": "Mac", "os": "Mac OS", "os_version": "14.5", "slack_client_version": "4.38.125", "ip": "203.0.113.7"}},
				{"user_id": "W0ALICE", "team_id": "T0MAIN", "session_id": 9002,
					"created": map[string]any{"device_hardware": "iPhone", "os": "iOS", "os_version": "17.5", "slack_client_version": "24.06", "ip": "198.51.100.1"},
					"recent":  map[string]any{"device_hardware": "iPhone", "os": "iOS", "os_version": "17.6", "slack_client_version": "24.07", "ip": "198.51.100.99"}},
				{"user_id": "W0ALICE", "team_id": "T0MAIN", "session_id": 9003,
					"created": map[string]any{"device_hardware": "", "os": "", "os_version": "", "slack_client_version": "", "ip": "192.0.2.5"}},
			}},
		},
		pageSize: 2,
	}
}

func (f *fake) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	_ = r.ParseForm()
	f.calls[method]++
	f.forms[method] = append(f.forms[method], r.PostForm.Encode())
	if q := f.status[method]; len(q) > 0 {
		f.status[method] = q[1:]
		if q[0] == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(q[0])
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+adminToken {
		reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	if q := f.codes[method]; len(q) > 0 {
		f.codes[method] = q[1:]
		reply(w, map[string]any{"ok": false, "error": q[0]})
		return
	}
	form := r.PostForm
	switch method {
	case "users.lookupByEmail":
		u, ok := f.users[form.Get("email")]
		if !ok {
			reply(w, map[string]any{"ok": false, "error": "users_not_found"})
			return
		}
		reply(w, map[string]any{"ok": true, "user": u})
	case "users.info":
		for _, u := range f.users {
			if u["id"] == form.Get("user") {
				reply(w, map[string]any{"ok": true, "user": u})
				return
			}
		}
		reply(w, map[string]any{"ok": false, "error": "user_not_found"})
	case "admin.users.session.list":
		team, user := form.Get("team_id"), form.Get("user_id")
		if (team == "") != (user == "") {
			reply(w, map[string]any{"ok": false, "error": "missing_team"})
			return
		}
		all := f.sessions[team][user]
		if team == "" {
			all = f.orgWide()
		}
		if len(all) == 0 {
			reply(w, map[string]any{"ok": false, "error": "no_active_sessions"})
			return
		}
		from, _ := strconv.Atoi(form.Get("cursor"))
		to := min(from+f.pageSize, len(all))
		next := ""
		if to < len(all) {
			next = strconv.Itoa(to)
		}
		reply(w, map[string]any{"ok": true, "active_sessions": all[from:to], "response_metadata": map[string]any{"next_cursor": next}})
	case "admin.users.session.invalidate":
		sid, _ := strconv.ParseInt(form.Get("session_id"), 10, 64)
		user := form.Get("user_id")
		for team, byUser := range f.sessions {
			for i, s := range byUser[user] {
				if int64(s["session_id"].(int)) == sid {
					f.sessions[team][user] = append(byUser[user][:i:i], byUser[user][i+1:]...)
					f.invalid = append(f.invalid, user+"/"+form.Get("session_id"))
					reply(w, map[string]any{"ok": true})
					return
				}
			}
		}
		reply(w, map[string]any{"ok": false, "error": "session_not_found"})
	case "admin.users.session.reset":
		user := form.Get("user_id")
		for team := range f.sessions {
			delete(f.sessions[team], user)
		}
		f.resets = append(f.resets, user)
		reply(w, map[string]any{"ok": true})
	default:
		reply(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

// orgWide is every session in the org, by workspace then user, as Slack
// lists them when neither team_id nor user_id is given. Callers hold f.mu.
func (f *fake) orgWide() []map[string]any {
	var all []map[string]any
	for _, team := range slices.Sorted(maps.Keys(f.sessions)) {
		for _, user := range slices.Sorted(maps.Keys(f.sessions[team])) {
			all = append(all, f.sessions[team][user]...)
		}
	}
	return all
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func serve(t *testing.T, f *fake, token string) *Provider {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	p, err := New(Config{APIURL: srv.URL + "/api/", AdminToken: token, HTTP: srv.Client(), Rate: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func inMemory(t *testing.T, f *fake) *Provider {
	t.Helper()
	p, err := New(Config{AdminToken: adminToken, HTTP: httpclienttest.Client(f), Rate: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var alice = sessions.User{Provider: Name, ID: "W0ALICE", Email: "alice@example.com", Name: "Alice Liddell"}

func TestFindUser(t *testing.T) {
	p := serve(t, newFake(), adminToken)
	got, err := p.FindUser(t.Context(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("FindUser (-want +got):\n%s", diff)
	}
	for _, email := range []string{"nobody@example.com", "gone@example.com"} {
		if _, err := p.FindUser(t.Context(), email); !errors.Is(err, sessions.ErrNoAccount) {
			t.Errorf("FindUser(%q) = %v, want ErrNoAccount", email, err)
		}
	}
}

func TestListSessionsAcrossWorkspacesAndPages(t *testing.T) {
	f := newFake()
	p := serve(t, f, adminToken)
	// A user FindUser has not seen: the workspaces come from users.info.
	got, err := p.ListSessions(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	want := []sessions.Session{
		{Provider: Name, ID: "9001", Kind: sessions.KindSession, IP: "203.0.113.7", Device: sessions.Device{OS: "Mac OS 14.5", Client: "Slack 4.38.125"}, Active: true},
		{Provider: Name, ID: "9002", Kind: sessions.KindSession, IP: "198.51.100.99", Device: sessions.Device{OS: "iOS 17.6", Client: "Slack mobile 24.07", Mobile: true}, Active: true},
		{Provider: Name, ID: "9003", Kind: sessions.KindSession, IP: "192.0.2.5", Active: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSessions (-want +got):\n%s", diff)
	}
	wantForms := []string{
		"limit=1000&team_id=T0MAIN&user_id=W0ALICE",
		"cursor=2&limit=1000&team_id=T0MAIN&user_id=W0ALICE",
		"limit=1000&team_id=T0SIDE&user_id=W0ALICE", // answered no_active_sessions
	}
	if diff := cmp.Diff(wantForms, f.forms["admin.users.session.list"]); diff != "" {
		t.Errorf("list requests (-want +got):\n%s", diff)
	}
	if n := f.count("users.info"); n != 1 {
		t.Errorf("users.info calls = %d, want 1", n)
	}
}

func TestListSessionsNoActiveSessionsIsEmpty(t *testing.T) {
	f := newFake()
	p := serve(t, f, adminToken)
	if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := p.RevokeAll(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	got, err := p.ListSessions(t.Context(), alice)
	if err != nil {
		t.Fatalf("no_active_sessions: %v, want an empty list", err)
	}
	if len(got) != 0 {
		t.Errorf("got %d sessions after reset, want 0", len(got))
	}
	if n := f.count("users.info"); n != 0 {
		t.Errorf("users.info calls = %d, want 0 (FindUser already gave the workspaces)", n)
	}
}

func TestThrottleIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.status["admin.users.session.reset"] = []int{http.StatusTooManyRequests}
		p := inMemory(t, f)
		start := time.Now()
		if err := p.RevokeAll(t.Context(), alice); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("retried after %v, want the 1 s Retry-After honoured", waited)
		}
		if diff := cmp.Diff([]string{"W0ALICE"}, f.resets); diff != "" {
			t.Errorf("resets (-want +got):\n%s", diff)
		}
	})
}

func TestServerErrorIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.status["users.lookupByEmail"] = []int{http.StatusInternalServerError}
		p := inMemory(t, f)
		if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		if n := f.count("users.lookupByEmail"); n != 2 {
			t.Errorf("lookup calls = %d, want 2", n)
		}
	})
}

func TestRevokeSession(t *testing.T) {
	f := newFake()
	p := serve(t, f, adminToken)
	if err := p.RevokeSession(t.Context(), alice, "9002"); err != nil {
		t.Fatal(err)
	}
	// Gone now: Slack says session_not_found, which is success.
	if err := p.RevokeSession(t.Context(), alice, "9002"); err != nil {
		t.Errorf("revoking a gone session: %v, want nil", err)
	}
	if diff := cmp.Diff([]string{"W0ALICE/9002"}, f.invalid); diff != "" {
		t.Errorf("invalidated (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"session_id=9002&user_id=W0ALICE", "session_id=9002&user_id=W0ALICE"}, f.forms["admin.users.session.invalidate"]); diff != "" {
		t.Errorf("invalidate requests (-want +got):\n%s", diff)
	}
	if err := p.RevokeSession(t.Context(), alice, "not-a-number"); err == nil {
		t.Error("a non-numeric id was accepted")
	}
	if n := f.count("admin.users.session.invalidate"); n != 2 {
		t.Errorf("invalidate calls = %d, want 2 (a bad id never reaches Slack)", n)
	}
}

func TestRevokeSessionFailureIsReported(t *testing.T) {
	f := newFake()
	f.codes["admin.users.session.invalidate"] = []string{"cannot_invalidate_primary_owner"}
	p := serve(t, f, adminToken)
	err := p.RevokeSession(t.Context(), alice, "9001")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "cannot_invalidate_primary_owner" {
		t.Fatalf("err = %v, want the Slack error code", err)
	}
}

func TestOKFalseIsAnError(t *testing.T) {
	t.Run("invalid_auth", func(t *testing.T) {
		p := serve(t, newFake(), "xoxp-wrong-token-0000")
		_, err := p.FindUser(t.Context(), "alice@example.com")
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
	})
	t.Run("ratelimited", func(t *testing.T) {
		f := newFake()
		f.codes["admin.users.session.reset"] = []string{"ratelimited"}
		p := serve(t, f, adminToken)
		if err := p.RevokeAll(t.Context(), alice); !errors.Is(err, httpclient.ErrThrottled) {
			t.Fatalf("err = %v, want ErrThrottled", err)
		}
	})
}

func TestErrorsCarryNoSecret(t *testing.T) {
	f := newFake()
	// A broken proxy echoes the token as the error code, once with ok:false
	// and once as an HTTP error body.
	f.codes["users.lookupByEmail"] = []string{adminToken}
	p := serve(t, f, adminToken)
	_, err := p.FindUser(t.Context(), "alice@example.com")
	if err == nil || strings.Contains(err.Error(), adminToken) {
		t.Errorf("err = %v: want an error without the token", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"ok":false,"error":"` + adminToken + `"}`))
	}))
	defer srv.Close()
	p2, err := New(Config{APIURL: srv.URL + "/api/", AdminToken: adminToken, HTTP: srv.Client(), Rate: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	err = p2.RevokeAll(t.Context(), alice)
	if err == nil || strings.Contains(err.Error(), adminToken) {
		t.Errorf("err = %v: want an error without the token", err)
	}
}

func TestNewRefusesBotToken(t *testing.T) {
	for _, tok := range []string{"", "xoxb-123-bot", "xapp-1-app"} {
		_, err := New(Config{AdminToken: tok})
		if err == nil {
			t.Errorf("New accepted %q", tok)
			continue
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("error names the token: %v", err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	c := inMemory(t, newFake()).Capabilities()
	if !c.ListSessions || !c.RevokeOne || !c.RevokeAll || c.RevokeTokens {
		t.Errorf("capabilities = %+v", c)
	}
	var p sessions.Provider = inMemory(t, newFake())
	if _, ok := p.(sessions.TokenRevoker); ok {
		t.Error("Slack has no token revocation, yet the provider claims it")
	}
}
