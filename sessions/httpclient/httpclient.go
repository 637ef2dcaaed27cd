// Package httpclient is the one HTTP layer every identity-provider connector
// goes through: pacing, retries with jittered backoff, and each provider's own
// throttle signal. No credential ever appears in an error it returns.
//
// Errors returned by Client:
//
//   - *StatusError for a final non-2xx answer. errors.Is(err,
//     sessions.ErrUnauthorized) holds for 401 and for 403 that is not a quota
//     signal; errors.Is(err, sessions.ErrNotFound) holds for 404.
//   - ErrThrottled (joined with the last *StatusError) when the provider kept
//     throttling until the attempts ran out, or when its wait would pass the
//     context deadline.
//   - the context's error when ctx ends before or between attempts.
//   - a transport error, stripped of the URL's query string and userinfo and
//     of every credential the request carried.
//   - a token error from Config.Tokens, which wraps sessions.ErrUnauthorized
//     when the token endpoint refused the credentials.
//
// A provider error code (StatusError.Code) is kept only when it is short,
// made of a conservative charset, and quotes no credential the request
// carried: a hostile or broken server cannot echo a secret into an error.
package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
)

// Signal names how a provider says "slow down".
type Signal int

const (
	RetryAfter     Signal = iota // 429 + Retry-After seconds (Slack, Graph, Keycloak, generic)
	RateLimitReset               // 429 + X-Rate-Limit-Reset / x-ratelimit-reset epoch seconds vs Date (Okta, Auth0)
	GoogleQuota                  // 403 with error.errors[].reason userRateLimitExceeded|quotaExceeded, and 429
)

// ErrThrottled is wrapped when retries ran out while the provider kept throttling.
var ErrThrottled = errors.New("throttled by provider")

// StatusError is a non-2xx answer that was not retried or ran out of retries.
// Its message never contains the response body or any header value.
//
// errors.Is(err, sessions.ErrUnauthorized) is true for 401, and for 403 unless
// the 403 was a provider's quota signal; errors.Is(err, sessions.ErrNotFound)
// is true for 404.
type StatusError struct {
	Provider string
	Method   string
	Path     string // request path without query string
	Status   int
	Code     string // provider error code when it has one ("invalid_grant", "E0000007") and it quotes no credential

	throttle bool // the answer was the provider's throttle signal
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s %s: status %d %s", e.Provider, e.Method, e.Path, e.Status, e.Code)
}

// Unwrap maps the status to the domain's sentinel errors.
func (e *StatusError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized:
		return sessions.ErrUnauthorized
	case e.Status == http.StatusForbidden && !e.throttle:
		return sessions.ErrUnauthorized
	case e.Status == http.StatusNotFound:
		return sessions.ErrNotFound
	}
	return nil
}

// Config configures a Client. The zero value is usable except for BaseURL.
type Config struct {
	Provider    string        // name used in errors and logs
	BaseURL     string        // e.g. "https://acme.okta.com"; paths are joined to it
	HTTP        *http.Client  // the transport (oauth2 clients plug in here); default has a 30 s timeout
	Rate        rate.Limit    // pace; 0 means 10/s
	Burst       int           // 0 means 1
	MaxAttempts int           // total attempts including the first; 0 means 4
	MaxWait     time.Duration // cap on one throttle wait; 0 means 60 s
	Signal      Signal
	Header      http.Header // static headers added to every request (e.g. Authorization: SSWS …); never logged
	Logger      *slog.Logger
	// Backoff is the first retry wait for 5xx, network errors and throttles
	// without a wait header; it doubles per attempt (capped at MaxWait) and
	// is jittered to between half and all of it. 0 means 500 ms.
	Backoff time.Duration
	// Tokens, when set, supplies the bearer token for every request to
	// BaseURL's origin (and to no other host, redirects included). A 401
	// drops the token so that the next request fetches a fresh one. The
	// token and the source's secrets never appear in an error.
	Tokens *TokenSource
	// Metrics, when set, records every attempt's latency and every
	// throttle signal. nil: the Metrics carried by HTTP (see
	// Metrics.HTTPClient), if any; otherwise nothing is recorded.
	Metrics *Metrics
}

const (
	defaultRate        = rate.Limit(10)
	defaultMaxAttempts = 4
	defaultMaxWait     = 60 * time.Second
	defaultBackoff     = 500 * time.Millisecond
	defaultTimeout     = 30 * time.Second

	maxErrorBody = 64 << 10 // read at most this much of an error answer, for its code
	maxBody      = 32 << 20 // decode at most this much of a 2xx answer
)

