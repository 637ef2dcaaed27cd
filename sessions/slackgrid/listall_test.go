package slackgrid

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"slices"
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

// orgFake is newFake plus Bob (on both workspaces), Carol (on the side
// workspace), a bot, a deactivated user and a user without an email, all
// with live sessions. Listed org-wide five at a time it is two pages:
// T0MAIN alice×3, bob, gone | T0SIDE bob, bot, carol, nomail.
func orgFake() *fake {
	f := newFake()
	f.pageSize = 5
	f.users["bob@example.com"] = map[string]any{
		"id": "W0BOB", "team_id": "T0MAIN", "name": "bob",
		"profile":         map[string]any{"email": "bob@example.com", "display_name": "bobby"},
		"enterprise_user": map[string]any{"enterprise_id": "E0ORG", "teams": []string{"T0MAIN", "T0SIDE"}},
	}
	f.users["carol@example.com"] = map[string]any{
		"id": "W0CAROL", "team_id": "T0SIDE", "real_name": "Carol Danvers",
		"profile": map[string]any{"email": "carol@example.com"},
	}
	f.users["(bot)"] = map[string]any{"id": "W0BOT", "team_id": "T0SIDE", "is_bot": true, "profile": map[string]any{"email": "bot@example.com"}}
	f.users["(no email)"] = map[string]any{"id": "W0NOMAIL", "team_id": "T0SIDE", "name": "nomail", "profile": map[string]any{}}
	f.sessions["T0MAIN"]["W0BOB"] = []map[string]any{
		{"user_id": "W0BOB", "team_id": "T0MAIN", "session_id": 7001,
			"created": map[string]any{"device_hardware": "PC", "os": "Windows", "os_version": "11", "slack_client_version": "4.39.0", "ip": "203.0.113.20"}},
	}
	f.sessions["T0MAIN"]["W0GONE"] = []map[string]any{
		{"user_id": "W0GONE", "team_id": "T0MAIN", "session_id": 6001, "created": map[string]any{"ip": "192.0.2.66"}},
	}
	f.sessions["T0SIDE"] = map[string][]map[string]any{
		"W0BOB": {{"user_id": "W0BOB", "team_id": "T0SIDE", "session_id": 7002,
			"created": map[string]any{"device_hardware": "Android", "os": "Android", "os_version": "14", "slack_client_version": "24.08", "ip": "198.51.100.20"}}},
		"W0BOT":    {{"user_id": "W0BOT", "team_id": "T0SIDE", "session_id": 6002, "created": map[string]any{"ip": "192.0.2.67"}}},
		"W0CAROL":  {{"user_id": "W0CAROL", "team_id": "T0SIDE", "session_id": 8001, "created": map[string]any{"ip": "203.0.113.30"}}},
		"W0NOMAIL": {{"user_id": "W0NOMAIL", "team_id": "T0SIDE", "session_id": 6003, "created": map[string]any{"ip": "192.0.2.68"}}},
	}
	return f
}

type pair struct {
	User    sessions.User
	Session sessions.Session
}

func pairs(t *testing.T, ss []sessions.Session, us []sessions.User) []pair {
	t.Helper()
	if len(ss) != len(us) {
		t.Fatalf("ListAll returned %d sessions but %d users", len(ss), len(us))
	}
	out := make([]pair, len(ss))
	for i := range ss {
		out[i] = pair{us[i], ss[i]}
	}
	return out
}

var (
	bob   = sessions.User{Provider: Name, ID: "W0BOB", Email: "bob@example.com", Name: "bobby"}
	carol = sessions.User{Provider: Name, ID: "W0CAROL", Email: "carol@example.com", Name: "Carol Danvers"}
)

func TestListAllPairsEverySessionWithItsOwner(t *testing.T) {
	f := orgFake()
	p := serve(t, f, adminToken)
	ss, us, err := p.ListAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Alice's sessions are mapped exactly as ListSessions maps them.
	aliceSessions, err := p.ListSessions(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	var want []pair
	for _, s := range aliceSessions {
		want = append(want, pair{alice, s})
	}
	want = append(want,
		pair{bob, sessions.Session{Provider: Name, ID: "7001", Kind: sessions.KindSession, IP: "203.0.113.20", Device: sessions.Device{OS: "Windows 11", Client: "Slack 4.39.0"}, Active: true}},
		pair{bob, sessions.Session{Provider: Name, ID: "7002", Kind: sessions.KindSession, IP: "198.51.100.20", Device: sessions.Device{OS: "Android 14", Client: "Slack mobile 24.08", Mobile: true}, Active: true}},
		pair{carol, sessions.Session{Provider: Name, ID: "8001", Kind: sessions.KindSession, IP: "203.0.113.30", Active: true}},
	)
	if len(want) != 6 {
		t.Fatalf("ListSessions(alice) gave %d sessions, want 3", len(aliceSessions))
	}
	if diff := cmp.Diff(want, pairs(t, ss, us)); diff != "" {
		t.Errorf("ListAll pairs (-want +got):\n%s", diff)
	}

	// Org-wide: neither team_id nor user_id, and the cursor followed once.
	wantForms := []string{"limit=1000", "cursor=5&limit=1000"}
	if diff := cmp.Diff(wantForms, f.forms["admin.users.session.list"][:2]); diff != "" {
		t.Errorf("org-wide list requests (-want +got):\n%s", diff)
	}
	// Every distinct user asked about once, bob across both pages included.
	// (The ListSessions call above found alice in the cache.)
	wantInfo := []string{"user=W0ALICE", "user=W0BOB", "user=W0BOT", "user=W0CAROL", "user=W0GONE", "user=W0NOMAIL"}
	if diff := cmp.Diff(wantInfo, slices.Sorted(slices.Values(f.forms["users.info"]))); diff != "" {
		t.Errorf("users.info requests (-want +got):\n%s", diff)
	}

	// A second poll asks Slack only about those who were not accounts.
	f.forms["users.info"] = nil
	ss2, us2, err := p.ListAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pairs(t, ss, us), pairs(t, ss2, us2)); diff != "" {
		t.Errorf("second ListAll (-first +second):\n%s", diff)
	}
	wantInfo = []string{"user=W0BOT", "user=W0GONE", "user=W0NOMAIL"}
	if diff := cmp.Diff(wantInfo, slices.Sorted(slices.Values(f.forms["users.info"]))); diff != "" {
		t.Errorf("users.info requests on the second poll (-want +got):\n%s", diff)
	}
}

