package httpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient/httpclienttest"
)

// answer is one scripted response; netErr means the connection fails.
type answer struct {
	status int
	header map[string]string // set raw, so lowercase names stay lowercase
	body   string
	netErr bool
}

// script serves answers in order, then 200 {"ok":true} forever.
type script struct {
	mu      sync.Mutex
	answers []answer
	calls   int
	at      []time.Time // when each call arrived
	bodies  []string
	headers []http.Header
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	i := s.calls
	s.calls++
	s.at = append(s.at, time.Now())
	s.bodies = append(s.bodies, string(b))
	s.headers = append(s.headers, r.Header.Clone())
	var a answer
	if i < len(s.answers) {
		a = s.answers[i]
	} else {
		a = answer{status: 200, body: `{"ok":true}`}
	}
	s.mu.Unlock()
	if a.netErr {
		panic(http.ErrAbortHandler)
	}
	for k, v := range a.header {
		w.Header()[k] = []string{v}
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func newTestClient(t *testing.T, sig Signal, h http.Handler, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Provider: "acme",
		BaseURL:  "https://idp.example.com",
		HTTP:     httpclienttest.Client(h),
		Rate:     rate.Inf,
		Signal:   sig,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.jitter = func(d time.Duration) time.Duration { return d } // exact waits
	return c
}

// httpDate formats t the way a server's Date header does.
func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// TestRetryTable maps every status and header combination to "retry after X"
// or "give up", measuring the real wait in synctest's fake time.
func TestRetryTable(t *testing.T) {
	// Inside every bubble the clock starts at 2000-01-01 00:00:00 UTC.
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	googleQuotaBody := func(reason string) string {
		return `{"error":{"code":403,"message":"x","errors":[{"domain":"usageLimits","reason":"` + reason + `"}]}}`
	}
	tests := []struct {
		name      string
		signal    Signal
		first     answer
		retry     bool
		wait      time.Duration // when retry
		sentinel  error         // when giving up
		status    int           // when giving up with a StatusError
		throttled bool
	}{
		{name: "429 Retry-After seconds", signal: RetryAfter,
			first: answer{status: 429, header: map[string]string{"Retry-After": "3"}}, retry: true, wait: 3 * time.Second},
		{name: "429 without Retry-After backs off", signal: RetryAfter,
			first: answer{status: 429}, retry: true, wait: 500 * time.Millisecond},
		{name: "429 Retry-After HTTP date", signal: RetryAfter,
			first: answer{status: 429, header: map[string]string{"Retry-After": httpDate(t0.Add(7 * time.Second))}}, retry: true, wait: 7 * time.Second},
		{name: "429 Retry-After HTTP date against a skewed server Date", signal: RetryAfter,
			first: answer{status: 429, header: map[string]string{
				"Date":        httpDate(t0.Add(-100 * time.Second)),
				"Retry-After": httpDate(t0.Add(-95 * time.Second))}}, retry: true, wait: 5 * time.Second},
		{name: "429 Retry-After too long is capped at MaxWait", signal: RetryAfter,
			first: answer{status: 429, header: map[string]string{"Retry-After": "3600"}}, retry: true, wait: 60 * time.Second},
		{name: "429 garbage Retry-After backs off", signal: RetryAfter,
			first: answer{status: 429, header: map[string]string{"Retry-After": "soon"}}, retry: true, wait: 500 * time.Millisecond},
		{name: "Okta reset against the server's Date, not our clock", signal: RateLimitReset,
			first: answer{status: 429, header: map[string]string{
				"Date":               httpDate(t0.Add(100 * time.Second)),
				"X-Rate-Limit-Reset": unix(t0.Add(110 * time.Second))}}, retry: true, wait: 11 * time.Second},
		{name: "Okta reset without Date uses our clock", signal: RateLimitReset,
			first: answer{status: 429, header: map[string]string{"X-Rate-Limit-Reset": unix(t0.Add(4 * time.Second))}}, retry: true, wait: 5 * time.Second},
		{name: "Okta reset already past waits one second", signal: RateLimitReset,
			first: answer{status: 429, header: map[string]string{"Date": httpDate(t0), "X-Rate-Limit-Reset": unix(t0.Add(-30 * time.Second))}}, retry: true, wait: time.Second},
		{name: "Auth0 lowercase x-ratelimit-reset", signal: RateLimitReset,
			first: answer{status: 429, header: map[string]string{
				"date":              httpDate(t0),
				"x-ratelimit-reset": unix(t0.Add(2 * time.Second))}}, retry: true, wait: 3 * time.Second},
		{name: "reset signal honours plain Retry-After", signal: RateLimitReset,
			first: answer{status: 429, header: map[string]string{"Retry-After": "2"}}, retry: true, wait: 2 * time.Second},
		{name: "reset signal with no header backs off", signal: RateLimitReset,
			first: answer{status: 429}, retry: true, wait: 500 * time.Millisecond},
		{name: "Google 403 userRateLimitExceeded backs off", signal: GoogleQuota,
			first: answer{status: 403, body: googleQuotaBody("userRateLimitExceeded")}, retry: true, wait: 500 * time.Millisecond},
		{name: "Google 403 quotaExceeded backs off", signal: GoogleQuota,
			first: answer{status: 403, body: googleQuotaBody("quotaExceeded")}, retry: true, wait: 500 * time.Millisecond},
		{name: "Google 429 backs off", signal: GoogleQuota,
			first: answer{status: 429}, retry: true, wait: 500 * time.Millisecond},
		{name: "Google 429 honours Retry-After", signal: GoogleQuota,
			first: answer{status: 429, header: map[string]string{"Retry-After": "4"}}, retry: true, wait: 4 * time.Second},
		{name: "Google 403 forbidden gives up unauthorized", signal: GoogleQuota,
			first: answer{status: 403, body: googleQuotaBody("forbidden")}, sentinel: sessions.ErrUnauthorized, status: 403},
		{name: "quota body from a non-Google provider gives up", signal: RetryAfter,
			first: answer{status: 403, body: googleQuotaBody("userRateLimitExceeded")}, sentinel: sessions.ErrUnauthorized, status: 403},
		{name: "500 backs off", signal: RetryAfter, first: answer{status: 500}, retry: true, wait: 500 * time.Millisecond},
		{name: "502 backs off", signal: RateLimitReset, first: answer{status: 502}, retry: true, wait: 500 * time.Millisecond},
		{name: "503 honours Retry-After", signal: RetryAfter,
			first: answer{status: 503, header: map[string]string{"Retry-After": "2"}}, retry: true, wait: 2 * time.Second},
		{name: "network error backs off", signal: RetryAfter, first: answer{netErr: true}, retry: true, wait: 500 * time.Millisecond},
		{name: "400 gives up", signal: RetryAfter, first: answer{status: 400, body: `{"error":"invalid_request"}`}, status: 400},
		{name: "401 gives up unauthorized", signal: RateLimitReset, first: answer{status: 401}, sentinel: sessions.ErrUnauthorized, status: 401},
		{name: "404 gives up not found", signal: RateLimitReset, first: answer{status: 404}, sentinel: sessions.ErrNotFound, status: 404},
		{name: "409 gives up", signal: GoogleQuota, first: answer{status: 409}, status: 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{tt.first}}
				c := newTestClient(t, tt.signal, s, nil)
				start := time.Now()
				_, err := c.JSON(t.Context(), http.MethodGet, "/x", nil, nil, nil)
				if tt.retry {
					if err != nil {
						t.Fatalf("want success after a retry, got %v", err)
					}
					if s.count() != 2 {
						t.Fatalf("calls = %d, want 2", s.count())
					}
					if got := s.at[1].Sub(start); got != tt.wait {
						t.Fatalf("retried after %v, want %v", got, tt.wait)
					}
					return
				}
				if s.count() != 1 {
					t.Fatalf("calls = %d, want 1 (no retry)", s.count())
				}
				var se *StatusError
				if !errors.As(err, &se) || se.Status != tt.status {
					t.Fatalf("err = %v, want StatusError %d", err, tt.status)
				}
				if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
					t.Fatalf("err = %v, want errors.Is %v", err, tt.sentinel)
				}
				if tt.sentinel == nil && (errors.Is(err, sessions.ErrUnauthorized) || errors.Is(err, sessions.ErrNotFound)) {
					t.Fatalf("err = %v maps to a sentinel it should not", err)
				}
				if errors.Is(err, ErrThrottled) {
					t.Fatalf("err = %v, should not be throttled", err)
				}
			})
		})
	}
}

func TestThrottledOutAfterMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := answer{status: 429, header: map[string]string{"Retry-After": "1"}, body: `{"errorCode":"E0000047"}`}
		s := &script{answers: []answer{a, a, a, a, a}}
		c := newTestClient(t, RetryAfter, s, func(c *Config) { c.MaxAttempts = 3 })
		start := time.Now()
		_, err := c.JSON(t.Context(), http.MethodGet, "/api/v1/users", nil, nil, nil)
		if !errors.Is(err, ErrThrottled) {
			t.Fatalf("err = %v, want ErrThrottled", err)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Code != "E0000047" || se.Provider != "acme" {
			t.Fatalf("err = %#v, want StatusError with code and provider", se)
		}
		if !strings.Contains(err.Error(), "acme") {
			t.Fatalf("err %q does not name the provider", err)
		}
		if s.count() != 3 {
			t.Fatalf("calls = %d, want 3", s.count())
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Fatalf("took %v, want 2s", got)
		}
	})
}

func TestServerErrorsBackOffExponentially(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := answer{status: 503}
		s := &script{answers: []answer{a, a, a, a}}
		c := newTestClient(t, RetryAfter, s, nil)
		_, err := c.JSON(t.Context(), http.MethodGet, "/x", nil, nil, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 503 || errors.Is(err, ErrThrottled) {
			t.Fatalf("err = %v, want plain StatusError 503", err)
		}
		var gaps []time.Duration
		for i := 1; i < len(s.at); i++ {
			gaps = append(gaps, s.at[i].Sub(s.at[i-1]))
		}
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}
		if diff := cmp.Diff(want, gaps); diff != "" {
			t.Fatalf("waits between attempts (-want +got):\n%s", diff)
		}
	})
}

