// Package auth0 is Warden's connector to the Auth0 Management API v2.
//
// Auth0 lists a user's live sessions with device details, ends one session
// or all of them, and revokes refresh tokens. Session management is an
// Enterprise-plan feature. Deleting sessions is asynchronous: Auth0 accepts
// the request and removes them shortly after.
//
// Warden authenticates as a machine-to-machine application with client
// credentials; the access token is cached until it expires or the API
// refuses it. Scopes used: read:users, read:sessions, delete:sessions,
// read:refresh_tokens, delete:refresh_tokens.
package auth0

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
)

// Name is the provider name.
const Name = "auth0"

const (
	defaultMaxPages = 20
	pageSize        = 50
	defaultTimeout  = 30 * time.Second
	// effectWithin is how long Auth0's asynchronous session deletion is
	// assumed to take. Auth0 only says the request is "accepted"; the figure
	// is an estimate [unverified].
	effectWithin = time.Minute
)

// Config configures the connector.
type Config struct {
	URL          string       // "https://acme.eu.auth0.com"; wins over Domain
	Domain       string       // "acme.eu.auth0.com", when URL is empty
	ClientID     string       // machine-to-machine application
	ClientSecret string       // never logged
	Audience     string       // "" means URL + "/api/v2/"
	HTTP         *http.Client // base client for the token and API calls; nil: 30 s timeout
	Rate         rate.Limit   // pace; 0 means the httpclient default
	MaxPages     int          // bound on pages per listing; 0 means 20
	Logger       *slog.Logger // nil: discard
}

func (c *Config) baseURL() string {
	if c.URL != "" {
		return strings.TrimRight(c.URL, "/")
	}
	if c.Domain != "" {
		return "https://" + strings.Trim(c.Domain, "/")
	}
	return ""
}

func (c *Config) validate() error {
	if c.baseURL() == "" {
		return errors.New("url or domain is required")
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("client id and client secret are required")
	}
	if c.MaxPages < 0 {
		return errors.New("negative page bound")
	}
	return nil
}

// Provider is the Auth0 connector. It is safe for concurrent use.
type Provider struct {
	c        *httpclient.Client
	maxPages int
	log      *slog.Logger
}

var (
	_ sessions.Provider     = (*Provider)(nil)
	_ sessions.TokenRevoker = (*Provider)(nil)
)

// New returns an Auth0 connector. No request is made until the first call.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("auth0: %w", err)
	}
	base := cfg.baseURL()
	audience := cfg.Audience
	if audience == "" {
		audience = base + "/api/v2/"
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	cc := &clientcredentials.Config{
		ClientID:       cfg.ClientID,
		ClientSecret:   cfg.ClientSecret,
		TokenURL:       base + "/oauth/token",
		EndpointParams: url.Values{"audience": {audience}},
		AuthStyle:      oauth2.AuthStyleInParams,
	}
	c, err := httpclient.New(httpclient.Config{
		Provider: Name,
		BaseURL:  base,
		HTTP:     hc,
		Tokens:   httpclient.ClientCredentials(cc, hc), // cached until it expires or a 401
		Rate:     cfg.Rate,
		Signal:   httpclient.RateLimitReset,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("auth0: %w", err)
	}
	p := &Provider{c: c, maxPages: cfg.MaxPages, log: cfg.Logger}
	if p.maxPages == 0 {
		p.maxPages = defaultMaxPages
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Name returns "auth0".
func (p *Provider) Name() string { return Name }

// Capabilities says what Auth0 can do: list live sessions, end one or all
// (asynchronously), and revoke refresh tokens.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListSessions: true,
		RevokeOne:    true,
		RevokeAll:    true,
		RevokeTokens: true,
		EffectWithin: effectWithin,
		Ends:         "Every Auth0 session of the user, with OIDC back-channel logout; Auth0 accepts the request and deletes them asynchronously.",
		Leaves:       "Refresh tokens unless tokens are revoked too, and access tokens already issued until they expire.",
	}
}

type user struct {
	UserID      string         `json:"user_id"`
	Email       string         `json:"email"`
	Name        string         `json:"name"`
	Nickname    string         `json:"nickname"`
	AppMetadata map[string]any `json:"app_metadata"`
}

// FindUser looks the user up with users-by-email. It returns
// sessions.ErrNoAccount when nobody has that email. When several accounts
// share the email (one per connection), the first is used.
//
// Auth0 has no manager attribute; ManagerEmail is taken from
// app_metadata.manager_email (or app_metadata.manager) when that holds an
// email.
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
	}
	var users []user
	if _, err := p.c.JSON(ctx, http.MethodGet, "/api/v2/users-by-email", url.Values{"email": {email}}, nil, &users); err != nil {
		return sessions.User{}, fmt.Errorf("find user: %w", err)
	}
	if len(users) == 0 {
		return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
	}
	u := users[0]
	name := u.Name
	if name == "" || name == u.Email {
		if u.Nickname != "" {
			name = u.Nickname
		}
	}
	out := sessions.User{Provider: Name, ID: u.UserID, Email: u.Email, Name: name}
	for _, k := range []string{"manager_email", "manager"} {
		if s, ok := u.AppMetadata[k].(string); ok && strings.Contains(s, "@") {
			out.ManagerEmail = s
			break
		}
	}
	return out, nil
}

