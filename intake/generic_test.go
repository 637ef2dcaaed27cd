package intake

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/warden-sec/warden/sessions"
)

const macChrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

func genericEv(fields string) string {
	return `{"id":"evt-1","provider":"vpn","type":"login","email":"Ana@Example.com","time":"` + ts(-time.Hour) + `"` + fields + `}`
}

func TestGenericAccepted(t *testing.T) {
	batch := `{"events":[` +
		`{"id":"evt-1","provider":"vpn","type":"login","email":" Ana@Example.com ","user_id":"u1","session_id":"s1",` +
		`"time":"` + testNow.Add(-time.Hour).In(time.FixedZone("CEST", 2*3600)).Format(time.RFC3339) + `",` +
		`"ip":"::ffff:203.0.113.7","user_agent":"` + macChrome + `","location":"Lisbon, PT","country":"pt"},` +
		`{"id":"evt-2","type":"mfa_added","email":"bo@example.org","time":"` + ts(4*time.Minute) + `"}` +
		`]}`
	single := genericEv(`,"ip":"2001:db8::1"`)

	tests := []struct {
		name, body, wantBody string
		want                 []sessions.LoginEvent
	}{
		{
			name:     "batch",
			body:     batch,
			wantBody: `{"accepted":2,"ignored":0}`,
			want: []sessions.LoginEvent{
				{
					ID: "evt-1", Provider: "vpn", Type: sessions.EventLogin, Email: "ana@example.com",
					UserID: "u1", SessionID: "s1", Time: testNow.Add(-time.Hour), IP: "203.0.113.7",
					UserAgent: macChrome, Device: sessions.ParseUserAgent(macChrome),
					Location: "Lisbon, PT", Country: "PT",
				},
				{ID: "evt-2", Provider: "generic", Type: sessions.EventMFAAdded, Email: "bo@example.org", Time: testNow.Add(4 * time.Minute)},
			},
		},
		{
			name:     "single object",
			body:     single,
			wantBody: `{"accepted":1,"ignored":0}`,
			want: []sessions.LoginEvent{
				{ID: "evt-1", Provider: "vpn", Type: sessions.EventLogin, Email: "ana@example.com", Time: testNow.Add(-time.Hour), IP: "2001:db8::1"},
			},
		},
		{
			name:     "empty list",
			body:     `{"events":[]}`,
			wantBody: `{"accepted":0,"ignored":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, nil, nil)
			r := s.do(t, "POST", PathGeneric, "Bearer "+genericSecret, tt.body)
			if r.status != 200 || r.body != tt.wantBody {
				t.Fatalf("got %d %s, want 200 %s", r.status, r.body, tt.wantBody)
			}
			if diff := cmp.Diff(tt.want, s.rec.got()); diff != "" {
				t.Errorf("sink got (-want +got):\n%s", diff)
			}
			if tt.want != nil && tt.want[0].Device.Browser == "" && tt.name == "batch" {
				t.Error("device was not parsed from the user agent")
			}
			if got := s.h.Stats()[SourceGeneric].Accepted; got != uint64(len(tt.want)) {
				t.Errorf("Stats.Accepted = %d, want %d", got, len(tt.want))
			}
		})
	}
}

// TestGenericRefused: every refusal answers the right status with a short
// JSON reason and hands nothing to the sink, even the valid events of the
// same batch.
func TestGenericRefused(t *testing.T) {
	good := genericEv("")
	batchWith := func(bad string) string { return `{"events":[` + good + `,` + bad + `]}` }
	long := func(n int) string { return strings.Repeat("a", n) }

	tests := []struct {
		name, method, auth string
		body               any
		maxBody            int64
		wantStatus         int
		wantErr            string
	}{
		{name: "no auth", auth: "", body: good, wantStatus: 401, wantErr: "unauthorized"},
		{name: "wrong secret", auth: "Bearer " + genericSecret + "x", body: good, wantStatus: 401, wantErr: "unauthorized"},
		{name: "secret without scheme", auth: genericSecret, body: good, wantStatus: 401, wantErr: "unauthorized"},
		{name: "basic scheme", auth: "Basic " + genericSecret, body: good, wantStatus: 401, wantErr: "unauthorized"},
		{name: "okta secret on generic", auth: "Bearer " + oktaSecret, body: good, wantStatus: 401, wantErr: "unauthorized"},
		{name: "GET", method: "GET", wantStatus: 405, wantErr: "method not allowed"},
		{name: "PUT", method: "PUT", body: good, wantStatus: 405, wantErr: "method not allowed"},
		{name: "too large with length", body: batchWith(genericEv(`,"location":"` + long(100) + `"`)), maxBody: 200, wantStatus: 413, wantErr: "body too large"},
		{name: "too large chunked", body: strings.NewReader(batchWith(good)), maxBody: 200, wantStatus: 413, wantErr: "body too large"},
		{name: "malformed json", body: `{"events":[`, wantStatus: 400, wantErr: "truncated json"},
		{name: "not json", body: `hello`, wantStatus: 400, wantErr: "malformed json"},
		{name: "trailing data", body: good + ` {}`, wantStatus: 400, wantErr: "trailing data after json"},
		{name: "wrong type", body: `{"events":{}}`, wantStatus: 400, wantErr: "wrong json type for events"},
		{name: "unknown field", body: batchWith(genericEv(`,"emial":"x@y.z"`)), wantStatus: 400, wantErr: `unknown field "emial"`},
		{name: "unknown top-level field", body: `{"events":[` + good + `],"extra":1}`, wantStatus: 400, wantErr: `unknown field "extra"`},
		{name: "events and fields", body: `{"events":[` + good + `],"email":"a@b.co"}`, wantStatus: 400, wantErr: "both events and top-level event fields"},
		{name: "empty object", body: `{}`, wantStatus: 400, wantErr: "no events"},
		{name: "missing email", body: batchWith(`{"type":"login","time":"` + ts(0) + `"}`), wantStatus: 400, wantErr: "events[1]: missing email"},
		{name: "email not an email", body: batchWith(genericEv(`,"email":"ana at example.com"`)), wantStatus: 400, wantErr: "events[1]: email is not an email address"},
		{name: "email without domain dot", body: batchWith(genericEv(`,"email":"ana@localhost"`)), wantStatus: 400, wantErr: "events[1]: email is not an email address"},
		{name: "email with display name", body: batchWith(genericEv(`,"email":"Ana <ana@example.com>"`)), wantStatus: 400, wantErr: "events[1]: email is not an email address"},
		{name: "missing time", body: batchWith(`{"type":"login","email":"a@b.co"}`), wantStatus: 400, wantErr: "events[1]: missing time"},
		{name: "time not RFC 3339", body: batchWith(genericEv(`,"time":"2025-05-01 11:00:00"`)), wantStatus: 400, wantErr: "events[1]: time is not RFC 3339"},
		{name: "time as unix number", body: batchWith(genericEv(`,"time":1746097200`)), wantStatus: 400, wantErr: "wrong json type for events.time"},
		{name: "time too far ahead", body: batchWith(genericEv(`,"time":"` + ts(6*time.Minute) + `"`)), wantStatus: 400, wantErr: "events[1]: time is in the future"},
		{name: "time too old", body: batchWith(genericEv(`,"time":"` + ts(-31*24*time.Hour) + `"`)), wantStatus: 400, wantErr: "events[1]: time is older than 30 days"},
		{name: "bad ip", body: batchWith(genericEv(`,"ip":"300.1.1.1"`)), wantStatus: 400, wantErr: "events[1]: ip is not an IP address"},
		{name: "ip with zone", body: batchWith(genericEv(`,"ip":"fe80::1%eth0"`)), wantStatus: 400, wantErr: "events[1]: ip is not an IP address"},
		{name: "ip with port", body: batchWith(genericEv(`,"ip":"203.0.113.7:443"`)), wantStatus: 400, wantErr: "events[1]: ip is not an IP address"},
		{name: "id too long", body: batchWith(genericEv(`,"id":"` + long(201) + `"`)), wantStatus: 400, wantErr: "events[1]: id longer than 200 characters"},
		{name: "user_id too long", body: batchWith(genericEv(`,"user_id":"` + long(201) + `"`)), wantStatus: 400, wantErr: "events[1]: user_id longer than 200 characters"},
		{name: "session_id too long", body: batchWith(genericEv(`,"session_id":"` + long(201) + `"`)), wantStatus: 400, wantErr: "events[1]: session_id longer than 200 characters"},
		{name: "user agent too long", body: batchWith(genericEv(`,"user_agent":"` + long(513) + `"`)), wantStatus: 400, wantErr: "events[1]: user_agent longer than 512 characters"},
		{name: "location too long", body: batchWith(genericEv(`,"location":"` + long(129) + `"`)), wantStatus: 400, wantErr: "events[1]: location longer than 128 characters"},
		{name: "control character", body: batchWith(genericEv(`,"location":"Berlin\u001b[31m"`)), wantStatus: 400, wantErr: "events[1]: location has invalid characters"},
		{name: "unknown type", body: batchWith(genericEv(`,"type":"logout"`)), wantStatus: 400, wantErr: "events[1]: unknown type"},
		{name: "missing type", body: batchWith(`{"email":"a@b.co","time":"` + ts(0) + `"}`), wantStatus: 400, wantErr: "events[1]: missing type"},
		{name: "bad country", body: batchWith(genericEv(`,"country":"Portugal"`)), wantStatus: 400, wantErr: "events[1]: country is not a two-letter code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, nil, func(c *Config) { c.MaxBody = tt.maxBody })
			auth := tt.auth
			if auth == "" && tt.wantStatus != 401 {
				auth = "Bearer " + genericSecret
			}
			r := s.refused(t, tt.method, PathGeneric, auth, tt.body, tt.wantStatus, tt.wantErr)
			switch tt.wantStatus {
			case 405:
				if got := r.header.Get("Allow"); got != "POST" {
					t.Errorf("Allow = %q, want POST", got)
				}
			case 401:
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if st := s.h.Stats()[SourceGeneric]; st.Unauthorized != 1 {
					t.Errorf("Stats = %+v, want one unauthorized", st)
				}
			case 400, 413:
				if st := s.h.Stats()[SourceGeneric]; st.Rejected != 1 {
					t.Errorf("Stats = %+v, want one rejected", st)
				}
			}
		})
	}
}

// TestGenericSinkError: a failing sink answers 503 so the sender retries; the
// events before the failure were handed over once (the sink de-duplicates).
func TestGenericSinkError(t *testing.T) {
	s := newServer(t, func(r *recorder) Sink { return r.sink(1, errors.New("disk full")) }, nil)
	body := `{"events":[` + genericEv("") + `,` + strings.Replace(genericEv(""), "evt-1", "evt-2", 1) + `]}`
	r := s.do(t, "POST", PathGeneric, "Bearer "+genericSecret, body)
	if r.status != 503 || r.body != `{"error":"temporarily unavailable"}` {
		t.Fatalf("got %d %s, want 503", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After on 503")
	}
	if got := s.rec.got(); len(got) != 1 || got[0].ID != "evt-1" {
		t.Errorf("sink got %+v, want only evt-1", got)
	}
	if st := s.h.Stats()[SourceGeneric]; st.SinkErrors != 1 || st.Accepted != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestSinkSeesRequestContext: the sink runs with the request's context, so a
// sender hanging up cancels it.
func TestSinkSeesRequestContext(t *testing.T) {
	gotCtx := make(chan error, 1)
	s := newServer(t, func(*recorder) Sink {
		return &fakeSink{HandleEventFn: func(ctx context.Context, _ sessions.LoginEvent) error {
			gotCtx <- ctx.Err()
			return nil
		}}
	}, nil)
	r := s.do(t, "POST", PathGeneric, "Bearer "+genericSecret, genericEv(""))
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	select {
	case err := <-gotCtx:
		if err != nil {
			t.Errorf("sink context already done: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sink never called")
	}
}

// TestDocExample: the example in the package comment and README.md works.
func TestDocExample(t *testing.T) {
	body := `{"events":[{"id":"evt-1","provider":"vpn","type":"login","email":"ana@example.com",
	       "time":"2025-05-01T09:30:00Z","ip":"203.0.113.7","location":"Lisbon, PT","country":"PT"}]}`
	s := newServer(t, nil, nil)
	if r := s.do(t, "POST", PathGeneric, "Bearer "+genericSecret, body); r.status != 200 || r.body != `{"accepted":1,"ignored":0}` {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	want := []sessions.LoginEvent{{ID: "evt-1", Provider: "vpn", Type: sessions.EventLogin, Email: "ana@example.com",
		Time: time.Date(2025, 5, 1, 9, 30, 0, 0, time.UTC), IP: "203.0.113.7", Location: "Lisbon, PT", Country: "PT"}}
	if diff := cmp.Diff(want, s.rec.got()); diff != "" {
		t.Errorf("sink got (-want +got):\n%s", diff)
	}
}
