// Package entra is the Warden connector for Microsoft Entra ID, through
// Microsoft Graph.
//
// Entra has no list of live sessions and cannot end one. Warden shows the
// user's recent successful sign-ins (auditLogs/signIns, which needs an Entra
// ID P1 or P2 licence), their registered devices and the delegated
// permission grants (consents) they gave; "revoke all" is
// revokeSignInSessions, which takes a few minutes to bite.
//
// Warden authenticates with the client credentials grant. Application
// permissions: User.Read.All, AuditLog.Read.All, Directory.Read.All,
// User.RevokeSessions.All and DelegatedPermissionGrant.ReadWrite.All.
package entra

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
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
const Name = "entra"

const (
	// DefaultGraphURL is Microsoft Graph v1.0.
	DefaultGraphURL = "https://graph.microsoft.com/v1.0"
	// DefaultTokenURL is the v2 token endpoint; {tenant} is replaced.
	DefaultTokenURL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
	graphScope      = "https://graph.microsoft.com/.default"

	// The reports API allows 5 requests per 10 s per app and tenant.
	defaultSignInRate  = rate.Limit(0.5)
	defaultSignInBurst = 5
	defaultSignInPages = 2
	defaultSignInTop   = 100
	// maxPages bounds the other paged listings.
	maxPages = 20
	// effectWithin is how long revokeSignInSessions may take to bite.
	effectWithin = 5 * time.Minute

	devicePrefix = "device:"
	grantPrefix  = "grant:"
)

// Config configures a Provider. ClientID, ClientSecret and TenantID (unless
// TokenURL is set) are required.
type Config struct {
	// GraphURL is Graph's base including the version; empty means DefaultGraphURL.
	GraphURL string
	// TokenURL overrides DefaultTokenURL (national clouds, tests).
	TokenURL     string
	TenantID     string
	ClientID     string
	ClientSecret string
	// HTTP carries every request, the token request included; nil means a
	// client with a 30 s timeout.
	HTTP *http.Client
	// Rate paces Graph requests other than sign-ins; 0 means 10/s.
	Rate rate.Limit
	// SignInRate paces auditLogs/signIns; 0 means 0.5/s with a burst of 5
	// (the reports API's 5 requests per 10 s).
	SignInRate rate.Limit
	// SignInPages bounds how many pages of sign-ins are read (0 means 2),
	// SignInTop their size ($top; 0 means 100).
	SignInPages int
	SignInTop   int
	Logger      *slog.Logger
}

var tenantRE = regexp.MustCompile(`^[A-Za-z0-9.\-]{1,256}$`)

func (c *Config) validate() error {
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("entra: client ID and client secret are required")
	}
	if c.TokenURL == "" && !tenantRE.MatchString(c.TenantID) {
		return errors.New("entra: tenant ID (a GUID or domain) is required")
	}
	for _, s := range []string{c.GraphURL, c.TokenURL} {
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("entra: Graph and token URLs must be absolute http(s) URLs")
		}
	}
	if c.Rate < 0 || c.SignInRate < 0 || c.SignInPages < 0 || c.SignInTop < 0 || c.SignInTop > 1000 {
		return errors.New("entra: rates and page settings must not be negative; $top is at most 1000")
	}
	return nil
}

