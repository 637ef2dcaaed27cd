package httpclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/warden-sec/warden/sessions"
)

// TokenSource hands out one OAuth access token until it expires. It fetches
// on first use, lets only one caller fetch at a time (the others wait for
// that token, or give up when their context ends), and drops the token when
// the API answers 401 with it, so that the next request fetches a fresh one.
//
// Plug it into a Client with Config.Tokens: the Client then attaches the
// token to requests for BaseURL's origin only, and keeps it (and the
// source's secrets) out of every error. It is safe for concurrent use.
type TokenSource struct {
	fetch   func(ctx context.Context) (*oauth2.Token, error)
	secrets []string      // what fetch uses that no error may quote
	sem     chan struct{} // a one-slot lock that a waiting caller can abandon
	tok     atomic.Pointer[oauth2.Token]
}

// NewTokenSource returns a TokenSource that gets tokens from fetch, which
// must honour ctx. secrets are the credentials fetch uses (a client secret,
// a private key and its id): no error of the source, or of a Client using
// it, quotes them, and no provider error code containing one is kept.
func NewTokenSource(fetch func(ctx context.Context) (*oauth2.Token, error), secrets ...string) *TokenSource {
	s := &TokenSource{fetch: fetch, sem: make(chan struct{}, 1)}
	for _, v := range secrets {
		s.secrets = appendSecret(s.secrets, v)
		// A key file's lines can be echoed one at a time.
		if strings.Contains(v, "\n") {
			for line := range strings.Lines(v) {
				s.secrets = appendSecret(s.secrets, line)
			}
		}
	}
	return s
}

// ClientCredentials returns a TokenSource for the OAuth client credentials
// grant described by cc, whose token requests go through hc (nil: the
// default client). hc must not be a client that itself attaches these
// tokens. cc.ClientSecret is kept out of errors.
func ClientCredentials(cc *clientcredentials.Config, hc *http.Client) *TokenSource {
	return NewTokenSource(func(ctx context.Context) (*oauth2.Token, error) {
		if hc != nil {
			ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
		}
		return cc.Token(ctx)
	}, cc.ClientSecret)
}

// Token returns the cached token while it is valid, or fetches a new one.
// Its errors quote no secret and no response body; they wrap
// sessions.ErrUnauthorized when the token endpoint refused the credentials
// (400, 401 or 403).
func (s *TokenSource) Token(ctx context.Context) (*oauth2.Token, error) {
	if t := s.tok.Load(); t.Valid() {
		return t, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("get token: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if t := s.tok.Load(); t.Valid() {
		return t, nil // another caller fetched it while we waited
	}
	t, err := s.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("get token: %w", s.fetchError(ctx, err))
	}
	if t == nil || t.AccessToken == "" {
		return nil, errors.New("get token: empty access token")
	}
	s.tok.Store(t)
	return t, nil
}

// invalidate drops t if it is still the cached token: the API refused it.
// A token another caller fetched since is kept.
func (s *TokenSource) invalidate(t *oauth2.Token) { s.tok.CompareAndSwap(t, nil) }

// fetchError turns an error of fetch into one that names no secret and no
// response body.
func (s *TokenSource) fetchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return retrieveError(re, s.secrets)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return scrub(ue.Err, s.secrets)
	}
	// oauth2 and jwt errors may quote the answer or the key.
	return errors.New("token endpoint answered unexpectedly")
}

// tokenError is a token endpoint's non-2xx answer: only its status and a
// safe error code survive.
type tokenError struct {
	status int
	code   string
}

func (e *tokenError) Error() string {
	return strings.TrimSpace(fmt.Sprintf("token endpoint: status %d %s", e.status, e.code))
}

// Unwrap reports refused credentials as sessions.ErrUnauthorized.
func (e *tokenError) Unwrap() error {
	switch e.status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return sessions.ErrUnauthorized
	}
	return nil
}

func retrieveError(re *oauth2.RetrieveError, secrets []string) *tokenError {
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	return &tokenError{status: status, code: safeCode(re.ErrorCode, secrets)}
}

// tokenKey carries the token Client.Do chose for an attempt to the
// transport, so that the attempt, its redirects and its error handling all
// agree on one token.
type tokenKey struct{}

// bearerTransport adds the source's token to requests bound for the API's
// own origin, and to no other: a redirect elsewhere goes out without it.
type bearerTransport struct {
	tokens *TokenSource
	origin string // scheme://host of the API
	base   http.RoundTripper
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if origin(req.URL) != t.origin {
		return t.base.RoundTrip(req)
	}
	tok, _ := req.Context().Value(tokenKey{}).(*oauth2.Token)
	if tok == nil {
		var err error
		if tok, err = t.tokens.Token(req.Context()); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", tok.Type()+" "+tok.AccessToken)
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.tokens.invalidate(tok)
	}
	return resp, err
}

// withTokens returns a client like hc whose requests to base's origin carry
// the source's token.
func withTokens(hc *http.Client, tokens *TokenSource, base *url.URL) *http.Client {
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &http.Client{
		Transport:     &bearerTransport{tokens: tokens, origin: origin(base), base: rt},
		CheckRedirect: hc.CheckRedirect,
		Jar:           hc.Jar,
		Timeout:       hc.Timeout,
	}
}

// origin returns scheme://host of u.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// safeCode returns a provider error code when it is short, made of a
// conservative charset and quotes none of secrets (nor is a long piece of
// one, as a truncated echo would be); otherwise "".
func safeCode(code string, secrets []string) string {
	code = cleanCode(code)
	if code == "" {
		return ""
	}
	lc := strings.ToLower(code)
	for _, s := range secrets {
		ls := strings.ToLower(s)
		if strings.Contains(lc, ls) || len(lc) >= minEchoLen && strings.Contains(ls, lc) {
			return ""
		}
	}
	return code
}

// minEchoLen is the shortest code that is dropped for being part of a
// secret: shorter ones ("E1", "invalid") match too much by chance.
const minEchoLen = 8
