// Package intake receives login events pushed by identity providers and by
// our own scripts, checks them, and hands them to a Sink.
//
// Three endpoints, each enabled by its own secret:
//
//	POST      /webhooks/events  Warden's generic JSON shape (below), Authorization: Bearer <GenericSecret>
//	GET, POST /webhooks/okta    Okta Event Hooks (verification GET, event POSTs), Authorization: <OktaSecret>
//	POST      /webhooks/auth0   Auth0 custom-webhook log stream, Authorization: [Bearer ]<Auth0Token>
//
// Every request is authorized before its body is read, its body is capped at
// Config.MaxBody, and the whole batch is decoded and validated before the
// first event reaches the Sink: a batch is accepted whole or refused whole.
//
// Status codes:
//
//	200 accepted (events of types Warden does not track are counted as ignored)
//	400 bad JSON, unknown field (generic shape), invalid event; body {"error":"<short reason>"}
//	401 missing or wrong secret; nothing is read or stored
//	405 wrong method
//	413 body larger than Config.MaxBody
//	503 the Sink failed: the sender should retry (the Sink de-duplicates by event id)
//
// # Generic shape
//
// For scripts and identity providers without a connector here. A request
// carries {"events":[event, …]} or a single event object. Unknown fields are
// refused, so a typo is a 400, not a silently empty field. Every field is a
// string; email, type and time are required:
//
//	id          the sender's event id, used to de-duplicate retries (≤ 200 characters)
//	provider    where the event happened, e.g. "vpn" (≤ 200; default "generic")
//	type        login | mfa_added | password_changed | recovery_changed | session_revoked
//	email       the person's email address, a plain local@domain.tld
//	user_id     the account id at the provider (≤ 200)
//	session_id  the session id at the provider (≤ 200)
//	time        RFC 3339, within the last 30 days and at most 5 minutes ahead
//	ip          IPv4 or IPv6 address, no zone, no port
//	user_agent  the raw User-Agent (≤ 512), parsed with sessions.ParseUserAgent
//	location    free text, e.g. "Berlin, DE" (≤ 128)
//	country     ISO 3166-1 alpha-2, e.g. "DE"
//
// Example:
//
//	curl -X POST https://warden.example/webhooks/events \
//	  -H "Authorization: Bearer $SECRET" -H "Content-Type: application/json" \
//	  -d '{"events":[{"id":"evt-1","provider":"vpn","type":"login","email":"ana@example.com",
//	       "time":"2025-05-01T09:30:00Z","ip":"203.0.113.7","location":"Lisbon, PT","country":"PT"}]}'
//
// See README.md for the Okta and Auth0 set-up and the event types mapped.
package intake

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-sec/warden/sessions"
)

// Paths the Handler serves.
const (
	PathGeneric = "/webhooks/events"
	PathOkta    = "/webhooks/okta"
	PathAuth0   = "/webhooks/auth0"
)

const (
	// DefaultMaxBody is the body cap when Config.MaxBody is zero.
	DefaultMaxBody int64 = 1 << 20
	// MinSecretLen is the shortest secret New accepts for an enabled endpoint.
	MinSecretLen = 16
	// maxChallengeLen caps the Okta verification challenge echoed back.
	maxChallengeLen = 512
)

// Source names, used as sessions.LoginEvent.Provider for provider webhooks,
// as the "source" log key and as keys of Handler.Stats.
const (
	SourceGeneric = "generic"
	SourceOkta    = "okta"
	SourceAuth0   = "auth0"
)

// Errors returned by New.
var (
	ErrNoSink      = errors.New("intake: no sink")
	ErrWeakSecret  = errors.New("intake: secret shorter than 16 characters")
	ErrBadMaxBody  = errors.New("intake: negative max body")
	ErrNoEndpoints = errors.New("intake: every endpoint is disabled")
)

// ErrInvalid is what every decoding or validation failure wraps. Its message
// is the short reason sent back to the caller in {"error": …}; it never
// contains a secret and quotes no more than a few bytes of the input.
var ErrInvalid = errors.New("invalid")

// Sink receives events that passed validation. Implemented by the watcher.
// HandleEvent must be idempotent per event ID: a sender that gets a 503
// resends the whole batch, including the events that were already handed over.
type Sink interface {
	HandleEvent(ctx context.Context, ev sessions.LoginEvent) error
}

