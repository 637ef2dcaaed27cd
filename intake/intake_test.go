package intake

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	sink := (&recorder{}).sink(-1, nil)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no sink", Config{GenericSecret: genericSecret}, ErrNoSink},
		{"no endpoints", Config{Sink: sink}, ErrNoEndpoints},
		{"short secret", Config{Sink: sink, GenericSecret: genericSecret, OktaSecret: "short"}, ErrWeakSecret},
		{"negative max body", Config{Sink: sink, Auth0Token: auth0Token, MaxBody: -1}, ErrBadMaxBody},
		{"ok", Config{Sink: sink, Auth0Token: auth0Token}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New error = %v, want %v", err, tt.want)
			}
			if err == nil && (h.maxBody != DefaultMaxBody || h.now == nil || h.log == nil) {
				t.Errorf("defaults not applied: maxBody=%d", h.maxBody)
			}
		})
	}
}

// TestDisabledEndpointsAreAbsent: an endpoint with no secret is not served.
func TestDisabledEndpointsAreAbsent(t *testing.T) {
	s := newServer(t, nil, func(c *Config) { c.OktaSecret, c.Auth0Token = "", "" })
	for _, p := range []string{PathOkta, PathAuth0} {
		if r := s.do(t, "POST", p, "", "[]"); r.status != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, r.status)
		}
	}
	if r := s.do(t, "POST", PathGeneric, "Bearer "+genericSecret, `{"events":[]}`); r.status != 200 {
		t.Errorf("generic endpoint: %d, want 200", r.status)
	}
}

// TestSecretsNeverLogged drives every endpoint through success and refusal
// and checks that no secret appears in a log line or a response.
func TestSecretsNeverLogged(t *testing.T) {
	s := newServer(t, nil, nil)
	var bodies []string
	for _, c := range []struct{ method, path, auth, body string }{
		{"POST", PathGeneric, "Bearer " + genericSecret, genericEv("")},
		{"POST", PathGeneric, "Bearer " + genericSecret + "-wrong", genericEv("")},
		{"POST", PathGeneric, "Bearer " + genericSecret, `{"events":[{"email":"x"}]}`},
		{"POST", PathGeneric, oktaSecret, genericEv("")},
		{"GET", PathOkta, oktaSecret, ""},
		{"POST", PathOkta, oktaSecret + "-wrong", "{}"},
		{"POST", PathOkta, oktaSecret, "{}"},
		{"POST", PathAuth0, auth0Token, "[]"},
		{"POST", PathAuth0, "Bearer " + auth0Token + "-wrong", "[]"},
		{"POST", PathAuth0, auth0Token, "[{}]"},
	} {
		r := s.do(t, c.method, c.path, c.auth, c.body, "X-Okta-Verification-Challenge", "chal")
		bodies = append(bodies, r.body)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "bad or missing secret") || !strings.Contains(logs, `"reason"`) {
		t.Fatalf("expected refusal log lines, got:\n%s", logs)
	}
	for _, secret := range []string{genericSecret, oktaSecret, auth0Token} {
		if strings.Contains(logs, secret) {
			t.Errorf("secret %q appears in logs:\n%s", secret, logs)
		}
		for _, b := range bodies {
			if strings.Contains(b, secret) {
				t.Errorf("secret %q appears in response %s", secret, b)
			}
		}
	}
	st := s.h.Stats()
	if st[SourceGeneric].Unauthorized != 2 || st[SourceOkta].Unauthorized != 1 || st[SourceAuth0].Unauthorized != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestNormalizeIdempotent: a normalized event passes normalize unchanged.
func TestNormalizeIdempotent(t *testing.T) {
	b, err := decodeGeneric([]byte(`{"events":[`+genericEv(`,"ip":"::ffff:10.0.0.1","country":"de","user_agent":"`+macChrome+`"`)+`]}`), testNow)
	if err != nil {
		t.Fatal(err)
	}
	ev := b.events[0]
	again := ev
	if err := normalize(&again, testNow); err != nil || again != ev {
		t.Errorf("normalize changed a normalized event: %v\n%+v\n%+v", err, ev, again)
	}
	if ev.IP != "10.0.0.1" || ev.Country != "DE" || ev.Time.Location() != time.UTC {
		t.Errorf("not canonical: %+v", ev)
	}
}

func TestValidEmail(t *testing.T) {
	good := []string{"a@b.co", "first.last+tag@sub.example.com", "o'neil@example.ie", "x_y-z@ex-ample.org"}
	bad := []string{"", "a", "@b.co", "a@", "a@b", "a@@b.co", "a@b..co", ".a@b.co", "a.@b.co", "a..b@c.co",
		"a b@c.co", `"a"@b.co`, "a@-b.co", "a@b-.co", "a@[1.2.3.4]", "ä@b.co", "a@b.co\n", "A@b.co",
		strings.Repeat("a", 65) + "@b.co", "a@" + strings.Repeat("b", 64) + ".co"}
	for _, s := range good {
		if !validEmail(s) {
			t.Errorf("validEmail(%q) = false, want true", s)
		}
	}
	for _, s := range bad {
		if validEmail(s) {
			t.Errorf("validEmail(%q) = true, want false", s)
		}
	}
}
