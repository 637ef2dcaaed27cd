package intake

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/warden-sec/warden/sessions"
)

// Fuzzers for the three decoders. Seeds live in testdata/fuzz/Fuzz*/ (run by
// plain `go test`) plus the f.Add calls below. Run one with, e.g.:
//
//	go test ./intake -run '^$' -fuzz '^FuzzOkta$' -fuzztime 20s
//
// Each fuzzer takes a raw body and, separately, field values (email, ip, user
// agent, time) that are JSON-escaped into a well-formed provider payload, so
// mutations explore both the JSON parser and the field validation.
//
// The property: a decoder never panics; it returns either an error wrapping
// ErrInvalid and no events, or events that each pass validation again
// unchanged.

func FuzzGeneric(f *testing.F) {
	f.Add([]byte(`{"events":[`+genericEv(`,"ip":"203.0.113.7","user_agent":"`+macChrome+`","country":"PT"`)+`]}`), "ana@example.com", "203.0.113.7", macChrome, ts(-time.Hour))
	f.Add([]byte(genericEv("")), "A@B.CO", "::ffff:1.2.3.4", "", ts(0))
	f.Add([]byte(`{"events":[]}`), "a@b", "fe80::1%eth0", "curl/8.4.0", "2025-05-01 11:00:00")
	f.Add([]byte(`{"events":[{"email":"a@b.co","type":"login","time":"2025-05-01T11:00:00.123+02:00","ip":"::ffff:1.2.3.4"}]}`), "", "", "", "")
	f.Fuzz(func(t *testing.T, body []byte, email, ip, ua, when string) {
		b, err := decodeGeneric(body, testNow)
		checkDecoded(t, b, err)
		built := `{"events":[{"id":"e1","type":"login","email":` + js(email) + `,"ip":` + js(ip) +
			`,"user_agent":` + js(ua) + `,"time":` + js(when) + `,"location":` + js(ua) + `}]}`
		b, err = decodeGeneric([]byte(built), testNow)
		checkDecoded(t, b, err)
	})
}

func FuzzOkta(f *testing.F) {
	f.Add([]byte(oktaHook(oktaEvent("e1", "user.session.start", "SUCCESS", "ana@example.com", ""))), "ana@example.com", "198.51.100.4", winEdge, ts(-time.Minute))
	f.Add([]byte(oktaHook(oktaEvent("e3", "user.account.reset_password", "SUCCESS", "admin@example.com",
		`,"target":[{"id":"00u7","type":"User","alternateId":"bo@example.com"}]`))), "Bo@Example.com", "2001:db8::1", "UNKNOWN-DOWNLOAD", ts(0))
	f.Add([]byte(`{"data":{"events":[]}}`), "bo", "1.2.3", "", "yesterday")
	f.Fuzz(func(t *testing.T, body []byte, email, ip, ua, when string) {
		b, err := decodeOkta(body, testNow)
		checkDecoded(t, b, err)
		built := `{"data":{"events":[{"uuid":"u1","eventType":"user.session.start","outcome":{"result":"SUCCESS"},` +
			`"published":` + js(when) + `,"actor":{"id":"00u1","type":"User","alternateId":` + js(email) + `},` +
			`"client":{"ipAddress":` + js(ip) + `,"userAgent":{"rawUserAgent":` + js(ua) + `,"os":` + js(ua) + `,"browser":` + js(ua) + `},` +
			`"geographicalContext":{"city":` + js(ua) + `,"country":` + js(email) + `}}}]}}`
		b, err = decodeOkta([]byte(built), testNow)
		checkDecoded(t, b, err)
	})
}