// Config configures a Handler. Only Sink is required; an endpoint whose secret
// is empty is not registered at all (requests get the mux's 404).
type Config struct {
	Sink Sink
	// GenericSecret is the bearer secret for POST /webhooks/events ("" disables it).
	GenericSecret string
	// OktaSecret is the exact Authorization header value configured in the
	// Okta Event Hook (authScheme type HEADER, key Authorization) ("" disables it).
	OktaSecret string
	// Auth0Token is the Authorization token configured on the Auth0 log
	// stream; it is accepted bare or prefixed with "Bearer " ("" disables it).
	Auth0Token string
	// MaxBody caps each request body in bytes; 0 means DefaultMaxBody (1 MiB).
	MaxBody int64
	// Now is the clock used for the event time window; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per refused request; nil discards.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Sink == nil {
		return ErrNoSink
	}
	if c.MaxBody < 0 {
		return ErrBadMaxBody
	}
	if c.GenericSecret == "" && c.OktaSecret == "" && c.Auth0Token == "" {
		return ErrNoEndpoints
	}
	for _, s := range []string{c.GenericSecret, c.OktaSecret, c.Auth0Token} {
		if s != "" && len(s) < MinSecretLen {
			return ErrWeakSecret
		}
	}
	return nil
}

// Stats counts what one endpoint did since start.
type Stats struct {
	Accepted     uint64 // events handed to the Sink
	Ignored      uint64 // well-formed events of a type Warden does not track
	Rejected     uint64 // requests refused with 400 or 413
	Unauthorized uint64 // requests refused with 401
	SinkErrors   uint64 // requests answered 503
}

type counters struct {
	accepted, ignored, rejected, unauthorized, sinkErrors atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Accepted:     c.accepted.Load(),
		Ignored:      c.ignored.Load(),
		Rejected:     c.rejected.Load(),
		Unauthorized: c.unauthorized.Load(),
		SinkErrors:   c.sinkErrors.Load(),
	}
}

// Handler serves the webhook endpoints. It is safe for concurrent use.
type Handler struct {
	sink    Sink
	maxBody int64
	now     func() time.Time
	log     *slog.Logger

	// SHA-256 of each secret, so comparisons are constant time and length-blind.
	generic, okta, auth0 *[sha256.Size]byte

	stats map[string]*counters
}

