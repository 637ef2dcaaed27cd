package intake

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/warden-sec/warden/sessions"
)

const firefoxLinux = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:93.0) Gecko/20100101 Firefox/93.0"

// auth0Log builds one log stream item as Auth0 sends it.
func auth0Log(id, typ, user, extra string) string {
	return `{"log_id":"` + id + `","data":{
	"date":"` + ts(-2*time.Minute) + `","type":"` + typ + `","connection":"Username-Password-Authentication",
	"connection_id":"con_1a5w","client_id":"aI61","client_name":"Default App","ip":"114.76.60.57",
	"user_agent":"` + firefoxLinux + `",
	"details":{"prompts":[],"initiatedAt":1635984900418,"session_id":"m5SgtzMK","stats":{"loginsCount":4}},
	"hostname":"dev-yoj8axza.au.auth0.com","user_id":"auth0|6182","user_name":"` + user + `",
	"strategy":"auth0","strategy_type":"database","log_id":"` + id + `"` + extra + `}}`
}

func TestAuth0Events(t *testing.T) {
	loc := `,"location_info":{"country_code":"AU","country_code3":"AUS","country_name":"Australia","city_name":"Sydney","latitude":-33.8,"longitude":151.2,"time_zone":"Australia/Sydney","continent_code":"OC"}`
	items := []string{
		auth0Log("900a", "s", "Dev@Test.com", loc),
		auth0Log("900b", "fp", "dev@test.com", ""), // wrong password: ignored
		auth0Log("900c", "scp", "dev@test.com", ""),
		auth0Log("900d", "gd_enrollment_complete", "dev@test.com", ""),
		`{"log_id":"900e","data":{"type":"slo","ip":["odd"],"user_name":"not an email"}}`, // logout: ignored, never decoded further
		auth0Log("900f", "sce", "dev@test.com", ""),
		strings.Replace(auth0Log("9010", "s", "dev@test.com", ""), firefoxLinux, "Chrome 120.0.0 / Mac OS X 10.15.7", 1),
	}
	base := sessions.LoginEvent{
		Provider: "auth0", Email: "dev@test.com", UserID: "auth0|6182", SessionID: "m5SgtzMK",
		Time: testNow.Add(-2 * time.Minute), IP: "114.76.60.57", UserAgent: firefoxLinux,
		Device: sessions.ParseUserAgent(firefoxLinux),
	}
	ev := func(id string, typ sessions.EventType, mod func(*sessions.LoginEvent)) sessions.LoginEvent {
		e := base
		e.ID, e.Type = id, typ
		if mod != nil {
			mod(&e)
		}
		return e
	}
	want := []sessions.LoginEvent{
		ev("900a", sessions.EventLogin, func(e *sessions.LoginEvent) { e.Location, e.Country = "Sydney, AU", "AU" }),
		ev("900c", sessions.EventPasswordChanged, nil),
		ev("900d", sessions.EventMFAAdded, nil),
		ev("900f", sessions.EventRecoveryChanged, nil),
		ev("9010", sessions.EventLogin, func(e *sessions.LoginEvent) {
			e.UserAgent = "Chrome 120.0.0 / Mac OS X 10.15.7"
			e.Device = sessions.Device{OS: "macOS", Browser: "Chrome 120"}
		}),
	}
	formats := map[string]string{
		"json array": "[" + strings.Join(items, ",") + "]",
		"json lines": strings.Join(items, "\n") + "\n",
	}
	for _, auth := range []string{auth0Token, "Bearer " + auth0Token} {
		for name, body := range formats {
			t.Run(name+"/"+map[bool]string{true: "bearer", false: "bare"}[strings.HasPrefix(auth, "Bearer ")], func(t *testing.T) {
				s := newServer(t, nil, nil)
				r := s.do(t, "POST", PathAuth0, auth, body)
				if r.status != 200 || r.body != `{"accepted":5,"ignored":2}` {
					t.Fatalf("got %d %s", r.status, r.body)
				}
				if diff := cmp.Diff(want, s.rec.got()); diff != "" {
					t.Errorf("sink got (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestAuth0Refused(t *testing.T) {
	good := auth0Log("900a", "s", "dev@test.com", "")
	arr := func(items ...string) string { return "[" + strings.Join(items, ",") + "]" }
	tests := []struct {
		name, method, auth, body string
		maxBody                  int64
		wantStatus               int
		wantErr                  string
	}{
		{name: "no auth", body: arr(good), wantStatus: 401, wantErr: "unauthorized"},
		{name: "wrong token", auth: "Bearer " + auth0Token[1:], body: arr(good), wantStatus: 401, wantErr: "unauthorized"},
		{name: "generic secret", auth: "Bearer " + genericSecret, body: arr(good), wantStatus: 401, wantErr: "unauthorized"},
		{name: "GET", method: "GET", auth: auth0Token, wantStatus: 405, wantErr: "method not allowed"},
		{name: "too large", auth: auth0Token, body: arr(good, good, good), maxBody: 1024, wantStatus: 413, wantErr: "body too large"},
		{name: "empty", auth: auth0Token, body: "  ", wantStatus: 400, wantErr: "empty body"},
		{name: "malformed", auth: auth0Token, body: `[{"log_id":"1","data":{]`, wantStatus: 400, wantErr: "malformed json"},
		{name: "missing data", auth: auth0Token, body: arr(good, `{"log_id":"2"}`), wantStatus: 400, wantErr: "logs[1]: missing data"},
		{name: "data not an object", auth: auth0Token, body: arr(good, `{"log_id":"2","data":"s"}`), wantStatus: 400, wantErr: "logs[1]: wrong json type"},
		{name: "tracked record with odd field", auth: auth0Token, body: arr(good, strings.Replace(good, `"ip":"114.76.60.57"`, `"ip":7`, 1)), wantStatus: 400, wantErr: "logs[1]: wrong json type for ip"},
		{name: "missing email", auth: auth0Token, body: arr(good, auth0Log("2", "s", "", "")), wantStatus: 400, wantErr: "logs[1]: missing email"},
		{name: "bad ip", auth: auth0Token, body: arr(good, strings.Replace(good, "114.76.60.57", "bad", 1)), wantStatus: 400, wantErr: "logs[1]: ip is not an IP address"},
		{name: "future date", auth: auth0Token, body: arr(good, strings.Replace(good, ts(-2*time.Minute), ts(time.Hour), 1)), wantStatus: 400, wantErr: "logs[1]: time is in the future"},
		{name: "user agent too long", auth: auth0Token, body: arr(good, strings.Replace(good, firefoxLinux, strings.Repeat("x", 600), 1)), wantStatus: 400, wantErr: "logs[1]: user_agent longer than 512 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, nil, func(c *Config) { c.MaxBody = tt.maxBody })
			s.refused(t, tt.method, PathAuth0, tt.auth, tt.body, tt.wantStatus, tt.wantErr)
		})
	}
}

func TestAuth0SinkError(t *testing.T) {
	s := newServer(t, func(r *recorder) Sink { return r.sink(0, errors.New("busy")) }, nil)
	r := s.do(t, "POST", PathAuth0, auth0Token, "["+auth0Log("1", "s", "dev@test.com", "")+"]")
	if r.status != 503 {
		t.Fatalf("got %d %s, want 503", r.status, r.body)
	}
}

func TestParseAuth0UA(t *testing.T) {
	tests := []struct {
		in   string
		want sessions.Device
		ok   bool
	}{
		{"Chrome 120.0.0 / Mac OS X 10.15.7", sessions.Device{OS: "macOS", Browser: "Chrome 120"}, true},
		{"Chrome 114.0.0 / Windows 10.0.0", sessions.Device{OS: "Windows 10", Browser: "Chrome 114"}, true},
		{"Mobile Safari 17.1.0 / iOS 17.1.1", sessions.Device{OS: "iOS 17", Browser: "Mobile Safari 17", Mobile: true}, true},
		{"Other 0.0.0 / Other 0.0.0", sessions.Device{OS: "Other", Browser: "Other"}, true},
		{firefoxLinux, sessions.Device{}, false},
		{"curl/8.4.0", sessions.Device{}, false},
	}
	for _, tt := range tests {
		got, ok := parseAuth0UA(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseAuth0UA(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
