// Package slackgrid is the Warden connector for Slack Enterprise Grid's admin
// session methods: admin.users.session.list, .invalidate and .reset.
//
// It needs a user token (xoxp-…) of an org-level app installed by an Org
// Owner or Admin, with the scopes users:read.email, admin.users:read and
// admin.users:write. It speaks the Web API with plain net/http: only the bot
// package may import slack-go, and slack-go has no invalidate method anyway.
//
// Slack answers most failures with HTTP 200 and {"ok":false,"error":"…"};
// those become *APIError.
package slackgrid

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
)

// Name is the provider name Warden shows and stores.
const Name = "slack"

const (
	// DefaultAPIURL is Slack's Web API base.
	DefaultAPIURL = "https://slack.com/api/"
	// defaultRate is Tier 2: about 20 calls a minute per method.
	defaultRate  = rate.Limit(20.0 / 60)
	defaultBurst = 5
	// usersRate is Tier 4, for users.info and users.lookupByEmail.
	usersRate  = 100.0 / 60
	usersBurst = 10
	pageLimit  = 1000
	// maxPages bounds one workspace's session listing.
	maxPages = 50
)

// Config configures a Provider. Only AdminToken is required.
type Config struct {
	// APIURL is the Web API base, ending in "/"; empty means DefaultAPIURL.
	APIURL string
	// AdminToken is an Org Admin's user token (xoxp-…), SLACK_ADMIN_TOKEN.
	AdminToken string
	// HTTP carries every request; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Rate paces requests; 0 means 20 a minute (Tier 2) with a burst of 5.
	Rate   rate.Limit
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.AdminToken == "" {
		return errors.New("slackgrid: admin token is required")
	}
	if strings.HasPrefix(c.AdminToken, "xoxb-") || strings.HasPrefix(c.AdminToken, "xapp-") {
		return errors.New("slackgrid: admin token must be a user token (xoxp-…), not a bot or app token")
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("slackgrid: API URL must be an absolute http(s) URL")
		}
	}
	if c.Rate < 0 {
		return errors.New("slackgrid: rate must not be negative")
	}
	return nil
}

// Provider talks to one Enterprise Grid org. It is safe for concurrent use.
type Provider struct {
	api   *httpclient.Client // admin.users.session.* (Tier 2)
	users *httpclient.Client // users.info, users.lookupByEmail (Tier 4), paced on their own
	log   *slog.Logger
	token string // only to keep it out of errors

	mu     sync.Mutex
	teams  map[string][]string      // user id → workspace ids, learned by FindUser
	people map[string]sessions.User // user id → person with an email, learned by FindUser and users.info
}

var (
	_ sessions.Provider = (*Provider)(nil)
	_ sessions.Lister   = (*Provider)(nil)
)

// New returns a Provider for cfg.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r, burst := cfg.Rate, defaultBurst
	if r == 0 {
		r = defaultRate
	}
	client := func(r rate.Limit, burst int) (*httpclient.Client, error) {
		return httpclient.New(httpclient.Config{
			Provider: Name,
			BaseURL:  strings.TrimRight(cmp.Or(cfg.APIURL, DefaultAPIURL), "/"),
			HTTP:     cfg.HTTP,
			Rate:     r,
			Burst:    burst,
			Signal:   httpclient.RetryAfter,
			Header:   http.Header{"Authorization": {"Bearer " + cfg.AdminToken}},
			Logger:   cfg.Logger,
		})
	}
	api, err := client(r, burst)
	if err != nil {
		return nil, fmt.Errorf("slackgrid: %w", err)
	}
	// The users.* lookups are Tier 4 (100+ a minute): an org-wide poll
	// resolves every person with them, so they must not queue behind the
	// Tier 2 admin methods' pace. A configured Rate paces both.
	ur, ub := rate.Limit(usersRate), usersBurst
	if cfg.Rate != 0 {
		ur, ub = cfg.Rate, burst
	}
	users, err := client(ur, ub)
	if err != nil {
		return nil, fmt.Errorf("slackgrid: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{api: api, users: users, log: log, token: cfg.AdminToken, teams: map[string][]string{}, people: map[string]sessions.User{}}, nil
}

// Name returns "slack".
func (p *Provider) Name() string { return Name }

// Capabilities reports what Enterprise Grid can do.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListSessions: true,
		RevokeOne:    true,
		RevokeAll:    true,
		Ends:         "Every Slack session of the user, on every workspace, desktop, mobile and web client; the clients reset their local cache.",
		Leaves:       "Tokens of apps the user authorised, and the account itself: the user can sign in again.",
	}
}