// New returns a Handler, or ErrNoSink, ErrBadMaxBody, ErrNoEndpoints or
// ErrWeakSecret.
func New(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := &Handler{
		sink:    cfg.Sink,
		maxBody: cfg.MaxBody,
		now:     cfg.Now,
		log:     cfg.Logger,
		generic: hashSecret(cfg.GenericSecret),
		okta:    hashSecret(cfg.OktaSecret),
		auth0:   hashSecret(cfg.Auth0Token),
		stats: map[string]*counters{
			SourceGeneric: {}, SourceOkta: {}, SourceAuth0: {},
		},
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Register adds the enabled endpoints to mux: POST /webhooks/events,
// GET and POST /webhooks/okta, POST /webhooks/auth0. Other methods on those
// paths get 405.
func (h *Handler) Register(mux *http.ServeMux) {
	if h.generic != nil {
		mux.HandleFunc(PathGeneric, h.serveGeneric)
	}
	if h.okta != nil {
		mux.HandleFunc(PathOkta, h.serveOkta)
	}
	if h.auth0 != nil {
		mux.HandleFunc(PathAuth0, h.serveAuth0)
	}
}

// Stats returns the counters of each endpoint, keyed by SourceGeneric,
// SourceOkta and SourceAuth0.
func (h *Handler) Stats() map[string]Stats {
	out := make(map[string]Stats, len(h.stats))
	for k, c := range h.stats {
		out[k] = c.snapshot()
	}
	return out
}

func (h *Handler) serveGeneric(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	if !h.authorize(w, r, SourceGeneric, bearerMatches(r, h.generic)) {
		return
	}
	h.receive(w, r, SourceGeneric, decodeGeneric, true)
}

func (h *Handler) serveOkta(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	if !h.authorize(w, r, SourceOkta, secretMatches(r.Header.Get("Authorization"), h.okta)) {
		return
	}
	if r.Method == http.MethodGet {
		h.oktaVerify(w, r)
		return
	}
	h.receive(w, r, SourceOkta, decodeOkta, false)
}

func (h *Handler) serveAuth0(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	auth := r.Header.Get("Authorization")
	ok := secretMatches(auth, h.auth0) || bearerMatches(r, h.auth0)
	if !h.authorize(w, r, SourceAuth0, ok) {
		return
	}
	h.receive(w, r, SourceAuth0, decodeAuth0, true)
}

// oktaVerify answers Okta's one-time verification request: the value of the
// X-Okta-Verification-Challenge header, echoed as {"verification": value}.
func (h *Handler) oktaVerify(w http.ResponseWriter, r *http.Request) {
	challenge := r.Header.Get("X-Okta-Verification-Challenge")
	switch {
	case challenge == "":
		h.reject(w, r, SourceOkta, http.StatusBadRequest, "missing X-Okta-Verification-Challenge")
		return
	case len(challenge) > maxChallengeLen:
		h.reject(w, r, SourceOkta, http.StatusBadRequest, "challenge too long")
		return
	}
	h.log.InfoContext(r.Context(), "okta event hook verification answered", "source", SourceOkta)
	writeJSON(w, http.StatusOK, map[string]string{"verification": challenge})
}

// decoder turns a request body into validated events plus a count of ignored
// ones. Errors wrap ErrInvalid.
type decoder func(body []byte, now time.Time) (batch, error)

type batch struct {
	events  []sessions.LoginEvent
	ignored int
}

func (h *Handler) receive(w http.ResponseWriter, r *http.Request, source string, decode decoder, reply bool) {
	ctx := r.Context()
	st := h.stats[source]
	if r.ContentLength > h.maxBody {
		h.reject(w, r, source, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.reject(w, r, source, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		h.reject(w, r, source, http.StatusBadRequest, "unreadable body")
		return
	}
	b, err := decode(body, h.now())
	if err != nil {
		reason := "bad request"
		if errors.Is(err, ErrInvalid) {
			reason = err.Error()
		}
		h.reject(w, r, source, http.StatusBadRequest, reason)
		return
	}
	for i, ev := range b.events {
		if err := h.sink.HandleEvent(ctx, ev); err != nil {
			st.accepted.Add(uint64(i))
			st.sinkErrors.Add(1)
			h.log.ErrorContext(ctx, "sink refused event, asking sender to retry",
				"source", source, "event_id", ev.ID, "err", err)
			w.Header().Set("Retry-After", "30")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "temporarily unavailable"})
			return
		}
	}
	st.accepted.Add(uint64(len(b.events)))
	st.ignored.Add(uint64(b.ignored))
	h.log.DebugContext(ctx, "events received", "source", source,
		"accepted", len(b.events), "ignored", b.ignored)
	if !reply {
		// Okta asks for an empty 200 or 204.
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Accepted int `json:"accepted"`
		Ignored  int `json:"ignored"`
	}{len(b.events), b.ignored})
}

// authorize answers 401 unless ok. The header itself is never logged.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, source string, ok bool) bool {
	if ok {
		return true
	}
	h.stats[source].unauthorized.Add(1)
	h.log.WarnContext(r.Context(), "webhook refused: bad or missing secret",
		"source", source, "remote", r.RemoteAddr, "has_authorization", r.Header.Get("Authorization") != "")
	if source != SourceOkta {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
	}
	writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
	return false
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, source string, status int, reason string) {
	h.stats[source].rejected.Add(1)
	h.log.WarnContext(r.Context(), "webhook refused", "source", source,
		"status", status, "reason", reason, "remote", r.RemoteAddr)
	writeJSON(w, status, errorBody{Error: reason})
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
	return false
}

func hashSecret(s string) *[sha256.Size]byte {
	if s == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(s))
	return &sum
}

// secretMatches compares got with the secret behind want in constant time.
func secretMatches(got string, want *[sha256.Size]byte) bool {
	if want == nil || got == "" {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// bearerMatches reports whether the request carries "Authorization: Bearer
// <secret>" (scheme case-insensitive).
func bearerMatches(r *http.Request, want *[sha256.Size]byte) bool {
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	return secretMatches(auth[len(prefix):], want)
}

// invalid builds an ErrInvalid-wrapping error with a short reason.
func invalid(format string, args ...any) error {
	return &reasonError{reason: fmt.Sprintf(format, args...)}
}

type reasonError struct{ reason string }

func (e *reasonError) Error() string        { return e.reason }
func (e *reasonError) Is(target error) bool { return target == ErrInvalid }

// at prefixes a reason with the position of the offending event.
func at(prefix string, i int, err error) error {
	if re, ok := errors.AsType[*reasonError](err); ok {
		return &reasonError{reason: fmt.Sprintf("%s[%d]: %s", prefix, i, re.reason)}
	}
	return err
}
