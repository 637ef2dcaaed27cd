// Package kratos is the Ory Kratos connector: it finds identities by their
// login identifier, lists their sessions with device details, and revokes one
// session or all of them through the Kratos admin API (self-hosted, or Ory
// Network with a bearer token).
//
// Kratos v1.3.1 quirks this package is built around (see
// reference/identity-providers.md, "Quirks"):
//   - revoking one session deactivates it: it stays listed with active=false;
//   - revoking all deletes them;
//   - an unknown identity lists as 200 [] (so existence is decided by FindUser);
//   - the per-identity session listing pages with per_page/page (1-based) and
//     sends a Link header that leads back to the first page, so it is never
//     followed; the org-wide listing pages correctly with page_token;
//   - ip_address may carry a port ("127.0.0.1:48896").
package kratos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
)

// Name is the provider name used in sessions, users, errors and logs.
const Name = "kratos"

const (
	defaultPageSize = 250
	maxPageSize     = 500 // the spec's page_size limit; per_page allows more
	maxPages        = 200 // a guard against a server that never ends a listing
)

// Errors returned by this package, besides the sessions sentinels.
var (
	// ErrAmbiguous means an email matched more than one identity, so Warden
	// refuses to guess whose sessions to touch.
	ErrAmbiguous = errors.New("email matches more than one identity")
	// ErrOtherOwner means a session id given for revocation belongs to a
	// different identity than the user it was asked for.
	ErrOtherOwner = errors.New("session belongs to another identity")
	// ErrInvalidID means a user or session id is not a Kratos UUID.
	ErrInvalidID = errors.New("invalid kratos id")
	// ErrTooManyPages means a listing did not end within the page guard.
	ErrTooManyPages = errors.New("listing did not end")
)

// Config configures a Provider. Only AdminURL is required.
type Config struct {
	// AdminURL is the admin API base, e.g. "http://127.0.0.1:4434" or
	// "https://<project>.projects.oryapis.com".
	AdminURL string
	// HTTP is the transport; nil uses the shared layer's default client.
	HTTP *http.Client
	// Rate paces requests; 0 uses the shared layer's default.
	Rate rate.Limit
	// Token is an optional bearer token (Ory Network "ory_pat_…"). It is
	// sent as Authorization and never appears in errors or logs.
	Token string
	// PageSize is how many sessions to ask for per page; 0 means 250.
	PageSize int
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// LogValue keeps the token out of any log line that includes a Config.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("admin_url", c.AdminURL),
		slog.Bool("token_set", c.Token != ""),
		slog.Int("page_size", c.PageSize),
	)
}

func (c Config) validate() error {
	if c.AdminURL == "" {
		return errors.New("admin url is required")
	}
	u, err := url.Parse(c.AdminURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("admin url must be an absolute http(s) url")
	}
	if strings.ContainsAny(c.Token, "\r\n") {
		return errors.New("token contains a line break")
	}
	if c.PageSize < 0 {
		return errors.New("page size must not be negative")
	}
	return nil
}

// Provider talks to one Kratos admin API. It is safe for concurrent use.
type Provider struct {
	c        *httpclient.Client
	pageSize int
	log      *slog.Logger
}

var (
	_ sessions.Provider = (*Provider)(nil)
	_ sessions.Lister   = (*Provider)(nil)
)

// New returns a Provider for cfg.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kratos config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := httpclient.Config{
		Provider: Name,
		BaseURL:  strings.TrimRight(cfg.AdminURL, "/"),
		HTTP:     cfg.HTTP,
		Rate:     cfg.Rate,
		Signal:   httpclient.RetryAfter, // Ory Network answers 429
		Logger:   log,
		Header:   http.Header{"Accept": {"application/json"}},
	}
	if cfg.Token != "" {
		hc.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	c, err := httpclient.New(hc)
	if err != nil {
		return nil, fmt.Errorf("kratos http client: %w", err)
	}
	ps := cfg.PageSize
	if ps == 0 {
		ps = defaultPageSize
	}
	ps = min(ps, maxPageSize)
	return &Provider{c: c, pageSize: ps, log: log}, nil
}