func TestJitterStaysInRange(t *testing.T) {
	for range 1000 {
		d := equalJitter(time.Second)
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("jitter %v outside [0.5s, 1s]", d)
		}
	}
}

func TestThrottleWaitPastDeadlineGivesUpAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{{status: 429, header: map[string]string{"Retry-After": "30"}}}}
		c := newTestClient(t, RetryAfter, s, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.JSON(ctx, http.MethodGet, "/x", nil, nil, nil)
		if !errors.Is(err, ErrThrottled) {
			t.Fatalf("err = %v, want ErrThrottled", err)
		}
		if got := time.Since(start); got != 0 {
			t.Fatalf("waited %v before giving up, want 0", got)
		}
		if s.count() != 1 {
			t.Fatalf("calls = %d, want 1", s.count())
		}
	})
}

func TestCancelStopsRetries(t *testing.T) {
	t.Run("canceled between attempts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			s := &script{answers: []answer{{status: 503}, {status: 503}, {status: 503}}}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.ServeHTTP(w, r)
				cancel() // the responder gave up while the first attempt ran
			})
			c := newTestClient(t, RetryAfter, h, nil)
			_, err := c.JSON(ctx, http.MethodGet, "/x", nil, nil, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if s.count() != 1 {
				t.Fatalf("calls = %d, want 1", s.count())
			}
		})
	})
	t.Run("canceled during a throttle wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			s := &script{answers: []answer{{status: 429, header: map[string]string{"Retry-After": "30"}}}}
			c := newTestClient(t, RetryAfter, s, nil)
			time.AfterFunc(5*time.Second, cancel)
			start := time.Now()
			_, err := c.JSON(ctx, http.MethodGet, "/x", nil, nil, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if got := time.Since(start); got != 5*time.Second {
				t.Fatalf("returned after %v, want 5s (when canceled)", got)
			}
			if s.count() != 1 {
				t.Fatalf("calls = %d, want 1", s.count())
			}
		})
	})
}

func TestPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		c := newTestClient(t, RetryAfter, s, func(c *Config) { c.Rate = 2 })
		start := time.Now()
		for range 5 {
			if _, err := c.JSON(t.Context(), http.MethodGet, "/x", nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		// Burst 1 at 2/s: the 5th request goes out 2 s after the first.
		if got := time.Since(start); got != 2*time.Second {
			t.Fatalf("5 paced requests took %v, want 2s", got)
		}
	})
}

func TestFormBodyReplayedAndHeadersApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{{status: 502}, {status: 429, header: map[string]string{
			"Retry-After": "1", "X-Okta-Request-Id": "req-1"}}}}
		c := newTestClient(t, RateLimitReset, s, func(c *Config) {
			c.Header = http.Header{"Authorization": {"SSWS tok-123456"}}
		})
		var out struct{ OK bool }
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"a b"}}
		if _, err := c.Form(t.Context(), "/oauth/token", form, &out); err != nil {
			t.Fatal(err)
		}
		if !out.OK {
			t.Fatal("answer not decoded")
		}
		want := []string{form.Encode(), form.Encode(), form.Encode()}
		if diff := cmp.Diff(want, s.bodies); diff != "" {
			t.Fatalf("bodies per attempt (-want +got):\n%s", diff)
		}
		for i, h := range s.headers {
			if h.Get("Authorization") != "SSWS tok-123456" {
				t.Fatalf("attempt %d: Authorization = %q", i, h.Get("Authorization"))
			}
			if h.Get("Content-Type") != "application/x-www-form-urlencoded" {
				t.Fatalf("attempt %d: Content-Type = %q", i, h.Get("Content-Type"))
			}
		}
		if got := s.headers[2].Get("X-Okta-Retry-For"); got != "req-1" {
			t.Fatalf("X-Okta-Retry-For = %q, want req-1", got)
		}
	})
}