// Provider talks to one Entra tenant. It is safe for concurrent use.
type Provider struct {
	api         *httpclient.Client
	reports     *httpclient.Client // auditLogs, paced apart
	log         *slog.Logger
	signInPages int
	signInTop   int
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
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = strings.Replace(DefaultTokenURL, "{tenant}", cfg.TenantID, 1)
	}
	base := strings.TrimRight(cmp.Or(cfg.GraphURL, DefaultGraphURL), "/")
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     tokenURL,
		Scopes:       []string{graphScope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	// One token for both clients: they share the cache and its refresh.
	tokens := httpclient.ClientCredentials(cc, hc)
	graph, err := httpclient.New(httpclient.Config{
		Provider: Name, BaseURL: base, HTTP: hc, Tokens: tokens, Rate: cfg.Rate,
		Signal: httpclient.RetryAfter, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	sr, burst := cfg.SignInRate, 1
	if sr == 0 {
		sr, burst = defaultSignInRate, defaultSignInBurst
	}
	reports, err := httpclient.New(httpclient.Config{
		Provider: Name, BaseURL: base, HTTP: hc, Tokens: tokens, Rate: sr, Burst: burst,
		Signal: httpclient.RetryAfter, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		api:         graph,
		reports:     reports,
		log:         log,
		signInPages: cmp.Or(cfg.SignInPages, defaultSignInPages),
		signInTop:   cmp.Or(cfg.SignInTop, defaultSignInTop),
	}, nil
}

// Name returns "entra".
func (p *Provider) Name() string { return Name }

// Capabilities reports what Entra can do.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListSignIns:  true,
		ListDevices:  true,
		RevokeAll:    true,
		RevokeTokens: true,
		EffectWithin: effectWithin,
		Ends:         "Refresh tokens and browser session cookies (signInSessionsValidFromDateTime moves forward); takes effect within minutes.",
		Leaves:       "Access tokens already issued, until they expire (unless Continuous Access Evaluation applies); external (B2B) users' sessions; app consent grants (revoke tokens to remove them).",
	}
}

type graphUser struct {
	ID                string `json:"id"`
	DisplayName       string `json:"displayName"`
	Mail              string `json:"mail"`
	UserPrincipalName string `json:"userPrincipalName"`
}

const userSelect = "id,displayName,mail,userPrincipalName"

// FindUser gets the user by user principal name, then by mail. It returns
// sessions.ErrNoAccount when neither matches. The manager's email is filled
// in when Graph knows the manager.
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	u, err := p.findUser(ctx, email)
	if err != nil {
		return sessions.User{}, fmt.Errorf("find user: %w", err)
	}
	out := sessions.User{
		Provider: Name,
		ID:       u.ID,
		Email:    cmp.Or(u.Mail, u.UserPrincipalName, email),
		Name:     u.DisplayName,
	}
	m, err := p.manager(ctx, u.ID)
	if err != nil {
		return sessions.User{}, fmt.Errorf("find user: manager: %w", err)
	}
	out.ManagerEmail = m
	return out, nil
}

func (p *Provider) findUser(ctx context.Context, email string) (graphUser, error) {
	sel := url.Values{"$select": {userSelect}}
	if seg, err := httpclient.PathSegment(email); err == nil {
		var u graphUser
		_, err := p.api.JSON(ctx, http.MethodGet, "/users/"+seg, sel, nil, &u)
		switch {
		case err == nil && u.ID != "":
			return u, nil
		case err != nil && !httpclient.IsStatus(err, http.StatusNotFound) && !httpclient.IsStatus(err, http.StatusBadRequest):
			return graphUser{}, err
		}
	}
	// Not a UPN: look for the mail address.
	q := url.Values{
		"$filter": {"mail eq '" + odataString(email) + "'"},
		"$select": {userSelect},
		"$top":    {"2"},
	}
	var list struct {
		Value []graphUser `json:"value"`
	}
	if _, err := p.api.JSON(ctx, http.MethodGet, "/users", q, nil, &list); err != nil {
		return graphUser{}, err
	}
	for _, u := range list.Value {
		if u.ID != "" {
			return u, nil
		}
	}
	return graphUser{}, sessions.ErrNoAccount
}

// manager returns the manager's email, or "" when there is none or the app
// may not read it.
func (p *Provider) manager(ctx context.Context, id string) (string, error) {
	seg, err := httpclient.PathSegment(id)
	if err != nil {
		return "", err
	}
	var m graphUser
	_, err = p.api.JSON(ctx, http.MethodGet, "/users/"+seg+"/manager", url.Values{"$select": {"mail,userPrincipalName"}}, nil, &m)
	switch {
	case err == nil:
		return cmp.Or(m.Mail, m.UserPrincipalName), nil
	case httpclient.IsStatus(err, http.StatusNotFound):
		return "", nil
	case httpclient.IsStatus(err, http.StatusForbidden):
		p.log.WarnContext(ctx, "entra: may not read managers", "provider", Name)
		return "", nil
	}
	return "", err
}

// odataString escapes s for a single-quoted OData literal.
func odataString(s string) string { return strings.ReplaceAll(s, "'", "''") }

type signIn struct {
	ID              string `json:"id"`
	CreatedDateTime string `json:"createdDateTime"`
	UserID          string `json:"userId"`
	AppDisplayName  string `json:"appDisplayName"`
	AppID           string `json:"appId"`
	IPAddress       string `json:"ipAddress"`
	ClientAppUsed   string `json:"clientAppUsed"`
	DeviceDetail    struct {
		DeviceID        string `json:"deviceId"`
		DisplayName     string `json:"displayName"`
		OperatingSystem string `json:"operatingSystem"`
		Browser         string `json:"browser"`
		IsCompliant     bool   `json:"isCompliant"`
		IsManaged       bool   `json:"isManaged"`
	} `json:"deviceDetail"`
	Location struct {
		City            string `json:"city"`
		State           string `json:"state"`
		CountryOrRegion string `json:"countryOrRegion"`
	} `json:"location"`
	Status struct {
		ErrorCode int `json:"errorCode"`
	} `json:"status"`
}

