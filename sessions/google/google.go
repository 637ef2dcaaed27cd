// Package google is the Warden connector for Google Workspace, through the
// Admin SDK Directory API.
//
// Google has no per-session list and cannot end one session. What it offers
// is "sign out everywhere" (users.signOut), the OAuth tokens and app-specific
// passwords a user holds (listed and revoked one by one), and the mobile
// devices enrolled in device management. Warden authenticates as a service
// account with domain-wide delegation, impersonating an admin.
package google

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	googleoauth "golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
)

// Name is the provider name Warden shows and stores.
const Name = "google"

// DefaultBaseURL is the Admin SDK's base URL.
const DefaultBaseURL = "https://admin.googleapis.com"

// Scopes the service account must be granted (domain-wide delegation).
const (
	ScopeUserSecurity  = "https://www.googleapis.com/auth/admin.directory.user.security"
	ScopeUserReadonly  = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeMobileReadony = "https://www.googleapis.com/auth/admin.directory.device.mobile.readonly"
)

const (
	directory = "/admin/directory/v1"
	// maxPages bounds the mobile-device listing.
	maxPages       = 20
	devicePageSize = 100

	tokenPrefix  = "token:"
	aspPrefix    = "asp:"
	devicePrefix = "device:"
)

// Config configures a Provider. CredentialsJSON and AdminEmail are required.
type Config struct {
	// BaseURL is the Admin SDK base; empty means DefaultBaseURL.
	BaseURL string
	// CredentialsJSON is the service account's JSON key.
	CredentialsJSON []byte
	// AdminEmail is the admin the service account impersonates (JWT sub).
	AdminEmail string
	// Customer is the Workspace customer id; empty means "my_customer".
	Customer string
	// HTTP carries every request, the token request included; nil means a
	// client with a 30 s timeout.
	HTTP *http.Client
	// Rate paces requests; 0 means the shared layer's default (10/s).
	Rate rate.Limit
	// TokenURL overrides the key's token_uri (tests fake the endpoint).
	TokenURL string
	Logger   *slog.Logger
}

func (c *Config) validate() error {
	if len(c.CredentialsJSON) == 0 {
		return errors.New("google: service account credentials are required")
	}
	if c.AdminEmail == "" || !strings.Contains(c.AdminEmail, "@") {
		return errors.New("google: admin email to impersonate is required")
	}
	for _, s := range []string{c.BaseURL, c.TokenURL} {
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("google: base and token URLs must be absolute http(s) URLs")
		}
	}
	if c.Rate < 0 {
		return errors.New("google: rate must not be negative")
	}
	return nil
}

// Provider talks to one Workspace customer. It is safe for concurrent use.
type Provider struct {
	api      *httpclient.Client
	customer string
}

var (
	_ sessions.Provider     = (*Provider)(nil)
	_ sessions.TokenRevoker = (*Provider)(nil)
)

// New returns a Provider for cfg. It checks the service account key at once,
// so a bad key stops start-up instead of the first incident.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	jc, err := googleoauth.JWTConfigFromJSON(cfg.CredentialsJSON, ScopeUserSecurity, ScopeUserReadonly, ScopeMobileReadony)
	if err != nil {
		// The parse error may quote the key file; do not pass it on.
		return nil, errors.New("google: credentials are not a service account JSON key")
	}
	if jc.Email == "" || len(jc.PrivateKey) == 0 {
		return nil, errors.New("google: service account key lacks client_email or private_key")
	}
	if err := checkKey(jc.PrivateKey); err != nil {
		return nil, err
	}
	jc.Subject = cfg.AdminEmail
	if cfg.TokenURL != "" {
		jc.TokenURL = cfg.TokenURL
	}
	if jc.TokenURL == "" {
		jc.TokenURL = googleoauth.JWTTokenURL
	}
	base := strings.TrimRight(cmp.Or(cfg.BaseURL, DefaultBaseURL), "/")
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	// The private key and its id stay out of every error.
	tokens := httpclient.NewTokenSource(func(ctx context.Context) (*oauth2.Token, error) {
		return fetchJWT(ctx, jc, hc)
	}, string(jc.PrivateKey), jc.PrivateKeyID)
	api, err := httpclient.New(httpclient.Config{
		Provider: Name,
		BaseURL:  base,
		HTTP:     hc,
		Tokens:   tokens,
		Rate:     cfg.Rate,
		Signal:   httpclient.GoogleQuota,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("google: %w", err)
	}
	return &Provider{
		api:      api,
		customer: cmp.Or(cfg.Customer, "my_customer"),
	}, nil
}

// fetchJWT signs a fresh assertion and exchanges it, with ctx's deadline.
func fetchJWT(ctx context.Context, jc *jwt.Config, hc *http.Client) (*oauth2.Token, error) {
	return jc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc)).Token()
}