// APIError is Slack's {"ok":false,"error":code} answer. It wraps
// sessions.ErrUnauthorized for credential and permission codes and
// httpclient.ErrThrottled for "ratelimited".
type APIError struct {
	Method string
	Code   string
}

func (e *APIError) Error() string { return "slack " + e.Method + ": " + e.Code }

// Unwrap maps Slack's code to the domain's sentinel errors.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
		"not_an_admin", "not_allowed_token_type", "missing_scope", "no_permission",
		"ekm_access_denied", "bots_not_allowed", "team_access_not_granted":
		return sessions.ErrUnauthorized
	case "ratelimited":
		return httpclient.ErrThrottled
	}
	return nil
}

// envelope is what every Web API answer carries.
type envelope struct {
	OK               bool   `json:"ok"`
	Error            string `json:"error"`
	ResponseMetadata struct {
		NextCursor string `json:"next_cursor"`
	} `json:"response_metadata"`
}

var codeRE = regexp.MustCompile(`^[a-z0-9_.\-]{1,64}$`)

// call posts form to method and decodes the answer into out (may be nil).
// It returns the next cursor, if any.
func (p *Provider) call(ctx context.Context, method string, form url.Values, out any) (string, error) {
	var raw json.RawMessage
	api := p.api
	if strings.HasPrefix(method, "users.") {
		api = p.users
	}
	if _, err := api.Form(ctx, "/"+method, form, &raw); err != nil {
		return "", redact(err, p.token)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return "", fmt.Errorf("slack %s: decode: invalid json", method)
	}
	if !env.OK {
		code := env.Error
		if !codeRE.MatchString(code) || strings.HasPrefix(code, "xox") || strings.Contains(code, p.token) {
			code = "unknown_error"
		}
		return "", &APIError{Method: method, Code: code}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return "", fmt.Errorf("slack %s: decode: invalid json", method)
		}
	}
	return env.ResponseMetadata.NextCursor, nil
}

func codeIs(err error, codes ...string) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.Code == c {
			return true
		}
	}
	return false
}

type slackUser struct {
	ID       string `json:"id"`
	TeamID   string `json:"team_id"`
	Name     string `json:"name"`
	RealName string `json:"real_name"`
	Deleted  bool   `json:"deleted"`
	IsBot    bool   `json:"is_bot"`
	Profile  struct {
		Email       string `json:"email"`
		RealName    string `json:"real_name"`
		DisplayName string `json:"display_name"`
	} `json:"profile"`
	EnterpriseUser struct {
		EnterpriseID string   `json:"enterprise_id"`
		Teams        []string `json:"teams"`
	} `json:"enterprise_user"`
}

func (u slackUser) workspaces() []string {
	if len(u.EnterpriseUser.Teams) > 0 {
		return u.EnterpriseUser.Teams
	}
	if u.TeamID != "" {
		return []string{u.TeamID}
	}
	return nil
}

// FindUser looks the user up with users.lookupByEmail. It returns
// sessions.ErrNoAccount for users_not_found and for deactivated accounts,
// which Slack has already signed out.
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	var out struct {
		User slackUser `json:"user"`
	}
	if _, err := p.call(ctx, "users.lookupByEmail", url.Values{"email": {email}}, &out); err != nil {
		if codeIs(err, "users_not_found", "user_not_found") {
			return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
		}
		return sessions.User{}, fmt.Errorf("find user: %w", err)
	}
	u := out.User
	if u.ID == "" || u.Deleted || u.IsBot {
		return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
	}
	p.remember(u)
	return u.person(email), nil
}

// person is u as the domain sees it; email stands in for a missing profile
// email.
func (u slackUser) person(email string) sessions.User {
	return sessions.User{
		Provider: Name,
		ID:       u.ID,
		Email:    cmp.Or(u.Profile.Email, email),
		Name:     cmp.Or(u.Profile.RealName, u.RealName, u.Profile.DisplayName, u.Name),
	}
}