type device struct {
	ODataType                     string `json:"@odata.type"`
	ID                            string `json:"id"`
	DisplayName                   string `json:"displayName"`
	OperatingSystem               string `json:"operatingSystem"`
	OperatingSystemVersion        string `json:"operatingSystemVersion"`
	ApproximateLastSignInDateTime string `json:"approximateLastSignInDateTime"`
	RegistrationDateTime          string `json:"registrationDateTime"`
	IsManaged                     *bool  `json:"isManaged"`
	AccountEnabled                *bool  `json:"accountEnabled"`
	Model                         string `json:"model"`
}

type grant struct {
	ID          string `json:"id"`
	ClientID    string `json:"clientId"`
	ConsentType string `json:"consentType"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	Scope       string `json:"scope"`
}

// ListSessions returns the user's recent successful sign-ins (KindSignIn,
// newest first, at most SignInPages pages), their registered devices
// (KindDevice) and their delegated permission grants (KindToken). Devices
// are skipped, with a warning in the log, when Graph refuses app-only access
// to them.
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	ins, err := p.signIns(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: sign-ins: %w", err)
	}
	devs, err := p.devices(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: devices: %w", err)
	}
	grants, err := p.grants(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: grants: %w", err)
	}
	out := make([]sessions.Session, 0, len(ins)+len(devs)+len(grants))
	for _, s := range ins {
		out = append(out, mapSignIn(s))
	}
	for _, d := range devs {
		out = append(out, mapDevice(d))
	}
	for _, g := range grants {
		out = append(out, sessions.Session{
			Provider: Name,
			ID:       grantPrefix + g.ID,
			Kind:     sessions.KindToken,
			Client:   g.ClientID,
			Active:   true,
		})
	}
	return out, nil
}

func (p *Provider) signIns(ctx context.Context, u sessions.User) ([]signIn, error) {
	if u.ID == "" {
		return nil, httpclient.ErrBadID
	}
	q := url.Values{
		"$filter": {"userId eq '" + odataString(u.ID) + "'"},
		"$top":    {strconv.Itoa(p.signInTop)},
	}
	var out []signIn
	err := pages(ctx, p.reports, "/auditLogs/signIns", q, p.signInPages, func(batch []signIn) {
		for _, s := range batch {
			if s.ID != "" && s.Status.ErrorCode == 0 {
				out = append(out, s)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (p *Provider) devices(ctx context.Context, u sessions.User) ([]device, error) {
	seg, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return nil, err
	}
	var out []device
	err = pages(ctx, p.api, "/users/"+seg+"/registeredDevices", nil, maxPages, func(batch []device) {
		for _, d := range batch {
			if d.ID != "" && (d.ODataType == "" || d.ODataType == "#microsoft.graph.device") {
				out = append(out, d)
			}
		}
	})
	switch {
	case err == nil:
		return out, nil
	case httpclient.IsStatus(err, http.StatusNotFound):
		return nil, nil
	case httpclient.IsStatus(err, http.StatusForbidden):
		// Graph documents no application permission for this endpoint.
		p.log.WarnContext(ctx, "entra: may not list registered devices; showing none", "provider", Name)
		return nil, nil
	}
	return nil, err
}

func (p *Provider) grants(ctx context.Context, u sessions.User) ([]grant, error) {
	seg, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return nil, err
	}
	var out []grant
	err = pages(ctx, p.api, "/users/"+seg+"/oauth2PermissionGrants", nil, maxPages, func(batch []grant) {
		for _, g := range batch {
			if g.ID != "" {
				out = append(out, g)
			}
		}
	})
	if err != nil && !httpclient.IsStatus(err, http.StatusNotFound) {
		return nil, err
	}
	return out, nil
}

// pages GETs path and follows @odata.nextLink (on Graph's own host only)
// for at most limit pages, handing each page's value to each.
func pages[T any](ctx context.Context, c *httpclient.Client, path string, q url.Values, limit int, each func([]T)) error {
	next := path
	for page := 0; page < limit && next != ""; page++ {
		var out struct {
			Value    []T    `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if _, err := c.JSON(ctx, http.MethodGet, next, q, nil, &out); err != nil {
			return err
		}
		each(out.Value)
		if out.NextLink == next {
			break
		}
		next, q = out.NextLink, nil // the link carries the query
	}
	return nil
}

