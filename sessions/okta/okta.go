// Package okta is Warden's connector to the Okta Management API.
//
// Okta has no per-user session list. ListSessions returns the user's
// successful sign-ins from the System Log (user.session.start events) as
// KindSignIn, plus the OAuth refresh tokens Okta issued to them as KindToken.
// A sign-in carries Okta's session id (authenticationContext.externalSessionId)
// when the log has one, and only then can it be revoked alone.
//
// Authentication is an API token (Authorization: SSWS …). Scopes used:
// okta.users.read, okta.users.manage, okta.sessions.manage, okta.logs.read.
package okta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
)

// Name is the provider name.
const Name = "okta"

// eventPrefix marks the id of a sign-in whose log event carries no session
// id: it names the event, and cannot be revoked alone.
const eventPrefix = "event:"

const (
	defaultWindow   = 7 * 24 * time.Hour
	defaultMaxPages = 10
	pageSize        = 100 // System Log default and a sane page
	tokenPageSize   = 200 // the maximum for refresh tokens
)

// Config configures the connector.
type Config struct {
	OrgURL       string           // "https://acme.okta.com"
	APIToken     string           // SSWS API token; never logged
	HTTP         *http.Client     // nil: a default client
	Rate         rate.Limit       // pace; 0 means the httpclient default
	Now          func() time.Time // nil: time.Now
	SignInWindow time.Duration    // how far back to read sign-ins; 0 means 7 days
	MaxPages     int              // bound on pages per listing; 0 means 10
	Logger       *slog.Logger     // nil: discard
}

func (c *Config) validate() error {
	if c.OrgURL == "" {
		return errors.New("org url is required")
	}
	if c.APIToken == "" {
		return errors.New("api token is required")
	}
	if c.SignInWindow < 0 || c.MaxPages < 0 {
		return errors.New("negative window or page bound")
	}
	return nil
}

// Provider is the Okta connector. It is safe for concurrent use.
type Provider struct {
	c        *httpclient.Client
	now      func() time.Time
	window   time.Duration
	maxPages int
	log      *slog.Logger
}

var (
	_ sessions.Provider     = (*Provider)(nil)
	_ sessions.TokenRevoker = (*Provider)(nil)
)

// New returns an Okta connector.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("okta: %w", err)
	}
	c, err := httpclient.New(httpclient.Config{
		Provider: Name,
		BaseURL:  cfg.OrgURL,
		HTTP:     cfg.HTTP,
		Rate:     cfg.Rate,
		Signal:   httpclient.RateLimitReset,
		Header:   http.Header{"Authorization": {"SSWS " + cfg.APIToken}},
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("okta: %w", err)
	}
	p := &Provider{c: c, now: cfg.Now, window: cfg.SignInWindow, maxPages: cfg.MaxPages, log: cfg.Logger}
	if p.now == nil {
		p.now = time.Now
	}
	if p.window == 0 {
		p.window = defaultWindow
	}
	if p.maxPages == 0 {
		p.maxPages = defaultMaxPages
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Name returns "okta".
func (p *Provider) Name() string { return Name }

// Capabilities says what Okta can do: sign-in history only, revoke one
// session when its id is known, sign out everywhere with OAuth tokens.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListSignIns:  true,
		RevokeOne:    true,
		RevokeAll:    true,
		RevokeTokens: true,
		Ends:         "The user's Okta sessions, and the OAuth refresh and access tokens Okta issued to them.",
		Leaves:       "Sessions that web or native apps keep on their own; Universal Logout cannot be triggered through the API.",
	}
}

type user struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login       string `json:"login"`
		Email       string `json:"email"`
		FirstName   string `json:"firstName"`
		LastName    string `json:"lastName"`
		DisplayName string `json:"displayName"`
		ManagerID   string `json:"managerId"`
		Manager     string `json:"manager"`
	} `json:"profile"`
}

