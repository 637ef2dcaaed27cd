package httpclient

import (
	"context"
	"encoding/json"
	"errors"
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
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient/httpclienttest"
)

const (
	idpSecret = "cs-deadbeef-4242"
	idpOrigin = "https://idp.example.com"
)

// idp is an OAuth client-credentials token endpoint (POST /oauth/token,
// RFC 6749 §4.4 and §5.2 error bodies) plus an API that wants the latest
// token it issued. Scripted answers come first; api, when set, answers API
// calls that carried a valid token.
type idp struct {
	mu        sync.Mutex
	ttl       int           // expires_in of issued tokens
	tokenErrs []answer      // scripted token endpoint answers
	gate      chan struct{} // when set, the token endpoint waits for it to close
	issued    int
	valid     string // the token the API accepts; "" after a revocation
	tokenHits int
	apiHits   int
	auth      map[string][]string // host → Authorization values seen
	api       func(w http.ResponseWriter, r *http.Request)
}

func newIDP() *idp { return &idp{ttl: 3600, auth: map[string][]string{}} }

func (f *idp) token(n int) string { return "atok-5e5e5e5e-" + strconv.Itoa(n) }

func (f *idp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/token" {
		f.serveToken(w, r)
		return
	}
	f.mu.Lock()
	f.apiHits++
	f.auth[r.URL.Host] = append(f.auth[r.URL.Host], r.Header.Get("Authorization"))
	ok := f.valid != "" && r.Header.Get("Authorization") == "Bearer "+f.valid
	api := f.api
	f.mu.Unlock()
	if r.URL.Host != "idp.example.com" || r.URL.Path == "/landing" {
		io.WriteString(w, `{"elsewhere":true}`)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_token"}`)
		return
	}
	if api != nil {
		api(w, r)
		return
	}
	io.WriteString(w, `{"ok":true}`)
}

func (f *idp) serveToken(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	f.tokenHits++
	gate := f.gate
	var scripted *answer
	if len(f.tokenErrs) > 0 {
		scripted = &f.tokenErrs[0]
		f.tokenErrs = f.tokenErrs[1:]
	}
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	w.Header().Set("Content-Type", "application/json")
	if scripted != nil {
		w.WriteHeader(scripted.status)
		io.WriteString(w, scripted.body)
		return
	}
	if secret := r.PostForm.Get("client_secret"); secret != idpSecret {
		// A careless server quotes the secret, even as the error code.
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": secret, "error_description": "bad secret " + secret})
		return
	}
	f.mu.Lock()
	f.issued++
	f.valid = f.token(f.issued)
	tok := f.valid
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": f.ttl})
}

func (f *idp) hits() (token, api int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenHits, f.apiHits
}

// tokenClient returns a Client for f that authenticates with secret.
func tokenClient(t *testing.T, f *idp, secret string, mod func(*Config)) *Client {
	t.Helper()
	hc := httpclienttest.Client(f)
	cc := &clientcredentials.Config{
		ClientID: "warden", ClientSecret: secret,
		TokenURL: idpOrigin + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams,
	}
	return newTestClient(t, RetryAfter, nil, func(c *Config) {
		c.BaseURL = idpOrigin
		c.HTTP = hc
		c.Tokens = ClientCredentials(cc, hc)
		if mod != nil {
			mod(c)
		}
	})
}

func TestTokenFetchedOnceForConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIDP()
		f.gate = make(chan struct{})
		c := tokenClient(t, f, idpSecret, nil)
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait() // one caller is at the token endpoint, four wait for it
		if tok, api := f.hits(); tok != 1 || api != 0 {
			t.Fatalf("while fetching: token requests %d, api requests %d; want 1, 0", tok, api)
		}
		close(f.gate)
		wg.Wait()
		for range 3 {
			if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if tok, api := f.hits(); tok != 1 || api != 8 {
			t.Fatalf("token requests %d, api requests %d; want 1, 8", tok, api)
		}
	})
}

func TestExpiredTokenIsRefetched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIDP()
		f.ttl = 60
		c := tokenClient(t, f, idpSecret, nil)
		if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second) // fake time: the token is still good
		if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // fake time: now it has expired
		if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		if tok, _ := f.hits(); tok != 2 {
			t.Fatalf("token requests = %d, want 2", tok)
		}
	})
}

func TestUnauthorizedDropsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIDP()
		c := tokenClient(t, f, idpSecret, nil)
		if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		// The provider restarted and forgot every token, long before expiry.
		f.mu.Lock()
		f.valid = ""
		f.mu.Unlock()
		_, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil)
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		if strings.Contains(err.Error(), f.token(1)) {
			t.Fatalf("error quotes the token: %v", err)
		}
		if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
			t.Fatalf("call after the 401: %v", err)
		}
		if tok, api := f.hits(); tok != 2 || api != 3 {
			t.Fatalf("token requests %d, api requests %d; want 2 (refetch after 401), 3 (401 not retried)", tok, api)
		}
	})
}

func TestTokenOnlyForOwnOrigin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIDP()
		f.api = func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/api/away":
				http.Redirect(w, r, "https://elsewhere.example.net/landing", http.StatusFound)
			case "/api/downgrade":
				http.Redirect(w, r, "http://idp.example.com/landing", http.StatusFound)
			case "/api/here":
				http.Redirect(w, r, "/api/x", http.StatusFound)
			default:
				io.WriteString(w, `{"ok":true}`)
			}
		}
		c := tokenClient(t, f, idpSecret, nil)
		for _, p := range []string{"/api/away", "/api/downgrade", "/api/here"} {
			if _, err := c.JSON(t.Context(), http.MethodGet, p, nil, nil, nil); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
		bearer := "Bearer " + f.token(1)
		want := map[string][]string{
			"idp.example.com":       {bearer, bearer, "", bearer, bearer}, // away, downgrade, its http landing, here, its landing
			"elsewhere.example.net": {""},
		}
		if diff := cmp.Diff(want, f.auth); diff != "" {
			t.Fatalf("Authorization per host (-want +got):\n%s", diff)
		}
	})
}