func TestJSONRequestAndLinks(t *testing.T) {
	var got []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.String()+" "+r.Header.Get("Content-Type")+" "+string(b))
		w.Header().Set("Link", `<https://idp.example.com/api/v1/logs?after=abc>; rel="next"`)
		io.WriteString(w, `{"id":"u1"}`)
	})
	c := newTestClient(t, RetryAfter, h, func(c *Config) { c.BaseURL = "https://idp.example.com/base/" })
	var out struct{ ID string }
	hdr, err := c.JSON(t.Context(), http.MethodPost, "/api/users", url.Values{"q": {"a b"}}, map[string]string{"k": "v"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != "u1" || hdr.Get("Link") == "" {
		t.Fatalf("out = %+v, link %q", out, hdr.Get("Link"))
	}
	// An absolute link on the same host is followed; query merges.
	if _, err := c.JSON(t.Context(), http.MethodGet, "https://idp.example.com/api/v1/logs?after=abc", url.Values{"limit": {"5"}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`POST https://idp.example.com/base/api/users?q=a+b application/json {"k":"v"}`,
		`GET https://idp.example.com/api/v1/logs?after=abc&limit=5  `,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}
	// A link to another host would carry our credentials away: refused.
	_, err = c.JSON(t.Context(), http.MethodGet, "https://evil.example.net/steal?x=1", nil, nil, nil)
	if err == nil || len(got) != 2 {
		t.Fatalf("foreign link: err = %v, requests %d", err, len(got))
	}
}

func TestErrorCodeShapes(t *testing.T) {
	tests := map[string]string{
		`{"errorCode":"E0000007","errorSummary":"Not found: Resource not found: x (User)"}`:                         "E0000007",
		`{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}`: "inexistent_user",
		`{"statusCode":400,"error":"Bad Request","message":"Query validation error"}`:                               "Bad Request",
		`{"error":"invalid_grant","error_description":"bad secret s3cr3t"}`:                                         "invalid_grant",
		`{"error":{"code":403,"errors":[{"reason":"forbidden"}],"status":"PERMISSION_DENIED"}}`:                     "forbidden",
		`{"error":{"code":404,"message":"x","status":"NOT_FOUND"}}`:                                                 "NOT_FOUND",
		`{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}`:                      "Authorization_RequestDenied",
		`{"ok":false,"error":"invalid_auth"}`:                                                                       "invalid_auth",
		`{"error":"<script>alert(1)</script>"}`:                                                                     "",
		`not json`:                                                                                                  "",
	}
	for body, want := range tests {
		if got := errorCode([]byte(body)); got != want {
			t.Errorf("errorCode(%s) = %q, want %q", body, got, want)
		}
	}
}

// chain lists the messages of err and everything it wraps.
func chain(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		out = append(out, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// leakyTransport fails like a careless proxy would: quoting the request.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var b []byte
	if r.Body != nil {
		b, _ = io.ReadAll(r.Body)
	}
	return nil, fmt.Errorf("proxy refused %s with %s and body %s", r.URL, r.Header.Get("Authorization"), b)
}

func TestNoSecretInErrors(t *testing.T) {
	const (
		headerToken  = "SSWS-tok-00c0ffee"
		clientSecret = "cs-deadbeef-4242"
		queryToken   = "qt-feedface-1717"
		password     = "pw-cafebabe-9999"
	)
	secrets := []string{headerToken, clientSecret, queryToken, password}
	// The fake echoes every secret it can see into its error body.
	echo := func(status int, extra map[string]string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			for k, v := range extra {
				w.Header().Set(k, v)
			}
			w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"errorCode":"E1","errorSummary":"%s %s %s"}`, r.Header.Get("Authorization"), r.URL.RawQuery, b)
		})
	}
	cases := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"401 echoing body", httpclienttest.Transport{Handler: echo(401, nil)}},
		{"400 echoing body", httpclienttest.Transport{Handler: echo(400, nil)}},
		{"throttled out", httpclienttest.Transport{Handler: echo(429, map[string]string{"Retry-After": "1"})}},
		{"5xx out", httpclienttest.Transport{Handler: echo(500, nil)}},
		{"network error", httpclienttest.FailFirst(100, nil)},
		{"leaky transport", leakyTransport{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestClient(t, RetryAfter, nil, func(c *Config) {
					c.HTTP = &http.Client{Transport: tc.rt}
					c.Header = http.Header{"Authorization": {"SSWS " + headerToken}}
				})
				var errs []error
				_, err := c.Form(t.Context(), "/oauth/token?token="+queryToken,
					url.Values{"client_id": {"warden"}, "client_secret": {clientSecret}}, nil)
				errs = append(errs, err)
				_, err = c.JSON(t.Context(), http.MethodGet, "/api/v1/users", url.Values{"token": {queryToken}}, nil, nil)
				errs = append(errs, err)
				req, _ := http.NewRequest(http.MethodGet, "https://admin:"+password+"@idp.example.com/x?token="+queryToken, nil)
				_, err = c.Do(t.Context(), req)
				errs = append(errs, err)
				for i, err := range errs {
					if err == nil {
						t.Fatalf("call %d: want an error", i)
					}
					for _, msg := range chain(err) {
						for _, s := range secrets {
							if strings.Contains(msg, s) {
								t.Fatalf("call %d: error leaks %q: %s", i, s, msg)
							}
						}
					}
				}
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, base := range []string{"", "ftp://x", "https://u:p@x", "https://x?token=1", "/relative"} {
		if _, err := New(Config{BaseURL: base}); err == nil {
			t.Errorf("New(%q) accepted", base)
		} else if strings.Contains(err.Error(), "token=1") || strings.Contains(err.Error(), "u:p") {
			t.Errorf("New(%q) error leaks the url: %v", base, err)
		}
	}
	if _, err := New(Config{BaseURL: "https://x.example.com"}); err != nil {
		t.Errorf("zero config with a base url: %v", err)
	}
}

func TestGoogleQuotaOutIsThrottledNotUnauthorized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := answer{status: 403, body: `{"error":{"errors":[{"reason":"userRateLimitExceeded"}]}}`}
		s := &script{answers: []answer{a, a, a, a}}
		c := newTestClient(t, GoogleQuota, s, nil)
		_, err := c.JSON(t.Context(), http.MethodGet, "/x", nil, nil, nil)
		if !errors.Is(err, ErrThrottled) || errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want throttled and not unauthorized", err)
		}
		if s.count() != 4 {
			t.Fatalf("calls = %d, want 4", s.count())
		}
	})
}

func TestNextLink(t *testing.T) {
	tests := map[string]string{
		`<https://x/api/v1/logs?after=1>; rel="self", <https://x/api/v1/logs?after=2,3>; rel="next"`: "https://x/api/v1/logs?after=2,3",
		`<https://x/a?page=2>; rel=next`:        "https://x/a?page=2",
		`<https://x/a?page=1>; rel="self"`:      "",
		`<https://x/a?page=9>; rel="last next"`: "https://x/a?page=9",
		``:                                      "",
		`garbage`:                               "",
	}
	for v, want := range tests {
		h := http.Header{}
		if v != "" {
			h.Set("Link", v)
		}
		if got := NextLink(h); got != want {
			t.Errorf("NextLink(%q) = %q, want %q", v, got, want)
		}
	}
}