// Name returns "kratos".
func (p *Provider) Name() string { return Name }

// Capabilities: Kratos lists live sessions with devices and revokes one or
// all of them immediately.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListSessions: true,
		RevokeOne:    true,
		RevokeAll:    true,
		EffectWithin: 0,
		Ends:         "Every Kratos session of the identity: they are deleted and their session tokens and cookies stop working at once.",
		Leaves:       "OAuth2 consents and tokens issued by Ory Hydra or Ory OAuth2, if used, which are revoked separately.",
	}
}

// identity is the part of a Kratos identity Warden reads.
type identity struct {
	ID          string                     `json:"id"`
	Traits      map[string]json.RawMessage `json:"traits"`
	Credentials map[string]struct {
		Identifiers []string `json:"identifiers"`
	} `json:"credentials"`
}

// device is one entry of a session's devices[].
type device struct {
	IPAddress *string `json:"ip_address"`
	UserAgent *string `json:"user_agent"`
	Location  *string `json:"location"`
}

// session is the part of a Kratos session Warden reads.
type session struct {
	ID              string    `json:"id"`
	Active          bool      `json:"active"`
	ExpiresAt       time.Time `json:"expires_at"`
	AuthenticatedAt time.Time `json:"authenticated_at"`
	IssuedAt        time.Time `json:"issued_at"`
	Devices         []device  `json:"devices"`
	Identity        *identity `json:"identity"`
}

// FindUser looks the email up as a login identifier (an exact,
// case-insensitive match in Kratos). It returns sessions.ErrNoAccount when no
// identity has it, ErrAmbiguous when several do, and sessions.ErrUnauthorized
// when the admin API refuses the token.
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		// An empty credentials_identifier lists every identity.
		return sessions.User{}, fmt.Errorf("kratos find user: empty email: %w", sessions.ErrNoAccount)
	}
	var ids []identity
	q := url.Values{"credentials_identifier": {email}}
	if _, err := p.c.JSON(ctx, http.MethodGet, "/admin/identities", q, nil, &ids); err != nil {
		return sessions.User{}, fmt.Errorf("kratos find user: %w", classify(err))
	}
	// Trust the server's filter only as far as it can be checked: an older
	// or misconfigured server that ignored it would return everyone.
	var matched []identity
	for _, id := range ids {
		if id.hasIdentifier(email) {
			matched = append(matched, id)
		}
	}
	switch {
	case len(matched) == 1:
		return p.user(matched[0], email), nil
	case len(matched) > 1:
		return sessions.User{}, fmt.Errorf("kratos find user: %w", ErrAmbiguous)
	case len(ids) == 1 && !ids[0].checkable():
		// Credentials not included and no "email" trait: the exact filter
		// returned one identity, which is the answer.
		return p.user(ids[0], email), nil
	case len(ids) <= 1:
		// Nothing, or one identity that provably has another identifier.
		return sessions.User{}, fmt.Errorf("kratos find user: %w", sessions.ErrNoAccount)
	default:
		return sessions.User{}, fmt.Errorf("kratos find user: %w", ErrAmbiguous)
	}
}

func (id identity) hasIdentifier(email string) bool {
	for _, c := range id.Credentials {
		for _, v := range c.Identifiers {
			if strings.EqualFold(v, email) {
				return true
			}
		}
	}
	return strings.EqualFold(id.trait("email"), email)
}

// checkable says whether the identity carries identifiers or an email trait
// that an email can be compared with.
func (id identity) checkable() bool {
	for _, c := range id.Credentials {
		if len(c.Identifiers) > 0 {
			return true
		}
	}
	return id.trait("email") != ""
}