// account reports whether u is a person Warden can act for: not a bot, not
// deactivated, and with an email to match on.
func (u slackUser) account() bool {
	return u.ID != "" && !u.Deleted && !u.IsBot && u.Profile.Email != ""
}

func (p *Provider) remember(u slackUser) {
	ws := u.workspaces()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(ws) > 0 {
		p.teams[u.ID] = ws
	}
	if u.account() {
		p.people[u.ID] = u.person("")
	}
}

// person resolves a user id to a person with users.info, once per id for the
// life of the Provider. It returns sessions.ErrNoAccount for unknown users,
// bots, deactivated accounts and accounts without an email; those answers
// are not cached, so a reactivated account is seen again.
func (p *Provider) person(ctx context.Context, userID string) (sessions.User, error) {
	p.mu.Lock()
	u, ok := p.people[userID]
	p.mu.Unlock()
	if ok {
		return u, nil
	}
	var out struct {
		User slackUser `json:"user"`
	}
	if _, err := p.call(ctx, "users.info", url.Values{"user": {userID}}, &out); err != nil {
		if codeIs(err, "user_not_found", "users_not_found") {
			return sessions.User{}, sessions.ErrNoAccount
		}
		return sessions.User{}, err
	}
	if out.User.ID != userID || !out.User.account() {
		return sessions.User{}, sessions.ErrNoAccount
	}
	p.remember(out.User)
	return out.User.person(""), nil
}

// workspaces returns the workspaces a user belongs to, asking users.info
// when FindUser has not seen the user (admin.users.session.list needs a
// team_id with every user_id).
func (p *Provider) workspaces(ctx context.Context, userID string) ([]string, error) {
	p.mu.Lock()
	ws := p.teams[userID]
	p.mu.Unlock()
	if len(ws) > 0 {
		return ws, nil
	}
	var out struct {
		User slackUser `json:"user"`
	}
	if _, err := p.call(ctx, "users.info", url.Values{"user": {userID}}, &out); err != nil {
		if codeIs(err, "user_not_found", "users_not_found") {
			return nil, nil
		}
		return nil, err
	}
	p.remember(out.User)
	return out.User.workspaces(), nil
}

type sessionDevice struct {
	DeviceHardware     string `json:"device_hardware"`
	OS                 string `json:"os"`
	OSVersion          string `json:"os_version"`
	SlackClientVersion string `json:"slack_client_version"`
	IP                 string `json:"ip"`
}

type activeSession struct {
	UserID    string         `json:"user_id"`
	TeamID    string         `json:"team_id"`
	SessionID int64          `json:"session_id"`
	Created   sessionDevice  `json:"created"`
	Recent    *sessionDevice `json:"recent"`
}