// quote makes s a string literal for Okta's search expressions.
func quote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// FindUser looks the user up by profile.email. It returns
// sessions.ErrNoAccount when nobody has that email.
//
// ManagerEmail is filled from the profile: the "manager" attribute when it
// holds an email, else the email of the user named by "managerId" (one more
// lookup; a failure there leaves ManagerEmail empty rather than failing).
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
	}
	var users []user
	q := url.Values{"search": {"profile.email eq " + quote(email)}, "limit": {"10"}}
	if _, err := p.c.JSON(ctx, http.MethodGet, "/api/v1/users", q, nil, &users); err != nil {
		return sessions.User{}, fmt.Errorf("find user: %w", err)
	}
	var found *user
	for i := range users {
		if strings.EqualFold(users[i].Profile.Email, email) {
			found = &users[i]
			break
		}
	}
	if found == nil {
		return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
	}
	u := sessions.User{
		Provider: Name,
		ID:       found.ID,
		Email:    found.Profile.Email,
		Name:     displayName(found),
	}
	switch {
	case strings.Contains(found.Profile.Manager, "@"):
		u.ManagerEmail = found.Profile.Manager
	case found.Profile.ManagerID != "":
		var m user
		seg, err := httpclient.PathSegment(found.Profile.ManagerID)
		if err == nil {
			_, err = p.c.JSON(ctx, http.MethodGet, "/api/v1/users/"+seg, nil, nil, &m)
		}
		switch {
		case err == nil:
			u.ManagerEmail = m.Profile.Email
		case ctx.Err() != nil:
			return sessions.User{}, fmt.Errorf("find user: %w", ctx.Err())
		default:
			p.log.WarnContext(ctx, "manager lookup failed", "provider", Name, "err", err)
		}
	}
	return u, nil
}

func displayName(u *user) string {
	if u.Profile.DisplayName != "" {
		return u.Profile.DisplayName
	}
	return strings.TrimSpace(u.Profile.FirstName + " " + u.Profile.LastName)
}

// LogClient is the client object of a System Log LogEvent: where the actor
// acted from and with what. Okta Event Hooks deliver the same LogEvent, so
// package intake decodes it with this type too.
type LogClient struct {
	IPAddress string `json:"ipAddress"`
	UserAgent struct {
		RawUserAgent string `json:"rawUserAgent"`
		Browser      string `json:"browser"` // Okta's own reading; "UNKNOWN" when it has none
		OS           string `json:"os"`
	} `json:"userAgent"`
	GeographicalContext struct {
		City    string `json:"city"`
		State   string `json:"state"`
		Country string `json:"country"` // a name or a two-letter code
	} `json:"geographicalContext"`
}

// Device parses the raw user agent, and fills the OS and browser it could
// not tell from Okta's own reading, unless Okta calls that unknown.
func (c LogClient) Device() sessions.Device {
	d := sessions.ParseUserAgent(c.UserAgent.RawUserAgent)
	if d.OS == "" && !unknown(c.UserAgent.OS) {
		d.OS = c.UserAgent.OS
	}
	if d.Browser == "" && d.Client == "" && !unknown(c.UserAgent.Browser) {
		d.Browser = c.UserAgent.Browser
	}
	return d
}

// Location is "City, Country", leaving out what is empty.
func (c LogClient) Location() string {
	g := c.GeographicalContext
	return joinNonEmpty(", ", g.City, g.Country)
}

// LogAuthContext is the authenticationContext object of a System Log
// LogEvent.
type LogAuthContext struct {
	// ExternalSessionID is the Okta session the event belongs to; empty or
	// "unknown" when the log does not know it.
	ExternalSessionID string `json:"externalSessionId"`
}

// logEvent is the part of a System Log LogEvent the connector reads.
type logEvent struct {
	UUID      string    `json:"uuid"`
	Published time.Time `json:"published"`
	EventType string    `json:"eventType"`
	Outcome   *struct {
		Result string `json:"result"`
	} `json:"outcome"`
	Client                LogClient      `json:"client"`
	AuthenticationContext LogAuthContext `json:"authenticationContext"`
}