// Log keys.
const (
	logProvider = "provider"
	logMethod   = "method"
	logPath     = "path"
	logStatus   = "status"
	logAttempt  = "attempt"
	logWait     = "wait"
)

func (c *Config) validate() error {
	if c.BaseURL == "" {
		return errors.New("base url is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return errors.New("base url does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("base url must be http or https")
	}
	if u.Host == "" {
		return errors.New("base url has no host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("base url must not carry userinfo, query or fragment")
	}
	if c.Rate < 0 || c.Burst < 0 || c.MaxAttempts < 0 || c.MaxWait < 0 || c.Backoff < 0 {
		return errors.New("negative pacing or retry setting")
	}
	switch c.Signal {
	case RetryAfter, RateLimitReset, GoogleQuota:
	default:
		return fmt.Errorf("unknown signal %d", c.Signal)
	}
	return nil
}

// Client sends requests to one provider. It is safe for concurrent use.
type Client struct {
	provider    string
	base        *url.URL
	http        *http.Client
	limiter     *rate.Limiter
	maxAttempts int
	maxWait     time.Duration
	backoff     time.Duration
	signal      Signal
	header      http.Header
	log         *slog.Logger
	tokens      *TokenSource // nil: no bearer token
	secrets     []string     // static header values and token secrets, kept out of errors
	metrics     *Metrics     // nil: none

	// jitter maps a backoff to the wait actually used; tests replace it.
	jitter func(time.Duration) time.Duration
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("httpclient %s: %w", cfg.Provider, err)
	}
	base, _ := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	c := &Client{
		provider:    cfg.Provider,
		base:        base,
		http:        cfg.HTTP,
		maxAttempts: cfg.MaxAttempts,
		maxWait:     cfg.MaxWait,
		backoff:     cfg.Backoff,
		signal:      cfg.Signal,
		header:      cfg.Header.Clone(),
		log:         cfg.Logger,
		jitter:      equalJitter,
		metrics:     cfg.Metrics,
	}
	if c.metrics == nil {
		c.metrics = metricsOf(cfg.HTTP)
	}
	if c.provider == "" {
		c.provider = base.Host
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if cfg.Tokens != nil {
		c.tokens = cfg.Tokens
		c.http = withTokens(c.http, cfg.Tokens, base)
		c.secrets = append(c.secrets, cfg.Tokens.secrets...)
	}
	r, burst := cfg.Rate, cfg.Burst
	if r == 0 {
		r = defaultRate
	}
	if burst == 0 {
		burst = 1
	}
	c.limiter = rate.NewLimiter(r, burst)
	if c.maxAttempts == 0 {
		c.maxAttempts = defaultMaxAttempts
	}
	if c.maxWait == 0 {
		c.maxWait = defaultMaxWait
	}
	if c.backoff == 0 {
		c.backoff = defaultBackoff
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, vs := range c.header {
		for _, v := range vs {
			c.secrets = appendSecret(c.secrets, v)
		}
	}
	return c, nil
}

// equalJitter returns a wait between d/2 and d.
func equalJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Do sends req with pacing and retries. Retried: network errors, 5xx, and the
// provider's throttle signal; never other 4xx. The body is replayed with
// req.GetBody. The caller closes the returned body. A non-2xx final answer is
// returned as a *StatusError (the response body already drained and closed).
func (c *Client) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	path := req.URL.EscapedPath()
	op := func(err error) error {
		return fmt.Errorf("%s %s %s: %w", c.provider, req.Method, path, err)
	}
	getBody, err := replayable(req)
	if err != nil {
		return nil, op(err)
	}
	secrets := c.requestSecrets(req)
	secrets = bodySecrets(secrets, req.Header.Get("Content-Type"), getBody)

	var (
		lastErr   error // what to report if we stop now
		throttled bool  // lastErr was a throttle signal
		retryHdr  http.Header
	)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, op(err)
		}
		if err := c.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, op(ctx.Err())
			}
			// The pace would pass the deadline.
			if lastErr != nil {
				return nil, c.giveUp(lastErr, throttled)
			}
			return nil, op(context.DeadlineExceeded)
		}
		rctx := ctx
		var tokErr error
		if c.tokens != nil {
			tok, err := c.tokens.Token(ctx)
			if err != nil {
				tokErr = err
			} else {
				secrets = appendSecret(secrets, tok.AccessToken)
				rctx = context.WithValue(ctx, tokenKey{}, tok)
			}
		}
		r := req.Clone(rctx)
		if attempt > 1 && getBody != nil {
			b, err := getBody()
			if err != nil {
				return nil, op(fmt.Errorf("replay body: %w", err))
			}
			r.Body = b
		}
		for k, vs := range c.header {
			r.Header[k] = append([]string(nil), vs...)
		}
		for k, vs := range retryHdr {
			r.Header[k] = vs
		}
		if r.Header.Get("User-Agent") == "" {
			r.Header.Set("User-Agent", "warden")
		}

		var resp *http.Response
		err := tokErr
		if err == nil {
			sent := time.Now()
			resp, err = c.http.Do(r)
			c.metrics.attempt(c.provider, statusOf(resp), err, time.Since(sent))
		} else if r.Body != nil {
			r.Body.Close()
		}
		var d decision
		if err != nil {
			if ctx.Err() != nil {
				return nil, op(ctx.Err())
			}
			lastErr, throttled = op(scrub(err, secrets)), false
			d = c.decideTransport(err, attempt)
		} else {
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return resp, nil
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			d = c.decide(resp.StatusCode, resp.Header, body, attempt, time.Now())
			lastErr = &StatusError{
				Provider: c.provider,
				Method:   req.Method,
				Path:     path,
				Status:   resp.StatusCode,
				Code:     safeCode(errorCode(body), secrets),
				throttle: d.throttled,
			}
			throttled = d.throttled
			retryHdr = c.retryHeader(resp.Header, attempt)
		}
		if d.throttled {
			c.metrics.throttle(c.provider)
		}
		if !d.retry {
			return nil, lastErr
		}
		if attempt >= c.maxAttempts {
			return nil, c.giveUp(lastErr, throttled)
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(d.wait).After(dl) {
			return nil, c.giveUp(lastErr, throttled)
		}
		c.log.InfoContext(ctx, "retrying provider request",
			logProvider, c.provider, logMethod, req.Method, logPath, path,
			logStatus, statusOf(resp), logAttempt, attempt, logWait, d.wait)
		if err := sleep(ctx, d.wait); err != nil {
			return nil, op(err)
		}
	}
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func (c *Client) giveUp(last error, throttled bool) error {
	if throttled {
		return fmt.Errorf("%w: %w", ErrThrottled, last)
	}
	return last
}