// ListSessions lists the user's live sessions on each of their workspaces
// with admin.users.session.list. Slack gives no timestamps and no location.
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	if u.ID == "" {
		return nil, fmt.Errorf("list sessions: %w", errEmptyUser)
	}
	teams, err := p.workspaces(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	var out []sessions.Session
	seen := map[int64]bool{}
	for _, team := range teams {
		cursor := ""
		for page := 0; page < maxPages; page++ {
			form := url.Values{"team_id": {team}, "user_id": {u.ID}, "limit": {strconv.Itoa(pageLimit)}}
			if cursor != "" {
				form.Set("cursor", cursor)
			}
			var resp struct {
				ActiveSessions []activeSession `json:"active_sessions"`
			}
			next, err := p.call(ctx, "admin.users.session.list", form, &resp)
			if codeIs(err, "no_active_sessions") {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list sessions: %w", err)
			}
			for _, s := range resp.ActiveSessions {
				if s.SessionID == 0 || seen[s.SessionID] || (s.UserID != "" && s.UserID != u.ID) {
					continue
				}
				seen[s.SessionID] = true
				out = append(out, mapSession(s))
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return out, nil
}

var errEmptyUser = errors.New("user has no id")

// ListAll lists every live session in the org with admin.users.session.list
// called without team_id and user_id, for new-device detection. The slices
// are parallel: users[i] owns sessions[i]. Sessions of bots, deactivated
// accounts and accounts without an email are left out. The listing stops
// after maxPages pages of pageLimit sessions, with a warning in the log.
// Errors are *APIError for Slack's ok:false answers, or the shared HTTP
// layer's errors (httpclient.ErrThrottled when retries run out).
func (p *Provider) ListAll(ctx context.Context) ([]sessions.Session, []sessions.User, error) {
	var (
		out   []sessions.Session
		users []sessions.User
	)
	seen := map[int64]bool{}
	noAccount := map[string]bool{} // user ids skipped during this call
	cursors := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page == maxPages {
			p.log.WarnContext(ctx, "org-wide session listing cut at page bound",
				slog.String("provider", Name), slog.Int("pages", maxPages))
			break
		}
		form := url.Values{"limit": {strconv.Itoa(pageLimit)}}
		if cursor != "" {
			form.Set("cursor", cursor)
		}
		var resp struct {
			ActiveSessions []activeSession `json:"active_sessions"`
		}
		next, err := p.call(ctx, "admin.users.session.list", form, &resp)
		if codeIs(err, "no_active_sessions") {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("list all sessions: %w", err)
		}
		for _, s := range resp.ActiveSessions {
			if s.SessionID == 0 || s.UserID == "" || seen[s.SessionID] || noAccount[s.UserID] {
				continue
			}
			seen[s.SessionID] = true
			u, err := p.person(ctx, s.UserID)
			if errors.Is(err, sessions.ErrNoAccount) {
				noAccount[s.UserID] = true
				p.log.DebugContext(ctx, "slack sessions of a non-account skipped", slog.String("user_id", s.UserID))
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("list all sessions: %w", err)
			}
			out = append(out, mapSession(s))
			users = append(users, u)
		}
		if next == "" || cursors[next] {
			break
		}
		cursors[next] = true
		cursor = next
	}
	return out, users, nil
}

func mapSession(s activeSession) sessions.Session {
	d := s.Created
	if s.Recent != nil {
		d = *s.Recent
	}
	return sessions.Session{
		Provider: Name,
		ID:       strconv.FormatInt(s.SessionID, 10),
		Kind:     sessions.KindSession,
		IP:       cmp.Or(d.IP, s.Created.IP),
		Device:   device(d),
		Active:   true,
	}
}

// device reads Slack's description of the client.
func device(d sessionDevice) sessions.Device {
	os := strings.TrimSpace(d.OS + " " + d.OSVersion)
	hw := strings.ToLower(d.DeviceHardware + " " + d.OS)
	mobile := strings.Contains(hw, "ios") || strings.Contains(hw, "android") ||
		strings.Contains(hw, "iphone") || strings.Contains(hw, "ipad")
	client := ""
	switch {
	case d.SlackClientVersion != "" && mobile:
		client = "Slack mobile " + d.SlackClientVersion
	case d.SlackClientVersion != "":
		client = "Slack " + d.SlackClientVersion
	case d.DeviceHardware != "":
		client = d.DeviceHardware
	}
	return sessions.Device{OS: os, Client: client, Mobile: mobile}
}

// RevokeSession ends one session with admin.users.session.invalidate. A
// session Slack no longer knows counts as revoked.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	sid, err := strconv.ParseInt(id, 10, 64)
	if err != nil || sid <= 0 {
		return fmt.Errorf("revoke session: %w", errBadSessionID)
	}
	if u.ID == "" {
		return fmt.Errorf("revoke session: %w", errEmptyUser)
	}
	form := url.Values{"session_id": {strconv.FormatInt(sid, 10)}, "user_id": {u.ID}}
	if _, err := p.call(ctx, "admin.users.session.invalidate", form, nil); err != nil && !codeIs(err, "session_not_found", "invalid_session") {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

var errBadSessionID = errors.New("slack session ids are numbers")

// RevokeAll ends every session of the user with admin.users.session.reset.
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	if u.ID == "" {
		return fmt.Errorf("revoke all: %w", errEmptyUser)
	}
	if _, err := p.call(ctx, "admin.users.session.reset", url.Values{"user_id": {u.ID}}, nil); err != nil && !codeIs(err, "user_not_found") {
		return fmt.Errorf("revoke all: %w", err)
	}
	return nil
}