// ListSessions returns the user's successful sign-ins within the sign-in
// window, newest first, one per Okta session id, then their refresh tokens.
// Tokens are skipped (and logged) when the token lacks the scope to read them.
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	uid, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", sessions.ErrNoAccount)
	}
	out, err := p.signIns(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	tokens, err := p.tokens(ctx, uid)
	switch {
	case errors.Is(err, sessions.ErrUnauthorized) && ctx.Err() == nil:
		p.log.WarnContext(ctx, "cannot list oauth tokens", "provider", Name, "err", err)
	case err != nil:
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return append(out, tokens...), nil
}

func (p *Provider) signIns(ctx context.Context, userID string) ([]sessions.Session, error) {
	now := p.now().UTC()
	q := url.Values{
		"filter":    {"actor.id eq " + quote(userID) + ` and eventType eq "user.session.start"`},
		"since":     {now.Add(-p.window).Format(time.RFC3339)},
		"until":     {now.Format(time.RFC3339)},
		"limit":     {fmt.Sprint(pageSize)},
		"sortOrder": {"ASCENDING"},
	}
	byID := map[string]*sessions.Session{}
	path := "/api/v1/logs"
	for page := 0; page < p.maxPages && path != ""; page++ {
		var events []logEvent
		h, err := p.c.JSON(ctx, http.MethodGet, path, q, nil, &events)
		if err != nil {
			return nil, fmt.Errorf("read system log: %w", err)
		}
		for _, e := range events {
			addSignIn(byID, e)
		}
		// Okta always sends a next link on open-ended polls; an empty page
		// means caught up.
		if len(events) == 0 {
			break
		}
		path, q = httpclient.NextLink(h), nil
	}
	out := make([]sessions.Session, 0, len(byID))
	for _, s := range byID {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastActive.Equal(out[j].LastActive) {
			return out[i].LastActive.After(out[j].LastActive)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// addSignIn folds one event into byID: the first sign-in of a session gives
// Created, the latest gives LastActive and the client details.
func addSignIn(byID map[string]*sessions.Session, e logEvent) {
	if e.EventType != "" && e.EventType != "user.session.start" {
		return
	}
	if e.Outcome != nil && e.Outcome.Result != "" && e.Outcome.Result != "SUCCESS" {
		return // a failed sign-in made no session
	}
	id := e.AuthenticationContext.ExternalSessionID
	if id == "" || id == "unknown" {
		if e.UUID == "" {
			return
		}
		id = eventPrefix + e.UUID
	}
	s, ok := byID[id]
	if !ok {
		s = &sessions.Session{Provider: Name, ID: id, Kind: sessions.KindSignIn, Created: e.Published}
		byID[id] = s
	}
	if e.Published.Before(s.Created) {
		s.Created = e.Published
	}
	if e.Published.Before(s.LastActive) {
		return
	}
	s.LastActive = e.Published
	s.IP = e.Client.IPAddress
	s.UserAgent = e.Client.UserAgent.RawUserAgent
	s.Device = e.Client.Device()
	s.Location = e.Client.Location()
	if c := e.Client.GeographicalContext.Country; len(c) == 2 {
		s.Country = strings.ToUpper(c)
	}
}

func unknown(s string) bool { return s == "" || strings.EqualFold(s, "unknown") }

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, s := range parts {
		if s = strings.TrimSpace(s); s != "" {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, sep)
}

type oauthClient struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
}

type refreshToken struct {
	ID          string    `json:"id"`
	ClientID    string    `json:"clientId"`
	Status      string    `json:"status"`
	Created     time.Time `json:"created"`
	LastUpdated time.Time `json:"lastUpdated"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// clients lists the OAuth clients holding grants or tokens for the user
// whose id, escaped by httpclient.PathSegment, is uid.
func (p *Provider) clients(ctx context.Context, uid string) ([]oauthClient, error) {
	var all []oauthClient
	path := "/api/v1/users/" + uid + "/clients"
	for page := 0; page < p.maxPages && path != ""; page++ {
		var cs []oauthClient
		h, err := p.c.JSON(ctx, http.MethodGet, path, nil, nil, &cs)
		if errors.Is(err, sessions.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list oauth clients: %w", err)
		}
		all = append(all, cs...)
		if len(cs) == 0 {
			break
		}
		path = httpclient.NextLink(h)
	}
	return all, nil
}

// tokens lists the refresh tokens of the user whose escaped id is uid. A
// client whose id cannot be a path segment is skipped.
func (p *Provider) tokens(ctx context.Context, uid string) ([]sessions.Session, error) {
	cs, err := p.clients(ctx, uid)
	if err != nil {
		return nil, err
	}
	var out []sessions.Session
	for _, cl := range cs {
		cid, err := httpclient.PathSegment(cl.ClientID)
		if err != nil {
			continue
		}
		path := "/api/v1/users/" + uid + "/clients/" + cid + "/tokens"
		q := url.Values{"limit": {fmt.Sprint(tokenPageSize)}}
		for page := 0; page < p.maxPages && path != ""; page++ {
			var ts []refreshToken
			h, err := p.c.JSON(ctx, http.MethodGet, path, q, nil, &ts)
			if errors.Is(err, sessions.ErrNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list refresh tokens: %w", err)
			}
			for _, t := range ts {
				client := cl.ClientName
				if client == "" {
					client = cl.ClientID
				}
				out = append(out, sessions.Session{
					Provider:   Name,
					ID:         t.ID,
					Kind:       sessions.KindToken,
					Created:    t.Created,
					LastActive: t.LastUpdated,
					Expires:    t.ExpiresAt,
					Client:     client,
					Active:     t.Status == "" || t.Status == "ACTIVE",
				})
			}
			if len(ts) == 0 {
				break
			}
			path, q = httpclient.NextLink(h), nil
		}
	}
	return out, nil
}

// RevokeSession ends one Okta session by id. A sign-in whose log event had
// no session id cannot be revoked alone: sessions.ErrNotSupported. Revoking
// a session that is already gone returns nil. An id that cannot be one path
// segment ("", ".", "..") is sessions.ErrNotFound and sends no request.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	if strings.HasPrefix(id, eventPrefix) {
		return fmt.Errorf("revoke session: sign-in has no okta session id: %w", sessions.ErrNotSupported)
	}
	seg, err := httpclient.PathSegment(id)
	if err != nil {
		return fmt.Errorf("revoke session: %w: %w", err, sessions.ErrNotFound)
	}
	_, err = p.c.JSON(ctx, http.MethodDelete, "/api/v1/sessions/"+seg, nil, nil, nil)
	if err != nil && !errors.Is(err, sessions.ErrNotFound) {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeAll ends every Okta session of the user and revokes the OAuth tokens
// Okta issued to them (oauthTokens=true).
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	uid, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return fmt.Errorf("revoke all: %w", sessions.ErrNoAccount)
	}
	q := url.Values{"oauthTokens": {"true"}}
	_, err = p.c.JSON(ctx, http.MethodDelete, "/api/v1/users/"+uid+"/sessions", q, nil, nil)
	if err != nil && !errors.Is(err, sessions.ErrNotFound) {
		return fmt.Errorf("revoke all: %w", err)
	}
	return nil
}

// RevokeTokens revokes, for every OAuth client holding something for the
// user, its refresh tokens and its consent grants. A client whose id cannot
// be a path segment is skipped.
func (p *Provider) RevokeTokens(ctx context.Context, u sessions.User) error {
	uid, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", sessions.ErrNoAccount)
	}
	cs, err := p.clients(ctx, uid)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	for _, cl := range cs {
		cid, err := httpclient.PathSegment(cl.ClientID)
		if err != nil {
			continue
		}
		base := "/api/v1/users/" + uid + "/clients/" + cid
		for _, what := range []string{"/tokens", "/grants"} {
			_, err := p.c.JSON(ctx, http.MethodDelete, base+what, nil, nil, nil)
			if err != nil && !errors.Is(err, sessions.ErrNotFound) {
				return fmt.Errorf("revoke tokens: %w", err)
			}
		}
	}
	return nil
}