// retryHeader returns Okta's retry headers for the next attempt.
func (c *Client) retryHeader(h http.Header, attempt int) http.Header {
	if c.signal != RateLimitReset {
		return nil
	}
	id := h.Get("X-Okta-Request-Id")
	if id == "" {
		return nil
	}
	return http.Header{
		"X-Okta-Retry-For":   {id},
		"X-Okta-Retry-Count": {strconv.Itoa(attempt)},
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// decision says whether and when to try again.
type decision struct {
	retry     bool
	wait      time.Duration
	throttled bool
}

// backoffFor returns the jittered exponential wait after the attempt-th failure.
func (c *Client) backoffFor(attempt int) time.Duration {
	d := c.backoff
	for i := 1; i < attempt && d < c.maxWait; i++ {
		d *= 2
	}
	return c.jitter(min(d, c.maxWait))
}

func (c *Client) decideTransport(err error, attempt int) decision {
	s := 0
	var re *oauth2.RetrieveError
	var te *tokenError
	switch {
	case errors.As(err, &re) && re.Response != nil:
		s = re.Response.StatusCode
	case errors.As(err, &te):
		s = te.status
	}
	if s != 0 {
		// The token endpoint answered: only its throttle and 5xx are worth a retry.
		if s == http.StatusTooManyRequests {
			return decision{retry: true, wait: c.backoffFor(attempt), throttled: true}
		}
		if s < 500 {
			return decision{}
		}
	}
	return decision{retry: true, wait: c.backoffFor(attempt)}
}

// decide classifies a non-2xx answer.
func (c *Client) decide(status int, h http.Header, body []byte, attempt int, now time.Time) decision {
	switch {
	case status == http.StatusTooManyRequests:
		w, ok := c.headerWait(h, now)
		if !ok {
			w = c.backoffFor(attempt)
		}
		return decision{retry: true, wait: min(w, c.maxWait), throttled: true}
	case status == http.StatusForbidden && c.signal == GoogleQuota && googleQuota(body):
		w, ok := retryAfter(h, now)
		if !ok {
			w = c.backoffFor(attempt)
		}
		return decision{retry: true, wait: min(w, c.maxWait), throttled: true}
	case status >= 500:
		w, ok := retryAfter(h, now)
		if !ok {
			w = c.backoffFor(attempt)
		}
		return decision{retry: true, wait: min(w, c.maxWait)}
	}
	return decision{}
}

// headerWait reads the wait a 429 asks for, per the provider's signal.
func (c *Client) headerWait(h http.Header, now time.Time) (time.Duration, bool) {
	if c.signal == RateLimitReset {
		if w, ok := rateLimitReset(h, now); ok {
			return w, true
		}
	}
	return retryAfter(h, now)
}

// serverNow is the response's Date, or now when it has none.
func serverNow(h http.Header, now time.Time) time.Time {
	if d := h.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			return t
		}
	}
	return now
}

