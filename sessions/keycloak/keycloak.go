// Package keycloak is the Warden connector for Keycloak's Admin REST API.
//
// Keycloak can list a user's live sessions, end one or all of them, and
// revoke the consents (with their offline tokens) the user gave to clients.
// Warden authenticates as a service-account client with the client
// credentials grant; the client needs the realm-management roles view-users
// and manage-users.
package keycloak

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
)

// Name is the provider name Warden shows and stores.
const Name = "keycloak"

const (
	defaultPageSize = 100
	// maxPages bounds every paged listing, so a server that ignores
	// first/max cannot keep Warden looping.
	maxPages = 50
	// consentPrefix marks a consent's id in a Session (KindToken).
	consentPrefix = "consent:"
)

// Config configures a Provider. Everything but URL, Realm, ClientID and
// ClientSecret may be left zero.
type Config struct {
	// URL is Keycloak's base URL, e.g. "https://sso.example.com". Before
	// Keycloak 17 it ends in "/auth".
	URL          string
	Realm        string
	ClientID     string
	ClientSecret string
	// HTTP carries every request, the token request included (tests inject
	// fakes here). Nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Rate paces requests; 0 means the shared layer's default (10/s).
	Rate rate.Limit
	// PageSize is the "max" of each page; 0 means 100.
	PageSize int
	Logger   *slog.Logger
}

func (c *Config) validate() error {
	if c.URL == "" {
		return errors.New("keycloak: URL is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("keycloak: URL must be an absolute http(s) URL")
	}
	if c.Realm == "" {
		return errors.New("keycloak: realm is required")
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("keycloak: client ID and client secret are required")
	}
	if c.PageSize < 0 || c.Rate < 0 {
		return errors.New("keycloak: page size and rate must not be negative")
	}
	return nil
}

// Provider talks to one Keycloak realm. It is safe for concurrent use.
type Provider struct {
	api      *httpclient.Client
	realm    string // "/admin/realms/{realm}", escaped
	pageSize int
}

var (
	_ sessions.Provider     = (*Provider)(nil)
	_ sessions.TokenRevoker = (*Provider)(nil)
)

// New returns a Provider for cfg.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.URL, "/")
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     base + "/realms/" + url.PathEscape(cfg.Realm) + "/protocol/openid-connect/token",
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	tokens := httpclient.ClientCredentials(cc, hc)
	api, err := httpclient.New(httpclient.Config{
		Provider: Name,
		BaseURL:  base,
		HTTP:     hc,
		Tokens:   tokens,
		Rate:     cfg.Rate,
		Signal:   httpclient.RetryAfter,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("keycloak: %w", err)
	}
	return &Provider{
		api:      api,
		realm:    "/admin/realms/" + url.PathEscape(cfg.Realm),
		pageSize: cmp.Or(cfg.PageSize, defaultPageSize),
	}, nil
}

// Name returns "keycloak".
func (p *Provider) Name() string { return Name }

// Capabilities reports what Keycloak can do.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListSessions: true,
		RevokeOne:    true,
		RevokeAll:    true,
		RevokeTokens: true,
		Ends:         "Every online session of the user in the realm, with back-channel logout to clients that have an admin URL.",
		Leaves:       "Offline sessions and consents (revoke tokens to end them), and access tokens already issued, until they expire.",
	}
}

type kcUser struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
}

type kcSession struct {
	ID         string            `json:"id"`
	Username   string            `json:"username"`
	UserID     string            `json:"userId"`
	IPAddress  string            `json:"ipAddress"`
	Start      int64             `json:"start"`      // epoch milliseconds
	LastAccess int64             `json:"lastAccess"` // epoch milliseconds
	Clients    map[string]string `json:"clients"`    // client UUID → client ID
}

type kcConsent struct {
	ClientID            string   `json:"clientId"`
	GrantedClientScopes []string `json:"grantedClientScopes"`
	CreatedDate         int64    `json:"createdDate"`     // epoch milliseconds
	LastUpdatedDate     int64    `json:"lastUpdatedDate"` // epoch milliseconds
}

// FindUser looks the user up by exact email. It returns sessions.ErrNoAccount
// when nobody in the realm has that email.
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	var users []kcUser
	q := url.Values{"email": {email}, "exact": {"true"}}
	if _, err := p.api.JSON(ctx, http.MethodGet, p.realm+"/users", q, nil, &users); err != nil {
		return sessions.User{}, fmt.Errorf("find user: %w", err)
	}
	for _, u := range users {
		// Older Keycloak ignores exact=true and matches substrings.
		if u.ID == "" || !strings.EqualFold(u.Email, email) {
			continue
		}
		name := strings.TrimSpace(u.FirstName + " " + u.LastName)
		return sessions.User{
			Provider: Name,
			ID:       u.ID,
			Email:    u.Email,
			Name:     cmp.Or(name, u.Username),
		}, nil
	}
	return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
}