func TestRefusedCredentialsAreNotRetriedNorQuoted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIDP()
		wrong := "cs-WRONG-0badf00d"
		c := tokenClient(t, f, wrong, nil)
		_, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil)
		if !errors.Is(err, sessions.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		for _, msg := range chain(err) {
			if strings.Contains(msg, wrong) || strings.Contains(msg, "bad secret") {
				t.Fatalf("error quotes the token endpoint's echo: %s", msg)
			}
		}
		if tok, api := f.hits(); tok != 1 || api != 0 {
			t.Fatalf("token requests %d, api requests %d; want 1, 0", tok, api)
		}
		// Called directly, the source says the same.
		_, err = c.tokens.Token(t.Context())
		if !errors.Is(err, sessions.ErrUnauthorized) || strings.Contains(err.Error(), wrong) {
			t.Fatalf("Token() = %v, want ErrUnauthorized without the secret", err)
		}
	})
}

func TestTokenEndpointOutageIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIDP()
		f.tokenErrs = []answer{{status: 503, body: `{"error":"temporarily_unavailable"}`}}
		c := tokenClient(t, f, idpSecret, nil)
		if _, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil); err != nil {
			t.Fatalf("call after a token endpoint 503: %v", err)
		}
		if tok, api := f.hits(); tok != 2 || api != 1 {
			t.Fatalf("token requests %d, api requests %d; want 2, 1", tok, api)
		}
	})
}

func TestWaitingForTokenHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIDP()
		f.gate = make(chan struct{})
		c := tokenClient(t, f, idpSecret, nil)
		first := make(chan error, 1)
		go func() {
			_, err := c.JSON(t.Context(), http.MethodGet, "/api/x", nil, nil, nil)
			first <- err
		}()
		synctest.Wait() // the first caller is at the token endpoint
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := c.JSON(ctx, http.MethodGet, "/api/x", nil, nil, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("waiting caller: err = %v, want context.Canceled", err)
		}
		close(f.gate)
		if err := <-first; err != nil {
			t.Fatalf("first caller: %v", err)
		}
	})
}

// TestErrorCodeQuotingACredentialIsDropped has the server echo a credential
// the request carried as its error code: the code must not reach the error.
func TestErrorCodeQuotingACredentialIsDropped(t *testing.T) {
	const (
		apiKey    = "ak-0badc0de-7777"
		queryVal  = "qv-feedface-1717"
		jsonVal   = "jb-c0ffee00-2323"
		formVal   = "fv-abad1dea-5151"
		tokenPart = "5e5e5e5e-1" // the tail of the bearer token
	)
	f := newIDP()
	bearer := f.token(1)
	jsonCall := func(c *Client, ctx context.Context) error {
		_, err := c.JSON(ctx, http.MethodPost, "/api/x", url.Values{"q": {queryVal}}, map[string]string{"note": jsonVal}, nil)
		return err
	}
	formCall := func(c *Client, ctx context.Context) error {
		_, err := c.Form(ctx, "/api/x", url.Values{"password": {formVal}}, nil)
		return err
	}
	tests := []struct {
		name   string
		echo   string
		call   func(*Client, context.Context) error
		want   string // the code kept
		secret string // must not appear in the error
	}{
		{"client secret", idpSecret, jsonCall, "", idpSecret},
		{"client secret upper-cased", strings.ToUpper(idpSecret), jsonCall, "", strings.ToUpper(idpSecret)},
		{"client secret inside a code", "bad_" + idpSecret, jsonCall, "", idpSecret},
		{"bearer token", bearer, jsonCall, "", bearer},
		{"authorization header", "Bearer " + bearer, jsonCall, "", bearer},
		{"truncated bearer token", tokenPart, jsonCall, "", tokenPart},
		{"static header", apiKey, jsonCall, "", apiKey},
		{"query value", queryVal, jsonCall, "", queryVal},
		{"json body value", jsonVal, jsonCall, "", jsonVal},
		{"form body value", formVal, formCall, "", formVal},
		{"too long", strings.Repeat("a", 65), jsonCall, "", strings.Repeat("a", 65)},
		{"odd characters", "x<script>", jsonCall, "", "<script>"},
		{"ordinary code is kept", "invalid_request", jsonCall, "invalid_request", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newIDP()
				f.api = func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(http.StatusBadRequest)
					json.NewEncoder(w).Encode(map[string]string{"error": tc.echo})
				}
				c := tokenClient(t, f, idpSecret, func(c *Config) {
					c.Header = http.Header{"X-Api-Key": {apiKey}}
					c.Rate = rate.Inf
				})
				err := tc.call(c, t.Context())
				var se *StatusError
				if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
					t.Fatalf("err = %v, want a 400 StatusError", err)
				}
				if se.Code != tc.want {
					t.Errorf("Code = %q, want %q", se.Code, tc.want)
				}
				if tc.secret != "" {
					for _, msg := range chain(err) {
						if strings.Contains(strings.ToLower(msg), strings.ToLower(tc.secret)) {
							t.Fatalf("error quotes %q: %s", tc.secret, msg)
						}
					}
				}
			})
		})
	}
}