// trait returns a string trait, or "" when it is absent or not a string.
func (id identity) trait(name string) string {
	var s string
	if raw, ok := id.Traits[name]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// name reads traits.name as either a string or {"first","last"}.
func (id identity) name() string {
	raw, ok := id.Traits["name"]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n struct{ First, Last string }
	if json.Unmarshal(raw, &n) == nil {
		return strings.TrimSpace(n.First + " " + n.Last)
	}
	return ""
}

func (p *Provider) user(id identity, email string) sessions.User {
	if e := id.trait("email"); e != "" {
		email = e
	}
	return sessions.User{Provider: Name, ID: id.ID, Email: email, Name: id.name()}
}

// ListSessions lists the identity's sessions, active and revoked, newest
// first. A revoked session is returned with Active false.
//
// It pages with per_page/page (1-based) and stops on a short page or at
// X-Total-Count; it never follows the Link header, which in v1.3.1 leads back
// to the first page.
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	uid, err := parseID(u.ID)
	if err != nil {
		return nil, fmt.Errorf("kratos list sessions: user: %w", err)
	}
	path := "/admin/identities/" + uid + "/sessions"
	var out []sessions.Session
	seen := make(map[string]bool)
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("kratos list sessions: %w after %d pages", ErrTooManyPages, maxPages)
		}
		q := url.Values{
			"per_page": {strconv.Itoa(p.pageSize)},
			"page":     {strconv.Itoa(page)},
		}
		var batch []session
		h, err := p.c.JSON(ctx, http.MethodGet, path, q, nil, &batch)
		if err != nil {
			return nil, fmt.Errorf("kratos list sessions: %w", classify(err))
		}
		fresh := 0
		for _, s := range batch {
			if seen[s.ID] {
				continue
			}
			seen[s.ID] = true
			fresh++
			out = append(out, toSession(s))
		}
		if len(batch) < p.pageSize || fresh == 0 {
			break // short page, or a server repeating itself
		}
		if total, ok := totalCount(h); ok && len(out) >= total {
			break
		}
	}
	return out, nil
}

// RevokeSession revokes one session. Kratos deactivates it: its token stops
// working at once and it stays listed with Active false. A session that is
// already gone or inactive is success. A session of another identity is
// refused with ErrOtherOwner, so a stale or forged id cannot end someone
// else's session.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	uid, err := parseID(u.ID)
	if err != nil {
		return fmt.Errorf("kratos revoke session: user: %w", err)
	}
	sid, err := parseID(id)
	if err != nil {
		return fmt.Errorf("kratos revoke session: session: %w", err)
	}
	path := "/admin/sessions/" + sid
	var s session
	q := url.Values{"expand": {"identity"}}
	if _, err := p.c.JSON(ctx, http.MethodGet, path, q, nil, &s); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return nil
		}
		return fmt.Errorf("kratos revoke session: %w", classify(err))
	}
	if s.Identity == nil || !strings.EqualFold(s.Identity.ID, uid) {
		return fmt.Errorf("kratos revoke session: %w", ErrOtherOwner)
	}
	if !s.Active {
		return nil
	}
	if _, err := p.c.JSON(ctx, http.MethodDelete, path, nil, nil, nil); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return nil
		}
		return fmt.Errorf("kratos revoke session: %w", classify(err))
	}
	return nil
}

// RevokeAll deletes every session of the identity. An unknown identity (404)
// has nothing left to revoke and is success.
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	uid, err := parseID(u.ID)
	if err != nil {
		return fmt.Errorf("kratos revoke all: user: %w", err)
	}
	if _, err := p.c.JSON(ctx, http.MethodDelete, "/admin/identities/"+uid+"/sessions", nil, nil, nil); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return nil
		}
		return fmt.Errorf("kratos revoke all: %w", classify(err))
	}
	return nil
}