func TestListAllUsesPeopleFindUserFound(t *testing.T) {
	f := newFake()
	p := serve(t, f, adminToken)
	if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	ss, us, err := p.ListAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 || len(us) != 3 || us[0] != alice {
		t.Errorf("ListAll = %d sessions, users %v; want alice's 3", len(ss), us)
	}
	if n := f.count("users.info"); n != 0 {
		t.Errorf("users.info calls = %d, want 0 (FindUser already knew alice)", n)
	}
}

func TestListAllNoActiveSessionsIsEmpty(t *testing.T) {
	f := newFake()
	f.sessions = map[string]map[string][]map[string]any{}
	p := serve(t, f, adminToken)
	ss, us, err := p.ListAll(t.Context())
	if err != nil {
		t.Fatalf("no_active_sessions: %v, want an empty listing", err)
	}
	if len(ss) != 0 || len(us) != 0 {
		t.Errorf("got %d sessions, %d users; want none", len(ss), len(us))
	}
}

func TestListAllOKFalseIsAnError(t *testing.T) {
	for _, tc := range []struct {
		method, code string
		is           error
	}{
		{"admin.users.session.list", "not_an_admin", sessions.ErrUnauthorized},
		{"admin.users.session.list", "feature_not_enabled", nil},
		{"users.info", "ratelimited", httpclient.ErrThrottled},
	} {
		t.Run(tc.method+"/"+tc.code, func(t *testing.T) {
			f := orgFake()
			f.codes[tc.method] = []string{tc.code}
			p := serve(t, f, adminToken)
			ss, us, err := p.ListAll(t.Context())
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tc.code || ae.Method != tc.method {
				t.Fatalf("err = %v, want the Slack error %s from %s", err, tc.code, tc.method)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want it to match %v", err, tc.is)
			}
			if ss != nil || us != nil {
				t.Errorf("a failed listing returned %d sessions", len(ss))
			}
		})
	}
}

func TestListAllThrottleIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := orgFake()
		f.status["admin.users.session.list"] = []int{http.StatusTooManyRequests}
		f.status["users.info"] = []int{http.StatusTooManyRequests}
		p := inMemory(t, f)
		start := time.Now()
		ss, _, err := p.ListAll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 2*time.Second {
			t.Errorf("listing took %v, want both 1 s Retry-After waits honoured", waited)
		}
		if len(ss) != 6 {
			t.Errorf("got %d sessions, want 6", len(ss))
		}
	})
}

func TestListAllStopsAtPageBound(t *testing.T) {
	f := newFake()
	f.pageSize = 1
	var many []map[string]any
	for i := range maxPages + 5 {
		many = append(many, map[string]any{"user_id": "W0ALICE", "team_id": "T0MAIN", "session_id": 10000 + i, "created": map[string]any{"ip": "192.0.2.1"}})
	}
	f.sessions["T0MAIN"]["W0ALICE"] = many
	var logs bytes.Buffer
	p, err := New(Config{AdminToken: adminToken, HTTP: httpclienttest.Client(f), Rate: rate.Inf,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ss, _, err := p.ListAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count("admin.users.session.list"); n != maxPages {
		t.Errorf("list calls = %d, want the bound %d", n, maxPages)
	}
	if len(ss) != maxPages {
		t.Errorf("got %d sessions, want %d (one a page)", len(ss), maxPages)
	}
	if !strings.Contains(logs.String(), "cut at page bound") {
		t.Errorf("no warning that the listing was cut; log:\n%s", logs.String())
	}
}

// With the default pace, the Tier 4 user lookups do not queue behind the
// Tier 2 admin methods: an org-wide poll resolving many people is not held
// to 20 calls a minute.
func TestUserLookupsArePacedApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := New(Config{AdminToken: adminToken, HTTP: httpclienttest.Client(newFake())})
		if err != nil {
			t.Fatal(err)
		}
		for range defaultBurst { // use up the admin methods' burst
			if err := p.RevokeAll(t.Context(), alice); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		for range usersBurst {
			if _, err := p.FindUser(t.Context(), "alice@example.com"); err != nil {
				t.Fatal(err)
			}
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("%d user lookups waited %v behind the admin methods' pace", usersBurst, waited)
		}
		start = time.Now()
		if err := p.RevokeAll(t.Context(), alice); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 2*time.Second {
			t.Errorf("the admin methods are no longer paced at Tier 2 (waited %v)", waited)
		}
	})
}