// ListSessions returns the user's live sessions (KindSession) followed by
// the consents they gave to clients (KindToken, id "consent:<clientId>").
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	live, err := p.liveSessions(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	consents, err := p.consents(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := make([]sessions.Session, 0, len(live)+len(consents))
	for _, s := range live {
		out = append(out, mapSession(s))
	}
	for _, c := range consents {
		out = append(out, mapConsent(c))
	}
	return out, nil
}

func mapSession(s kcSession) sessions.Session {
	clients := make([]string, 0, len(s.Clients))
	for _, c := range s.Clients {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	return sessions.Session{
		Provider:   Name,
		ID:         s.ID,
		Kind:       sessions.KindSession,
		Created:    millis(s.Start),
		LastActive: millis(s.LastAccess),
		IP:         s.IPAddress,
		Client:     strings.Join(clients, ", "),
		Active:     true,
	}
}

func mapConsent(c kcConsent) sessions.Session {
	return sessions.Session{
		Provider:   Name,
		ID:         consentPrefix + c.ClientID,
		Kind:       sessions.KindToken,
		Created:    millis(c.CreatedDate),
		LastActive: millis(c.LastUpdatedDate),
		Client:     c.ClientID,
		Active:     true,
	}
}

// millis converts epoch milliseconds; 0 stays the zero time.
func millis(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// liveSessions pages through GET /users/{id}/sessions with first/max.
func (p *Provider) liveSessions(ctx context.Context, u sessions.User) ([]kcSession, error) {
	id, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return nil, err
	}
	path := p.realm + "/users/" + id + "/sessions"
	var all []kcSession
	seen := map[string]bool{}
	for page := 0; page < maxPages; page++ {
		q := url.Values{
			"first": {strconv.Itoa(page * p.pageSize)},
			"max":   {strconv.Itoa(p.pageSize)},
		}
		var batch []kcSession
		if _, err := p.api.JSON(ctx, http.MethodGet, path, q, nil, &batch); err != nil {
			if httpclient.IsStatus(err, http.StatusNotFound) {
				return nil, nil // the user is gone, and so are their sessions
			}
			return nil, err
		}
		fresh := 0
		for _, s := range batch {
			if s.ID == "" || seen[s.ID] {
				continue
			}
			seen[s.ID] = true
			all = append(all, s)
			fresh++
		}
		// A short page ends the list; a page with nothing new means the
		// server ignores paging and already sent everything.
		if len(batch) < p.pageSize || fresh == 0 {
			return all, nil
		}
	}
	return all, nil
}

func (p *Provider) consents(ctx context.Context, u sessions.User) ([]kcConsent, error) {
	id, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return nil, err
	}
	var cs []kcConsent
	if _, err := p.api.JSON(ctx, http.MethodGet, p.realm+"/users/"+id+"/consents", nil, nil, &cs); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return slices.DeleteFunc(cs, func(c kcConsent) bool { return c.ClientID == "" }), nil
}

// RevokeSession ends one of the user's sessions. An id of the form
// "consent:<clientId>" (as listed for KindToken) revokes that consent and its
// offline tokens instead. A session that is gone, or that does not belong to
// u, is left alone and nil is returned.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	if client, ok := strings.CutPrefix(id, consentPrefix); ok {
		if err := p.deleteConsent(ctx, u, client); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		return nil
	}
	seg, err := httpclient.PathSegment(id)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	// The admin endpoint deletes any session of the realm; only delete
	// one that the listing shows as this user's.
	live, err := p.liveSessions(ctx, u)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if !slices.ContainsFunc(live, func(s kcSession) bool { return s.ID == id }) {
		return nil
	}
	if _, err := p.api.JSON(ctx, http.MethodDelete, p.realm+"/sessions/"+seg, nil, nil, nil); err != nil && !httpclient.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeAll signs the user out of every online session (POST /users/{id}/logout).
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	id, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return fmt.Errorf("revoke all: %w", err)
	}
	if _, err := p.api.JSON(ctx, http.MethodPost, p.realm+"/users/"+id+"/logout", nil, nil, nil); err != nil && !httpclient.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("revoke all: %w", err)
	}
	return nil
}

// RevokeTokens revokes every consent the user gave, which also removes that
// client's offline tokens. It tries every consent and reports all failures.
func (p *Provider) RevokeTokens(ctx context.Context, u sessions.User) error {
	cs, err := p.consents(ctx, u)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := p.deleteConsent(ctx, u, c.ClientID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}

func (p *Provider) deleteConsent(ctx context.Context, u sessions.User, clientID string) error {
	id, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return err
	}
	client, err := httpclient.PathSegment(clientID)
	if err != nil {
		return err
	}
	if _, err := p.api.JSON(ctx, http.MethodDelete, p.realm+"/users/"+id+"/consents/"+client, nil, nil, nil); err != nil && !httpclient.IsStatus(err, http.StatusNotFound) {
		return err
	}
	return nil
}
