package intake

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/warden-sec/warden/sessions"
)

const winEdge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"

// oktaEvent builds a System Log LogEvent as Okta documents it.
func oktaEvent(uuid, eventType, result, actor string, extra string) string {
	return `{
	"version": "0", "severity": "INFO", "displayMessage": "x",
	"uuid": "` + uuid + `", "published": "` + ts(-10*time.Minute) + `", "eventType": "` + eventType + `",
	"outcome": {"result": "` + result + `"},
	"actor": {"id": "00u1", "type": "User", "alternateId": "` + actor + `", "displayName": "Ana"},
	"client": {"zone": "OFF_NETWORK", "device": "Computer", "ipAddress": "198.51.100.4",
		"userAgent": {"os": "Windows 10", "browser": "EDGE", "rawUserAgent": "` + winEdge + `"},
		"geographicalContext": {"city": "Porto", "state": "Porto", "country": "Portugal", "postalCode": "4000",
			"geolocation": {"lat": 41.1, "lon": -8.6}}},
	"authenticationContext": {"authenticationStep": 0, "externalSessionId": "102abcSESSION"},
	"transaction": {"type": "WEB", "id": "V04Oy4"},
	"legacyEventType": "core.user_auth.login_success"` + extra + `}`
}

func oktaHook(events ...string) string {
	return `{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","cloudEventsVersion":"0.1",
	"contentType":"application/json","eventId":"b5a188b9","eventTime":"` + ts(0) + `",
	"source":"https://example.okta.com/api/v1/eventHooks/who1","data":{"events":[` + strings.Join(events, ",") + `]}}`
}