func mapSignIn(s signIn) sessions.Session {
	d := s.DeviceDetail
	os := strings.ToLower(d.OperatingSystem)
	dev := sessions.Device{
		OS:      d.OperatingSystem,
		Browser: d.Browser,
		Mobile:  strings.Contains(os, "ios") || strings.Contains(os, "android"),
	}
	if s.ClientAppUsed != "" && s.ClientAppUsed != "Browser" {
		dev.Client = s.ClientAppUsed
	}
	managed := sessions.ManagedNo // Entra calls an unregistered device unmanaged
	if d.IsManaged || d.IsCompliant {
		managed = sessions.ManagedYes
	}
	loc := s.Location
	place := ""
	switch {
	case loc.City != "" && loc.CountryOrRegion != "":
		place = loc.City + ", " + loc.CountryOrRegion
	default:
		place = cmp.Or(loc.City, loc.CountryOrRegion)
	}
	country := ""
	if len(loc.CountryOrRegion) == 2 {
		country = strings.ToUpper(loc.CountryOrRegion)
	}
	return sessions.Session{
		Provider: Name,
		ID:       s.ID,
		Kind:     sessions.KindSignIn,
		Created:  rfc3339(s.CreatedDateTime),
		IP:       s.IPAddress,
		Device:   dev,
		Location: place,
		Country:  country,
		Managed:  managed,
		Client:   cmp.Or(s.AppDisplayName, s.AppID),
		Active:   true,
	}
}

func mapDevice(d device) sessions.Session {
	managed := sessions.ManagedUnknown
	if d.IsManaged != nil {
		managed = sessions.ManagedNo
		if *d.IsManaged {
			managed = sessions.ManagedYes
		}
	}
	os := strings.TrimSpace(d.OperatingSystem + " " + d.OperatingSystemVersion)
	lower := strings.ToLower(d.OperatingSystem)
	return sessions.Session{
		Provider:   Name,
		ID:         devicePrefix + d.ID,
		Kind:       sessions.KindDevice,
		Created:    rfc3339(d.RegistrationDateTime),
		LastActive: rfc3339(d.ApproximateLastSignInDateTime),
		Device: sessions.Device{
			OS:     os,
			Client: cmp.Or(d.DisplayName, d.Model),
			Mobile: strings.Contains(lower, "ios") || strings.Contains(lower, "android") || strings.Contains(lower, "ipad"),
		},
		Managed: managed,
		Active:  d.AccountEnabled == nil || *d.AccountEnabled,
	}
}

func rfc3339(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// RevokeSession returns sessions.ErrNotSupported: Entra cannot end one
// session. Use RevokeAll.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	return fmt.Errorf("revoke session: %w", sessions.ErrNotSupported)
}

// RevokeAll calls revokeSignInSessions, which invalidates refresh tokens and
// session cookies within a few minutes. A user Graph no longer knows counts
// as revoked.
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	seg, err := httpclient.PathSegment(u.ID)
	if err != nil {
		return fmt.Errorf("revoke all: %w", err)
	}
	// v1.0 answers 200 {"value": true}; the old beta answered 204.
	var out struct {
		Value *bool `json:"value"`
	}
	if _, err := p.api.JSON(ctx, http.MethodPost, "/users/"+seg+"/revokeSignInSessions", nil, nil, &out); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return nil
		}
		return fmt.Errorf("revoke all: %w", err)
	}
	if out.Value != nil && !*out.Value {
		return errors.New("revoke all: graph answered value false")
	}
	return nil
}

// RevokeTokens deletes every delegated permission grant the user gave. It
// tries each and reports all failures.
func (p *Provider) RevokeTokens(ctx context.Context, u sessions.User) error {
	gs, err := p.grants(ctx, u)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	var errs []error
	for _, g := range gs {
		seg, err := httpclient.PathSegment(g.ID)
		if err != nil {
			continue
		}
		if _, err := p.api.JSON(ctx, http.MethodDelete, "/oauth2PermissionGrants/"+seg, nil, nil, nil); err != nil && !httpclient.IsStatus(err, http.StatusNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}