type device struct {
	InitialUserAgent string `json:"initial_user_agent"`
	InitialIP        string `json:"initial_ip"`
	InitialASN       string `json:"initial_asn"`
	LastUserAgent    string `json:"last_user_agent"`
	LastIP           string `json:"last_ip"`
	LastASN          string `json:"last_asn"`
}

type session struct {
	ID               string    `json:"id"`
	UserID           string    `json:"user_id"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	AuthenticatedAt  time.Time `json:"authenticated_at"`
	IdleExpiresAt    time.Time `json:"idle_expires_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	LastInteractedAt time.Time `json:"last_interacted_at"`
	Device           device    `json:"device"`
	Clients          []struct {
		ClientID string `json:"client_id"`
	} `json:"clients"`
}

type refreshToken struct {
	ID              string    `json:"id"`
	UserID          string    `json:"user_id"`
	CreatedAt       time.Time `json:"created_at"`
	IdleExpiresAt   time.Time `json:"idle_expires_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	LastExchangedAt time.Time `json:"last_exchanged_at"`
	Device          device    `json:"device"`
	ClientID        string    `json:"client_id"`
	SessionID       string    `json:"session_id"`
}

// ListSessions returns the user's live sessions, then their refresh tokens
// as KindToken. Tokens are skipped (and logged) when Warden lacks the scope
// or plan to read them. A user Auth0 does not know is sessions.ErrNoAccount.
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	uid, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", sessions.ErrNoAccount)
	}
	userPath := "/api/v2/users/" + uid
	var out []sessions.Session
	err = p.pages(ctx, userPath+"/sessions", func(page *pageBody) int {
		for _, s := range page.Sessions {
			out = append(out, fromSession(s))
		}
		return len(page.Sessions)
	})
	if errors.Is(err, sessions.ErrNotFound) {
		return nil, fmt.Errorf("list sessions: %w", sessions.ErrNoAccount)
	}
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	var tokens []sessions.Session
	err = p.pages(ctx, userPath+"/refresh-tokens", func(page *pageBody) int {
		for _, t := range page.RefreshTokens {
			tokens = append(tokens, fromToken(t))
		}
		return len(page.RefreshTokens)
	})
	switch {
	case err == nil:
		out = append(out, tokens...)
	case (errors.Is(err, sessions.ErrUnauthorized) || errors.Is(err, sessions.ErrNotFound)) && ctx.Err() == nil:
		p.log.WarnContext(ctx, "cannot list refresh tokens", "provider", Name, "err", err)
	default:
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// pageBody is one page of a checkpoint-paged list.
type pageBody struct {
	Sessions      []session      `json:"sessions"`
	RefreshTokens []refreshToken `json:"refresh_tokens"`
	Next          string         `json:"next"`
}

// pages walks a checkpoint-paged list (take/from → next), at most maxPages
// pages. add consumes a page and returns how many items it had.
func (p *Provider) pages(ctx context.Context, path string, add func(*pageBody) int) error {
	from := ""
	seen := map[string]bool{}
	for range p.maxPages {
		q := url.Values{"take": {fmt.Sprint(pageSize)}}
		if from != "" {
			q.Set("from", from)
		}
		var page pageBody
		if _, err := p.c.JSON(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return err
		}
		n := add(&page)
		if page.Next == "" || n == 0 || seen[page.Next] {
			return nil
		}
		seen[page.Next] = true
		from = page.Next
	}
	p.log.WarnContext(ctx, "listing cut at page bound", "provider", Name, "pages", p.maxPages)
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// earliest returns the earliest non-zero time.
func earliest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func fromSession(s session) sessions.Session {
	ua := firstNonEmpty(s.Device.LastUserAgent, s.Device.InitialUserAgent)
	return sessions.Session{
		Provider:   Name,
		ID:         s.ID,
		Kind:       sessions.KindSession,
		Created:    s.CreatedAt,
		LastActive: latest(s.LastInteractedAt, s.AuthenticatedAt),
		Expires:    earliest(s.ExpiresAt, s.IdleExpiresAt),
		IP:         firstNonEmpty(s.Device.LastIP, s.Device.InitialIP),
		UserAgent:  ua,
		Device:     sessions.ParseUserAgent(ua),
		Active:     true,
	}
}

func fromToken(t refreshToken) sessions.Session {
	ua := firstNonEmpty(t.Device.LastUserAgent, t.Device.InitialUserAgent)
	return sessions.Session{
		Provider:   Name,
		ID:         t.ID,
		Kind:       sessions.KindToken,
		Created:    t.CreatedAt,
		LastActive: t.LastExchangedAt,
		Expires:    earliest(t.ExpiresAt, t.IdleExpiresAt),
		IP:         firstNonEmpty(t.Device.LastIP, t.Device.InitialIP),
		UserAgent:  ua,
		Device:     sessions.ParseUserAgent(ua),
		Client:     t.ClientID,
		Active:     true,
	}
}

// del sends a DELETE; a 404 (already gone) is success.
func (p *Provider) del(ctx context.Context, path string) error {
	_, err := p.c.JSON(ctx, http.MethodDelete, path, nil, nil, nil)
	if err != nil && !errors.Is(err, sessions.ErrNotFound) {
		return err
	}
	return nil
}

// RevokeSession deletes one session. Auth0 deletes it asynchronously; a
// session that is already gone is success. An id that cannot be one path
// segment ("", ".", "..") is sessions.ErrNotFound and sends no request.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	seg, err := httpclient.PathSegment(id)
	if err != nil {
		return fmt.Errorf("revoke session: %w: %w", err, sessions.ErrNotFound)
	}
	if err := p.del(ctx, "/api/v2/sessions/"+seg); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeAll deletes every session of the user (with back-channel logout).
// Refresh tokens survive: use RevokeTokens for those.
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	uid, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return fmt.Errorf("revoke all: %w", sessions.ErrNoAccount)
	}
	if err := p.del(ctx, "/api/v2/users/"+uid+"/sessions"); err != nil {
		return fmt.Errorf("revoke all: %w", err)
	}
	return nil
}

// RevokeTokens deletes every refresh token of the user.
func (p *Provider) RevokeTokens(ctx context.Context, u sessions.User) error {
	uid, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", sessions.ErrNoAccount)
	}
	if err := p.del(ctx, "/api/v2/users/"+uid+"/refresh-tokens"); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}