func TestOktaVerification(t *testing.T) {
	tests := []struct {
		name, auth, challenge string
		wantStatus            int
		wantBody              string
	}{
		{name: "answered", auth: oktaSecret, challenge: "X6ZqMUS2vXhE4GWAfeVpBrRq", wantStatus: 200, wantBody: `{"verification":"X6ZqMUS2vXhE4GWAfeVpBrRq"}`},
		{name: "no auth", challenge: "X6ZqMUS2vXhE4GWAfeVpBrRq", wantStatus: 401, wantBody: `{"error":"unauthorized"}`},
		{name: "wrong auth", auth: "Bearer " + oktaSecret, challenge: "abc", wantStatus: 401, wantBody: `{"error":"unauthorized"}`},
		{name: "no challenge", auth: oktaSecret, wantStatus: 400, wantBody: `{"error":"missing X-Okta-Verification-Challenge"}`},
		{name: "challenge too long", auth: oktaSecret, challenge: strings.Repeat("a", 513), wantStatus: 400, wantBody: `{"error":"challenge too long"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, nil, nil)
			var hdr []string
			if tt.challenge != "" {
				hdr = []string{"X-Okta-Verification-Challenge", tt.challenge}
			}
			r := s.do(t, "GET", PathOkta, tt.auth, nil, hdr...)
			if r.status != tt.wantStatus || r.body != tt.wantBody {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == 200 && r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
			}
		})
	}
}

func TestOktaEvents(t *testing.T) {
	adminReset := oktaEvent("e3", "user.account.reset_password", "SUCCESS", "admin@example.com",
		`,"target":[{"id":"0oa9","type":"AppInstance","alternateId":"app"},{"id":"00u7","type":"User","alternateId":"Bo@Example.com"}]`)
	body := oktaHook(
		oktaEvent("e1", "user.session.start", "SUCCESS", "Ana@Example.com", ""),
		oktaEvent("e2", "user.session.start", "FAILURE", "ana@example.com", ""),
		adminReset,
		oktaEvent("e4", "user.mfa.factor.activate", "SUCCESS", "ana@example.com", ""),
		oktaEvent("e5", "user.lifecycle.create", "SUCCESS", "not-an-email", ""), // ignored: untracked type
		oktaEvent("e6", "user.account.update_secondary_email", "SUCCESS", "ana@example.com", ""),
		oktaEvent("e7", "user.account.update_password", "SUCCESS", "ana@example.com", ""),
		// An ignored event is not decoded beyond its type, so odd fields cannot fail the batch.
		`{"uuid":"e8","eventType":"policy.evaluate_sign_on","outcome":{"result":"ALLOW"},"client":"n/a","published":1}`,
	)
	s := newServer(t, nil, nil)
	r := s.do(t, "POST", PathOkta, oktaSecret, body)
	if r.status != 200 || r.body != "" {
		t.Fatalf("got %d %q, want 200 with an empty body", r.status, r.body)
	}
	base := sessions.LoginEvent{
		Provider: "okta", Email: "ana@example.com", UserID: "00u1", SessionID: "102abcSESSION",
		Time: testNow.Add(-10 * time.Minute), IP: "198.51.100.4", UserAgent: winEdge,
		Device: sessions.ParseUserAgent(winEdge), Location: "Porto, Portugal",
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
		ev("e1", sessions.EventLogin, nil),
		ev("e3", sessions.EventPasswordChanged, func(e *sessions.LoginEvent) { e.Email, e.UserID = "bo@example.com", "00u7" }),
		ev("e4", sessions.EventMFAAdded, nil),
		ev("e6", sessions.EventRecoveryChanged, nil),
		ev("e7", sessions.EventPasswordChanged, nil),
	}
	if diff := cmp.Diff(want, s.rec.got()); diff != "" {
		t.Errorf("sink got (-want +got):\n%s", diff)
	}
	if want[0].Device.OS == "" {
		t.Error("device was not parsed")
	}
	if st := s.h.Stats()[SourceOkta]; st.Accepted != 5 || st.Ignored != 3 {
		t.Errorf("Stats = %+v, want 5 accepted, 3 ignored", st)
	}
}

func TestOktaDeviceFallsBackToOktaFields(t *testing.T) {
	e := strings.Replace(oktaEvent("e1", "user.session.start", "SUCCESS", "ana@example.com", ""), winEdge, "UNKNOWN-DOWNLOAD", 1)
	s := newServer(t, nil, nil)
	if r := s.do(t, "POST", PathOkta, oktaSecret, oktaHook(e)); r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	got := s.rec.got()
	if len(got) != 1 || got[0].Device.OS != "Windows 10" {
		t.Errorf("got %+v, want OS from client.userAgent.os", got)
	}
}

func TestOktaRefused(t *testing.T) {
	good := oktaEvent("e1", "user.session.start", "SUCCESS", "ana@example.com", "")
	tests := []struct {
		name, method, auth, body string
		wantStatus               int
		wantErr                  string
	}{
		{name: "no auth", body: oktaHook(good), wantStatus: 401, wantErr: "unauthorized"},
		{name: "wrong auth", auth: "x" + oktaSecret, body: oktaHook(good), wantStatus: 401, wantErr: "unauthorized"},
		{name: "PUT", method: "PUT", auth: oktaSecret, body: oktaHook(good), wantStatus: 405, wantErr: "method not allowed"},
		{name: "no data", auth: oktaSecret, body: `{"eventType":"com.okta.event_hook"}`, wantStatus: 400, wantErr: "missing data.events"},
		{name: "event not an object", auth: oktaSecret, body: oktaHook(good, `"x"`), wantStatus: 400, wantErr: "data.events[1]: wrong json type"},
		{name: "tracked event with odd field", auth: oktaSecret, body: oktaHook(good, strings.Replace(good, `"ipAddress": "198.51.100.4"`, `"ipAddress": 7`, 1)), wantStatus: 400, wantErr: "data.events[1]: wrong json type for client.ipAddress"},
		{name: "malformed", auth: oktaSecret, body: `{"data":{"events":[}`, wantStatus: 400, wantErr: "malformed json"},
		{name: "login as non-email", auth: oktaSecret, body: oktaHook(good, oktaEvent("e2", "user.session.start", "SUCCESS", "ana", "")), wantStatus: 400, wantErr: "data.events[1]: email is not an email address"},
		{name: "bad published", auth: oktaSecret, body: oktaHook(good, strings.Replace(good, ts(-10*time.Minute), "yesterday", 1)), wantStatus: 400, wantErr: "data.events[1]: time is not RFC 3339"},
		{name: "bad ip", auth: oktaSecret, body: oktaHook(good, strings.Replace(good, "198.51.100.4", "198.51.100", 1)), wantStatus: 400, wantErr: "data.events[1]: ip is not an IP address"},
		{name: "old event", auth: oktaSecret, body: oktaHook(good, strings.Replace(good, ts(-10*time.Minute), ts(-40*24*time.Hour), 1)), wantStatus: 400, wantErr: "data.events[1]: time is older than 30 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, nil, nil)
			r := s.refused(t, tt.method, PathOkta, tt.auth, tt.body, tt.wantStatus, tt.wantErr)
			if tt.wantStatus == 405 && r.header.Get("Allow") != "GET, POST" {
				t.Errorf("Allow = %q", r.header.Get("Allow"))
			}
		})
	}
}

func TestOktaSinkError(t *testing.T) {
	s := newServer(t, func(r *recorder) Sink { return r.sink(0, errors.New("store closed")) }, nil)
	r := s.do(t, "POST", PathOkta, oktaSecret, oktaHook(oktaEvent("e1", "user.session.start", "SUCCESS", "ana@example.com", "")))
	if r.status != 503 {
		t.Fatalf("got %d %s, want 503", r.status, r.body)
	}
}