// ListAll lists every active session in the organisation, for new-device
// detection. The slices are parallel: users[i] owns sessions[i]. It pages the
// org-wide listing with page_token, which (unlike the per-identity listing)
// works in v1.3.1; only the token is taken from the Link header, never its
// host or path.
func (p *Provider) ListAll(ctx context.Context) ([]sessions.Session, []sessions.User, error) {
	var (
		out   []sessions.Session
		users []sessions.User
		token string
	)
	seenTok := make(map[string]bool)
	seen := make(map[string]bool)
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, nil, fmt.Errorf("kratos list all: %w after %d pages", ErrTooManyPages, maxPages)
		}
		q := url.Values{
			"active":    {"true"},
			"expand":    {"identity", "devices"},
			"page_size": {strconv.Itoa(p.pageSize)},
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var batch []session
		h, err := p.c.JSON(ctx, http.MethodGet, "/admin/sessions", q, nil, &batch)
		if err != nil {
			return nil, nil, fmt.Errorf("kratos list all: %w", classify(err))
		}
		for _, s := range batch {
			if seen[s.ID] {
				continue
			}
			seen[s.ID] = true
			if s.Identity == nil || s.Identity.ID == "" {
				p.log.WarnContext(ctx, "kratos session without identity skipped", slog.String("session_id", s.ID))
				continue
			}
			out = append(out, toSession(s))
			users = append(users, p.user(*s.Identity, ""))
		}
		token = nextPageToken(h.Values("Link"))
		if token == "" || seenTok[token] || len(batch) == 0 {
			break
		}
		seenTok[token] = true
	}
	return out, users, nil
}

// toSession maps a Kratos session. Kratos keeps one device entry per endpoint
// the session was used from; the last one stands for the session.
func toSession(s session) sessions.Session {
	out := sessions.Session{
		Provider: Name,
		ID:       s.ID,
		Kind:     sessions.KindSession,
		Created:  s.AuthenticatedAt,
		Expires:  s.ExpiresAt,
		Active:   s.Active,
	}
	if out.Created.IsZero() {
		out.Created = s.IssuedAt
	}
	if n := len(s.Devices); n > 0 {
		d := s.Devices[n-1]
		out.IP = parseIP(deref(d.IPAddress))
		out.UserAgent = deref(d.UserAgent)
		if out.UserAgent != "" {
			out.Device = parseUserAgent(out.UserAgent)
		}
		out.Location, out.Country = parseLocation(deref(d.Location))
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return strings.TrimSpace(*s)
}

// parseIP accepts "1.2.3.4", "1.2.3.4:5678", "[::1]:5678" and "::1", and a
// forwarded list ("a, b") by its first element. Anything else is dropped.
func parseIP(s string) string {
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if s == "" {
		return ""
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return ""
	}
	return a.Unmap().WithZone("").String()
}

// parseLocation splits Kratos' "City, CC" (either part may be missing) into
// the whole location and the ISO country code when it looks like one.
func parseLocation(s string) (location, country string) {
	if s == "" {
		return "", ""
	}
	last := s
	if i := strings.LastIndex(s, ","); i >= 0 {
		last = strings.TrimSpace(s[i+1:])
	}
	if len(last) == 2 && isASCIILetter(last[0]) && isASCIILetter(last[1]) {
		country = strings.ToUpper(last)
	}
	return s, country
}

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }

// parseID checks that id is a UUID and returns its canonical form, so it is
// safe to put in a path.
func parseID(id string) (string, error) {
	u, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil || len(strings.TrimSpace(id)) != 36 {
		return "", ErrInvalidID
	}
	return u.String(), nil
}

// nextPageToken returns the page_token of the rel="next" link, or "".
func nextPageToken(links []string) string {
	for _, h := range links {
		for _, part := range strings.Split(h, ",") {
			segs := strings.Split(part, ";")
			target := strings.TrimSpace(segs[0])
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			next := false
			for _, p := range segs[1:] {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
					next = true
				}
			}
			if !next {
				continue
			}
			u, err := url.Parse(target[1 : len(target)-1])
			if err != nil {
				return ""
			}
			return u.Query().Get("page_token")
		}
	}
	return ""
}

func totalCount(h http.Header) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Total-Count")))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// classify adds sessions.ErrUnauthorized to a refused-credentials answer.
func classify(err error) error {
	if httpclient.IsStatus(err, http.StatusUnauthorized) || httpclient.IsStatus(err, http.StatusForbidden) {
		return fmt.Errorf("%w: %w", sessions.ErrUnauthorized, err)
	}
	return err
}

// parseUserAgent is the shared user-agent parser.
func parseUserAgent(ua string) sessions.Device { return sessions.ParseUserAgent(ua) }