// checkKey makes sure the key is a PEM RSA private key, without ever
// quoting it.
func checkKey(key []byte) error {
	block, _ := pem.Decode(key)
	if block == nil {
		return errors.New("google: private_key is not PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	return errors.New("google: private_key is not an RSA private key")
}

// Name returns "google".
func (p *Provider) Name() string { return Name }

// Capabilities reports what Google Workspace can do.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListDevices:  true,
		RevokeAll:    true,
		RevokeTokens: true,
		Ends:         "The user's web and device sign-ins: every Google session is signed out and the sign-in cookies are reset.",
		Leaves:       "OAuth grants to apps and app-specific passwords (revoke tokens to end them); Google does not say how fast devices notice.",
	}
}

type gUser struct {
	ID           string `json:"id"`
	PrimaryEmail string `json:"primaryEmail"`
	Name         struct {
		FullName string `json:"fullName"`
	} `json:"name"`
	Relations []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"relations"`
}

// FindUser gets the user by primary email or alias. It returns
// sessions.ErrNoAccount when Google answers 404.
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	key, err := httpclient.PathSegment(email)
	if err != nil {
		return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
	}
	var u gUser
	if _, err := p.api.JSON(ctx, http.MethodGet, directory+"/users/"+key, nil, nil, &u); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
		}
		return sessions.User{}, fmt.Errorf("find user: %w", err)
	}
	out := sessions.User{Provider: Name, ID: u.ID, Email: cmp.Or(u.PrimaryEmail, email), Name: u.Name.FullName}
	for _, r := range u.Relations {
		if r.Type == "manager" && strings.Contains(r.Value, "@") {
			out.ManagerEmail = r.Value
			break
		}
	}
	return out, nil
}

type gToken struct {
	ClientID    string   `json:"clientId"`
	DisplayText string   `json:"displayText"`
	Scopes      []string `json:"scopes"`
	NativeApp   bool     `json:"nativeApp"`
	Anonymous   bool     `json:"anonymous"`
}

type gASP struct {
	CodeID       flexInt `json:"codeId"`
	Name         string  `json:"name"`
	CreationTime flexInt `json:"creationTime"`
	LastTimeUsed flexInt `json:"lastTimeUsed"`
}

type gMobile struct {
	ResourceID string `json:"resourceId"`
	DeviceID   string `json:"deviceId"`
	Model      string `json:"model"`
	OS         string `json:"os"`
	Type       string `json:"type"`
	Status     string `json:"status"`
	UserAgent  string `json:"userAgent"`
	FirstSync  string `json:"firstSync"`
	LastSync   string `json:"lastSync"`
}

// flexInt reads an int64 that Google sends as a JSON string or number.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("not an integer")
	}
	*f = flexInt(n)
	return nil
}

// ListSessions returns the user's OAuth tokens and app-specific passwords
// (KindToken) and their managed mobile devices (KindDevice). Google has no
// list of live sessions.
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	toks, err := p.oauthTokens(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	asps, err := p.asps(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	devs, err := p.mobileDevices(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := make([]sessions.Session, 0, len(toks)+len(asps)+len(devs))
	for _, t := range toks {
		out = append(out, sessions.Session{
			Provider: Name,
			ID:       tokenPrefix + t.ClientID,
			Kind:     sessions.KindToken,
			Client:   cmp.Or(t.DisplayText, t.ClientID),
			Active:   true,
		})
	}
	for _, a := range asps {
		out = append(out, sessions.Session{
			Provider:   Name,
			ID:         aspPrefix + strconv.FormatInt(int64(a.CodeID), 10),
			Kind:       sessions.KindToken,
			Created:    unixish(int64(a.CreationTime)),
			LastActive: unixish(int64(a.LastTimeUsed)),
			Client:     cmp.Or(a.Name, "app-specific password"),
			Active:     true,
		})
	}
	for _, d := range devs {
		out = append(out, mapMobile(d))
	}
	return out, nil
}

func mapMobile(d gMobile) sessions.Session {
	dev := sessions.Device{}
	if d.UserAgent != "" {
		dev = sessions.ParseUserAgent(d.UserAgent)
	}
	// Google's own fields are better than a parsed user agent.
	dev.OS = cmp.Or(d.OS, dev.OS)
	dev.Client = cmp.Or(d.Model, dev.Client)
	dev.Mobile = true
	active := true
	switch strings.ToUpper(d.Status) {
	case "BLOCKED", "WIPED", "WIPING", "ACCOUNT_WIPED", "ACCOUNT_WIPING", "DEPROVISIONED":
		active = false
	}
	return sessions.Session{
		Provider:   Name,
		ID:         devicePrefix + d.ResourceID,
		Kind:       sessions.KindDevice,
		Created:    rfc3339(d.FirstSync),
		LastActive: rfc3339(d.LastSync),
		UserAgent:  d.UserAgent,
		Device:     dev,
		Managed:    sessions.ManagedYes, // listed by Google's device management
		Active:     active,
	}
}

// unixish reads a Unix time Google documents loosely: milliseconds when it is
// that large, seconds otherwise; 0 (never) is the zero time.
func unixish(n int64) time.Time {
	switch {
	case n <= 0:
		return time.Time{}
	case n > 1e11:
		return time.UnixMilli(n).UTC()
	default:
		return time.Unix(n, 0).UTC()
	}
}

func rfc3339(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func (p *Provider) userPath(u sessions.User) (string, error) {
	key, err := httpclient.PathSegment(cmp.Or(u.ID, u.Email))
	if err != nil {
		return "", err
	}
	return directory + "/users/" + key, nil
}

func (p *Provider) oauthTokens(ctx context.Context, u sessions.User) ([]gToken, error) {
	path, err := p.userPath(u)
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []gToken `json:"items"`
	}
	if _, err := p.api.JSON(ctx, http.MethodGet, path+"/tokens", nil, nil, &out); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, err
	}
	valid := out.Items[:0]
	for _, t := range out.Items {
		if t.ClientID != "" {
			valid = append(valid, t)
		}
	}
	return valid, nil
}

func (p *Provider) asps(ctx context.Context, u sessions.User) ([]gASP, error) {
	path, err := p.userPath(u)
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []gASP `json:"items"`
	}
	if _, err := p.api.JSON(ctx, http.MethodGet, path+"/asps", nil, nil, &out); err != nil {
		if httpclient.IsStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return out.Items, nil
}

// mobileDevices pages through the customer's mobile devices synced by the
// user's email.
func (p *Provider) mobileDevices(ctx context.Context, u sessions.User) ([]gMobile, error) {
	if u.Email == "" {
		return nil, nil
	}
	cust, err := httpclient.PathSegment(p.customer)
	if err != nil {
		return nil, err
	}
	path := directory + "/customer/" + cust + "/devices/mobile"
	var all []gMobile
	seen := map[string]bool{}
	pageToken := ""
	for page := 0; page < maxPages; page++ {
		q := url.Values{
			"query":      {"email:" + u.Email},
			"maxResults": {strconv.Itoa(devicePageSize)},
			"projection": {"BASIC"},
		}
		if pageToken != "" {
			q.Set("pageToken", pageToken)
		}
		var out struct {
			MobileDevices []gMobile `json:"mobiledevices"`
			NextPageToken string    `json:"nextPageToken"`
		}
		if _, err := p.api.JSON(ctx, http.MethodGet, path, q, nil, &out); err != nil {
			return nil, err
		}
		for _, d := range out.MobileDevices {
			if d.ResourceID == "" || seen[d.ResourceID] {
				continue
			}
			seen[d.ResourceID] = true
			all = append(all, d)
		}
		if out.NextPageToken == "" || out.NextPageToken == pageToken {
			break
		}
		pageToken = out.NextPageToken
	}
	return all, nil
}

// RevokeSession returns sessions.ErrNotSupported: Google cannot end one
// session. Use RevokeAll, or RevokeTokens for tokens and app passwords.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	return fmt.Errorf("revoke session: %w", sessions.ErrNotSupported)
}

// RevokeAll signs the user out of every web and device session
// (users.signOut). A user Google no longer knows counts as signed out.
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	path, err := p.userPath(u)
	if err != nil {
		return fmt.Errorf("revoke all: %w", err)
	}
	if _, err := p.api.JSON(ctx, http.MethodPost, path+"/signOut", nil, nil, nil); err != nil && !httpclient.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("revoke all: %w", err)
	}
	return nil
}

// RevokeTokens deletes every OAuth token (per client) and every app-specific
// password of the user. It tries each one and reports all failures.
func (p *Provider) RevokeTokens(ctx context.Context, u sessions.User) error {
	path, err := p.userPath(u)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	toks, err := p.oauthTokens(ctx, u)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	asps, err := p.asps(ctx, u)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	var targets []string
	for _, t := range toks {
		if seg, err := httpclient.PathSegment(t.ClientID); err == nil {
			targets = append(targets, path+"/tokens/"+seg)
		}
	}
	for _, a := range asps {
		targets = append(targets, path+"/asps/"+strconv.FormatInt(int64(a.CodeID), 10))
	}
	var errs []error
	for _, t := range targets {
		if _, err := p.api.JSON(ctx, http.MethodDelete, t, nil, nil, nil); err != nil && !httpclient.IsStatus(err, http.StatusNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}