// retryAfter parses Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(serverNow(h, now)), 0), true
}

// rateLimitReset reads X-Rate-Limit-Reset (any case) against the server's
// Date, plus one second, as Okta's SDK does.
func rateLimitReset(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("X-Rate-Limit-Reset"))
	if v == "" {
		v = strings.TrimSpace(h.Get("X-Ratelimit-Reset"))
	}
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	ref := serverNow(h, now)
	w := time.Unix(n, 0).Sub(ref.Truncate(time.Second)) + time.Second
	if w > 24*time.Hour {
		w = 24 * time.Hour
	}
	return max(w, time.Second), true
}

// googleQuota reports whether a 403 body is Google's rate-limit signal.
func googleQuota(body []byte) bool {
	var v struct {
		Error struct {
			Errors []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	for _, e := range v.Error.Errors {
		switch e.Reason {
		case "userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded":
			return true
		}
	}
	return false
}

// errorCode finds a provider error code in common JSON error shapes: Okta
// errorCode, Auth0 errorCode/error, OAuth error, Google error.errors[0].reason
// or error.status, Graph error.code, Slack error. Anything that does not look
// like a code is dropped, so no free text from the body leaks.
func errorCode(body []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	str := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	}
	if s := str(top["errorCode"]); s != "" {
		return cleanCode(s)
	}
	raw, ok := top["error"]
	if !ok {
		return ""
	}
	if s := str(raw); s != "" {
		return cleanCode(s)
	}
	var obj struct {
		Errors []struct {
			Reason string `json:"reason"`
		} `json:"errors"`
		Status string          `json:"status"`
		Code   json.RawMessage `json:"code"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return ""
	}
	if len(obj.Errors) > 0 && obj.Errors[0].Reason != "" {
		return cleanCode(obj.Errors[0].Reason)
	}
	if obj.Status != "" {
		return cleanCode(obj.Status)
	}
	return cleanCode(str(obj.Code))
}

func cleanCode(s string) string {
	if len(s) > 64 {
		return ""
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-' || r == '.' || r == ':' || r == ' '
		if !ok {
			return ""
		}
	}
	return s
}

// replayable makes sure a request body can be sent again.
func replayable(req *http.Request) (func() (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		return req.GetBody, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	get := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	req.Body, _ = get()
	req.GetBody = get
	return get, nil
}

func appendSecret(list []string, s string) []string {
	s = strings.TrimSpace(s)
	if len(s) < 4 {
		return list
	}
	list = append(list, s)
	// "Bearer xyz" / "SSWS xyz": also scrub the credential alone.
	if _, cred, ok := strings.Cut(s, " "); ok && len(cred) >= 4 {
		list = append(list, cred)
	}
	return list
}

// requestSecrets lists what must never appear in an error about req.
func (c *Client) requestSecrets(req *http.Request) []string {
	s := append([]string(nil), c.secrets...)
	for _, k := range []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Auth-Token"} {
		for _, v := range req.Header.Values(k) {
			s = appendSecret(s, v)
		}
	}
	if req.URL.User != nil {
		s = appendSecret(s, req.URL.User.String())
		if p, ok := req.URL.User.Password(); ok {
			s = appendSecret(s, p)
		}
	}
	if req.URL.RawQuery != "" {
		s = appendSecret(s, req.URL.RawQuery)
		for _, vs := range req.URL.Query() {
			for _, v := range vs {
				s = appendSecret(s, v)
				s = appendSecret(s, url.QueryEscape(v))
			}
		}
	}
	return s
}

// bodySecrets adds the values of a form or JSON request body: a transport
// that quotes the body must not leak a client secret.
func bodySecrets(list []string, contentType string, getBody func() (io.ReadCloser, error)) []string {
	if getBody == nil {
		return list
	}
	rc, err := getBody()
	if err != nil {
		return list
	}
	b, _ := io.ReadAll(io.LimitReader(rc, maxErrorBody))
	rc.Close()
	list = appendSecret(list, string(b))
	switch {
	case strings.HasPrefix(contentType, "application/x-www-form-urlencoded"):
		if form, err := url.ParseQuery(string(b)); err == nil {
			for _, vs := range form {
				for _, v := range vs {
					list = appendSecret(list, v)
					list = appendSecret(list, url.QueryEscape(v))
				}
			}
		}
	case strings.Contains(contentType, "json"):
		var v any
		if json.Unmarshal(b, &v) == nil {
			list = jsonStrings(list, v)
		}
	}
	return list
}

func jsonStrings(list []string, v any) []string {
	switch x := v.(type) {
	case string:
		list = appendSecret(list, x)
	case []any:
		for _, e := range x {
			list = jsonStrings(list, e)
		}
	case map[string]any:
		for _, e := range x {
			list = jsonStrings(list, e)
		}
	}
	return list
}

// safeError is a transport error with the URL and secrets taken out. It keeps
// the cause for errors.Is only when the cause's own text is clean.
type safeError struct {
	msg   string
	cause error
}

func (e *safeError) Error() string { return e.msg }
func (e *safeError) Unwrap() error { return e.cause }

// scrub turns an error from http.Client into one safe to show.
func scrub(err error, secrets []string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop "Get \"https://…?token=…\""
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		// Its message carries the token endpoint's body.
		return retrieveError(re, secrets)
	}
	msg := err.Error()
	clean := true
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			clean = false
		}
	}
	if !clean {
		return &safeError{msg: msg}
	}
	return &safeError{msg: msg, cause: err}
}

// url returns BaseURL+path with query merged. An absolute path (a pagination
// link) must point at the same scheme and host as BaseURL, so that static
// credentials never travel to another host.
func (c *Client) url(path string, query url.Values) (*url.URL, error) {
	var u *url.URL
	if strings.HasPrefix(path, "https://") || strings.HasPrefix(path, "http://") {
		p, err := url.Parse(path)
		if err != nil {
			return nil, errors.New("link does not parse")
		}
		if p.Scheme != c.base.Scheme || p.Host != c.base.Host || p.User != nil {
			return nil, errors.New("link points away from the provider")
		}
		u = p
	} else {
		p, err := url.Parse(c.base.String() + "/" + strings.TrimLeft(path, "/"))
		if err != nil {
			return nil, errors.New("path does not parse")
		}
		u = p
	}
	u.Fragment = ""
	if len(query) > 0 {
		q := u.Query()
		for k, vs := range query {
			q[k] = append(q[k], vs...)
		}
		u.RawQuery = q.Encode()
	}
	return u, nil
}

// JSON sends a request to BaseURL+path?query with in encoded as JSON (nil: no
// body) and decodes a 2xx answer into out (nil: discard). It returns the
// response headers for pagination (Link, X-Total-Count).
//
// path may also be an absolute URL on BaseURL's host, as pagination links are.
func (c *Client) JSON(ctx context.Context, method, path string, query url.Values, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s %s: encode: %w", c.provider, method, cutQuery(path), err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(ctx, req, out)
}

// Form posts an application/x-www-form-urlencoded body and decodes JSON into out.
func (c *Client) Form(ctx context.Context, path string, form url.Values, out any) (http.Header, error) {
	req, err := c.newRequest(ctx, http.MethodPost, path, nil, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(ctx, req, out)
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	u, err := c.url(path, query)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", c.provider, method, cutQuery(path), err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: new request: bad method or url", c.provider, method, u.EscapedPath())
	}
	return req, nil
}

func (c *Client) send(ctx context.Context, req *http.Request, out any) (http.Header, error) {
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return resp.Header, nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return resp.Header, fmt.Errorf("%s %s %s: decode: %w", c.provider, req.Method, req.URL.EscapedPath(), decodeErr(err))
	}
	return resp.Header, nil
}

// decodeErr drops json error text that may quote the body.
func decodeErr(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid json at offset %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("json field %q: want %s, got %s", te.Field, te.Type, te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return io.ErrUnexpectedEOF
	}
	return errors.New("invalid json")
}

func cutQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	if u, err := url.Parse(p); err == nil {
		u.User = nil
		return u.String()
	}
	return "?"
}

// NextLink returns the target of the rel="next" entry of a Link header
// (RFC 8288), as Okta and GitHub page, or "" when there is none.
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range splitLinks(v) {
			target, params, ok := strings.Cut(part, ";")
			if !ok {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target[1 : len(target)-1]
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header on the commas between entries, not the
// ones inside <…>.
func splitLinks(v string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range v {
		switch r {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}
