package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"

	"golang.org/x/oauth2"

	"github.com/warden-sec/warden/sessions"
)

// tokenCache fetches an access token once and hands it out until it expires.
// Fetches honour the caller's context and never run concurrently.
type tokenCache struct {
	fetch func(ctx context.Context) (*oauth2.Token, error)
	sem   chan struct{} // a one-slot lock that a waiting caller can abandon
	tok   atomic.Pointer[oauth2.Token]
}

func newTokenCache(fetch func(ctx context.Context) (*oauth2.Token, error)) *tokenCache {
	return &tokenCache{fetch: fetch, sem: make(chan struct{}, 1)}
}

// token returns a valid cached token or fetches a new one. Its errors carry
// no secret and wrap sessions.ErrUnauthorized when the credentials were refused.
func (c *tokenCache) token(ctx context.Context) (*oauth2.Token, error) {
	if t := c.tok.Load(); t.Valid() {
		return t, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("get token: %w", ctx.Err())
	}
	defer func() { <-c.sem }()
	if t := c.tok.Load(); t.Valid() {
		return t, nil // another caller fetched it while we waited
	}
	t, err := c.fetch(ctx)
	if err != nil {
		return nil, tokenError(ctx, err)
	}
	if t == nil || t.AccessToken == "" {
		return nil, errors.New("get token: empty access token")
	}
	c.tok.Store(t)
	return t, nil
}

// forget drops the cached token so the next call fetches a fresh one; it is
// called when the API refuses the token.
func (c *tokenCache) forget() { c.tok.Store(nil) }

// current returns the cached access token, or "", for redaction.
func (c *tokenCache) current() string {
	if t := c.tok.Load(); t != nil {
		return t.AccessToken
	}
	return ""
}

var safeCode = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

// tokenError turns an oauth2 error into one that names no secret and no
// response body: only the status and a well-formed OAuth error code survive.
func tokenError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("get token: %w", ctx.Err())
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := ""
		if safeCode.MatchString(re.ErrorCode) {
			code = " " + re.ErrorCode
		}
		if status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden {
			return fmt.Errorf("get token: status %d%s: %w", status, code, sessions.ErrUnauthorized)
		}
		return fmt.Errorf("get token: status %d%s", status, code)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("get token: %w", ue.Err)
	}
	return errors.New("get token: token endpoint answered unexpectedly")
}

// bearerTransport adds the cached token to requests bound for the API's own
// origin, and to no other: a redirect elsewhere goes out without it.
type bearerTransport struct {
	tokens *tokenCache
	origin string // scheme://host of the API
	base   http.RoundTripper
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme+"://"+req.URL.Host != t.origin {
		return t.base.RoundTrip(req)
	}
	tok, err := t.tokens.token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", tok.Type()+" "+tok.AccessToken)
	return t.base.RoundTrip(r)
}

// origin returns scheme://host of u.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// transportOf returns hc's transport, or the default one.
func transportOf(hc *http.Client) http.RoundTripper {
	if hc != nil && hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

// redactedError hides the text of an error that quotes a credential (a
// hostile or broken server can echo one into an error code) while keeping
// errors.Is and errors.As working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err, or a redacted copy of it when its text contains one of
// secrets.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	dirty := false
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			dirty = true
		}
	}
	if !dirty {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