func FuzzAuth0(f *testing.F) {
	f.Add([]byte("["+auth0Log("900a", "s", "dev@test.com", `,"location_info":{"country_code":"AU","city_name":"Sydney"}`)+"]"), "dev@test.com", "114.76.60.57", firefoxLinux, ts(-time.Minute))
	f.Add([]byte(auth0Log("900c", "scp", "dev@test.com", "")+"\n"+auth0Log("900d", "fp", "x", "")), "x@y.z", "::1", "Chrome 120.0.0 / Mac OS X 10.15.7", ts(0))
	f.Add([]byte(`[{"log_id":"1","data":{"type":"s","date":"2025-05-01T11:59:00Z","user_name":"a@b.co","user_agent":"Chrome 120.0.0 / Mac OS X 10.15.7"}}]`), "", "", " / ", "")
	f.Fuzz(func(t *testing.T, body []byte, email, ip, ua, when string) {
		b, err := decodeAuth0(body, testNow)
		checkDecoded(t, b, err)
		built := `[{"log_id":"l1","data":{"type":"s","date":` + js(when) + `,"user_name":` + js(email) +
			`,"user_id":"auth0|1","ip":` + js(ip) + `,"user_agent":` + js(ua) +
			`,"details":{"session_id":` + js(ua) + `},"location_info":{"city_name":` + js(ua) + `,"country_code":` + js(ip) + `}}}]`
		b, err = decodeAuth0([]byte(built), testNow)
		checkDecoded(t, b, err)
	})
}

// js JSON-encodes s as a string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkDecoded asserts the decoder property on one result.
func checkDecoded(t *testing.T, b batch, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not wrap ErrInvalid: %v", err)
		}
		if len(err.Error()) > 120 {
			t.Fatalf("reason too long (%d bytes): %q", len(err.Error()), err)
		}
		if len(b.events) != 0 {
			t.Fatalf("error with %d events", len(b.events))
		}
		return
	}
	if b.ignored < 0 {
		t.Fatalf("ignored = %d", b.ignored)
	}
	for i, ev := range b.events {
		again := ev
		if err := normalize(&again, testNow); err != nil {
			t.Fatalf("event %d accepted but invalid: %v (%+v)", i, err, ev)
		}
		if again != ev {
			t.Fatalf("event %d not in normal form:\n%+v\n%+v", i, ev, again)
		}
		checkEvent(t, ev)
	}
}

// checkEvent restates the validation rules independently of normalize.
func checkEvent(t *testing.T, ev sessions.LoginEvent) {
	t.Helper()
	local, domain, ok := strings.Cut(ev.Email, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || ev.Email != strings.ToLower(ev.Email) ||
		strings.ContainsAny(ev.Email, " <>\"\r\n") || strings.Count(ev.Email, "@") != 1 {
		t.Fatalf("accepted email %q", ev.Email)
	}
	for _, f := range []struct {
		val string
		max int
	}{{ev.ID, 200}, {ev.Provider, 200}, {ev.UserID, 200}, {ev.SessionID, 200}, {ev.UserAgent, 512}, {ev.Location, 128}, {ev.Email, 254}} {
		if !utf8.ValidString(f.val) || utf8.RuneCountInString(f.val) > f.max {
			t.Fatalf("accepted field of %d runes (max %d): %q", utf8.RuneCountInString(f.val), f.max, f.val)
		}
	}
	for _, d := range []string{ev.Device.OS, ev.Device.Browser, ev.Device.Client} {
		if utf8.RuneCountInString(d) > 64 {
			t.Fatalf("device field too long: %q", d)
		}
	}
	if ev.Provider == "" || ev.Type == "" {
		t.Fatalf("accepted event without provider or type: %+v", ev)
	}
	if ev.Time.After(testNow.Add(5*time.Minute)) || ev.Time.Before(testNow.Add(-30*24*time.Hour)) {
		t.Fatalf("accepted time %v", ev.Time)
	}
	if ev.IP != "" {
		if a, err := netip.ParseAddr(ev.IP); err != nil || a.String() != ev.IP {
			t.Fatalf("accepted ip %q", ev.IP)
		}
	}
	if ev.Country != "" && (len(ev.Country) != 2 || ev.Country != strings.ToUpper(ev.Country)) {
		t.Fatalf("accepted country %q", ev.Country)
	}
}
