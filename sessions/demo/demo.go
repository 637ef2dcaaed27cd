// Package demo is Warden's embedded default identity provider: a realistic,
// seeded inventory of five people at example.com with laptops, phones, a CLI
// token, a stale session, an unmanaged device and a sign-in from an odd
// country. It lets Warden be tried, and its playbooks exercised, without any
// real identity provider.
//
// The inventory is one versioned JSON document kept in storage (bucket
// provider_state, key "demo") and updated with compare-and-swap, so
// revocations stick across restarts. Times are seeded relative to
// Config.Now at first use and then stay put. Addresses come from the
// documentation ranges (RFC 5737).
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// Name is the provider's name.
const Name = "demo"

const (
	stateKey     = "demo" // key in storage.ProviderState
	stateVersion = 1      // schema of the stored document
	maxAttempts  = 10     // compare-and-swap retries before giving up
	// MaxSessionsPerUser bounds what AddSession lets one user accumulate.
	MaxSessionsPerUser = 200
)

// Errors returned by the demo provider, besides sessions.ErrNoAccount.
var (
	// ErrBusy means the stored inventory kept changing under a write.
	ErrBusy = errors.New("demo inventory busy, retry")
	// ErrSchema means the stored inventory was written by a newer Warden.
	ErrSchema = errors.New("unsupported demo inventory version")
	// ErrDuplicateID means AddSession was given an id another user holds.
	ErrDuplicateID = errors.New("session id belongs to another user")
	// ErrTooMany means a user already has MaxSessionsPerUser sessions.
	ErrTooMany = errors.New("too many sessions")
)

// Store is what the demo provider needs from storage. *storage.DB
// implements it.
type Store interface {
	// Get returns storage.ErrNotFound when key is absent.
	Get(ctx context.Context, b storage.Bucket, key string) (storage.Item, error)
	// Put stores value when the stored version equals expect (0: create)
	// and returns the new version, or storage.ErrConflict.
	Put(ctx context.Context, b storage.Bucket, key string, expect uint64, value []byte, audit ...storage.Record) (uint64, error)
}

var _ Store = (*storage.DB)(nil)

// Config configures the demo provider. The zero value is usable: an
// in-memory inventory seeded at time.Now.
type Config struct {
	Store   Store            // nil: kept in memory, lost on restart
	Now     func() time.Time // default time.Now
	Latency time.Duration    // simulated delay before every call; 0: none
}

func (c *Config) validate() error {
	if c.Latency < 0 {
		return fmt.Errorf("latency %v is negative", c.Latency)
	}
	return nil
}

// Provider is the demo identity provider. It is safe for concurrent use.
type Provider struct {
	store   Store
	now     func() time.Time
	latency time.Duration
}

var (
	_ sessions.Provider     = (*Provider)(nil)
	_ sessions.TokenRevoker = (*Provider)(nil)
	_ sessions.Lister       = (*Provider)(nil)
)

// New returns the demo provider. Nothing is read or seeded until first use.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new demo provider: %w", err)
	}
	if cfg.Store == nil {
		cfg.Store = newMemStore()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Provider{store: cfg.Store, now: cfg.Now, latency: cfg.Latency}, nil
}

// Name returns "demo".
func (p *Provider) Name() string { return Name }

// Capabilities: the demo lists live sessions and revokes one, all, or
// tokens, with immediate effect.
func (p *Provider) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{
		ListSessions: true,
		RevokeOne:    true,
		RevokeAll:    true,
		RevokeTokens: true,
		EffectWithin: 0,
		Ends:         "Every demo browser and app session of the person, immediately.",
		Leaves:       "CLI and API tokens; revoke those separately.",
	}
}

// FindUser returns the person with this email (case-insensitive), or
// sessions.ErrNoAccount.
func (p *Provider) FindUser(ctx context.Context, email string) (sessions.User, error) {
	if err := p.delay(ctx); err != nil {
		return sessions.User{}, fmt.Errorf("demo find user: %w", err)
	}
	st, _, err := p.load(ctx)
	if err != nil {
		return sessions.User{}, fmt.Errorf("demo find user: %w", err)
	}
	u := st.byEmail(email)
	if u == nil {
		return sessions.User{}, fmt.Errorf("demo find user: %w", sessions.ErrNoAccount)
	}
	return u.toUser(), nil
}

// ListSessions returns u's sessions and tokens, or sessions.ErrNoAccount.
func (p *Provider) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	if err := p.delay(ctx); err != nil {
		return nil, fmt.Errorf("demo list sessions: %w", err)
	}
	st, _, err := p.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo list sessions: %w", err)
	}
	su := st.find(u)
	if su == nil {
		return nil, fmt.Errorf("demo list sessions: %w", sessions.ErrNoAccount)
	}
	out := make([]sessions.Session, 0, len(su.Sessions))
	for _, s := range su.Sessions {
		out = append(out, s.toSession())
	}
	sessions.SortByActivity(out)
	return out, nil
}

// RevokeSession removes one session or token of u. An unknown id is
// success (it is already gone); an unknown user is sessions.ErrNoAccount.
func (p *Provider) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	if err := p.delay(ctx); err != nil {
		return fmt.Errorf("demo revoke session: %w", err)
	}
	err := p.update(ctx, u, func(su *storedUser) bool {
		return su.remove(func(s storedSession) bool { return s.ID == id })
	})
	if err != nil {
		return fmt.Errorf("demo revoke session: %w", err)
	}
	return nil
}

// RevokeAll removes every session of u except tokens (see RevokeTokens).
func (p *Provider) RevokeAll(ctx context.Context, u sessions.User) error {
	if err := p.delay(ctx); err != nil {
		return fmt.Errorf("demo revoke all: %w", err)
	}
	err := p.update(ctx, u, func(su *storedUser) bool {
		return su.remove(func(s storedSession) bool { return s.Kind != sessions.KindToken })
	})
	if err != nil {
		return fmt.Errorf("demo revoke all: %w", err)
	}
	return nil
}

// RevokeTokens removes every token of u.
func (p *Provider) RevokeTokens(ctx context.Context, u sessions.User) error {
	if err := p.delay(ctx); err != nil {
		return fmt.Errorf("demo revoke tokens: %w", err)
	}
	err := p.update(ctx, u, func(su *storedUser) bool {
		return su.remove(func(s storedSession) bool { return s.Kind == sessions.KindToken })
	})
	if err != nil {
		return fmt.Errorf("demo revoke tokens: %w", err)
	}
	return nil
}

// AddSession records a new session for the person with this email, as when
// a new device signs in. Empty fields are filled: ID (a fresh one), Kind
// (session), Created (now), LastActive (Created) and Device (parsed from
// UserAgent). A session with the ID of one of the person's own sessions
// replaces it. It returns sessions.ErrNoAccount, ErrDuplicateID or
// ErrTooMany.
func (p *Provider) AddSession(ctx context.Context, email string, s sessions.Session) error {
	if err := p.delay(ctx); err != nil {
		return fmt.Errorf("demo add session: %w", err)
	}
	if s.ID == "" {
		s.ID = "ds-" + uuid.NewString()
	}
	if s.Kind == "" {
		s.Kind = sessions.KindSession
	}
	if s.Created.IsZero() {
		s.Created = p.now()
	}
	if s.LastActive.IsZero() {
		s.LastActive = s.Created
	}
	if s.Device == (sessions.Device{}) && s.UserAgent != "" {
		s.Device = sessions.ParseUserAgent(s.UserAgent)
	}
	rec := fromSession(s)
	err := p.modify(ctx, func(st *state) (bool, error) {
		su := st.byEmail(email)
		if su == nil {
			return false, sessions.ErrNoAccount
		}
		for i := range st.Users {
			if &st.Users[i] != su && st.Users[i].has(s.ID) {
				return false, ErrDuplicateID
			}
		}
		for i := range su.Sessions {
			if su.Sessions[i].ID == s.ID {
				su.Sessions[i] = rec
				return true, nil
			}
		}
		if len(su.Sessions) >= MaxSessionsPerUser {
			return false, ErrTooMany
		}
		su.Sessions = append(su.Sessions, rec)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("demo add session: %w", err)
	}
	return nil
}

// ListAll lists every session and token in the inventory, for new-device
// detection. The slices are parallel: users[i] owns sessions[i].
func (p *Provider) ListAll(ctx context.Context) ([]sessions.Session, []sessions.User, error) {
	if err := p.delay(ctx); err != nil {
		return nil, nil, fmt.Errorf("demo list all: %w", err)
	}
	st, _, err := p.load(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("demo list all: %w", err)
	}
	var (
		ss []sessions.Session
		us []sessions.User
	)
	for _, u := range st.Users {
		user := u.toUser()
		for _, s := range u.Sessions {
			ss = append(ss, s.toSession())
			us = append(us, user)
		}
	}
	return ss, us, nil
}

// delay waits the configured latency, or until ctx ends.
func (p *Provider) delay(ctx context.Context) error {
	if p.latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(p.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// load reads the inventory, seeding and storing it on first use.
func (p *Provider) load(ctx context.Context) (*state, uint64, error) {
	for range maxAttempts {
		it, err := p.store.Get(ctx, storage.ProviderState, stateKey)
		if err == nil {
			st, err := decode(it.Value)
			if err != nil {
				return nil, 0, err
			}
			return st, it.Version, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, 0, fmt.Errorf("load inventory: %w", err)
		}
		st := seed(p.now())
		raw, err := json.Marshal(st)
		if err != nil {
			return nil, 0, fmt.Errorf("seed inventory: %w", err)
		}
		v, err := p.store.Put(ctx, storage.ProviderState, stateKey, 0, raw)
		if errors.Is(err, storage.ErrConflict) {
			continue // someone else seeded first: read theirs
		}
		if err != nil {
			return nil, 0, fmt.Errorf("seed inventory: %w", err)
		}
		return st, v, nil
	}
	return nil, 0, ErrBusy
}

// update applies fn to the stored user u (by ID, else email) and writes the
// result back when fn reports a change.
func (p *Provider) update(ctx context.Context, u sessions.User, fn func(*storedUser) bool) error {
	return p.modify(ctx, func(st *state) (bool, error) {
		su := st.find(u)
		if su == nil {
			return false, sessions.ErrNoAccount
		}
		return fn(su), nil
	})
}

// modify is a compare-and-swap loop: read, apply fn, write if changed,
// retry from a fresh read on conflict.
func (p *Provider) modify(ctx context.Context, fn func(*state) (bool, error)) error {
	for range maxAttempts {
		st, version, err := p.load(ctx)
		if err != nil {
			return err
		}
		changed, err := fn(st)
		if err != nil || !changed {
			return err
		}
		raw, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode inventory: %w", err)
		}
		_, err = p.store.Put(ctx, storage.ProviderState, stateKey, version, raw)
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("save inventory: %w", err)
		}
		return nil
	}
	return ErrBusy
}

func decode(raw []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decode inventory: %w", err)
	}
	if st.V != stateVersion {
		return nil, fmt.Errorf("decode inventory: version %d: %w", st.V, ErrSchema)
	}
	return &st, nil
}

// state is the stored inventory document.
type state struct {
	V      int          `json:"v"`
	Seeded time.Time    `json:"seeded"`
	Users  []storedUser `json:"users"`
}

type storedUser struct {
	ID       string          `json:"id"`
	Email    string          `json:"email"`
	Name     string          `json:"name"`
	Manager  string          `json:"manager,omitempty"`
	Sessions []storedSession `json:"sessions"`
}

type storedSession struct {
	ID         string           `json:"id"`
	Kind       sessions.Kind    `json:"kind"`
	Created    time.Time        `json:"created,omitzero"`
	LastActive time.Time        `json:"last_active,omitzero"`
	Expires    time.Time        `json:"expires,omitzero"`
	IP         string           `json:"ip,omitempty"`
	UserAgent  string           `json:"user_agent,omitempty"`
	OS         string           `json:"os,omitempty"`
	Browser    string           `json:"browser,omitempty"`
	DevClient  string           `json:"device_client,omitempty"`
	Mobile     bool             `json:"mobile,omitempty"`
	Location   string           `json:"location,omitempty"`
	Country    string           `json:"country,omitempty"`
	Managed    sessions.Managed `json:"managed,omitempty"`
	Client     string           `json:"client,omitempty"`
}

func (st *state) byEmail(email string) *storedUser {
	email = strings.TrimSpace(email)
	for i := range st.Users {
		if strings.EqualFold(st.Users[i].Email, email) {
			return &st.Users[i]
		}
	}
	return nil
}

// find locates u by ID, else by email.
func (st *state) find(u sessions.User) *storedUser {
	if u.ID != "" {
		for i := range st.Users {
			if st.Users[i].ID == u.ID {
				return &st.Users[i]
			}
		}
		return nil
	}
	return st.byEmail(u.Email)
}

func (u *storedUser) toUser() sessions.User {
	return sessions.User{Provider: Name, ID: u.ID, Email: u.Email, Name: u.Name, ManagerEmail: u.Manager}
}

func (u *storedUser) has(id string) bool {
	for _, s := range u.Sessions {
		if s.ID == id {
			return true
		}
	}
	return false
}

// remove drops the sessions matching drop and reports whether any did.
func (u *storedUser) remove(drop func(storedSession) bool) bool {
	kept := u.Sessions[:0]
	for _, s := range u.Sessions {
		if !drop(s) {
			kept = append(kept, s)
		}
	}
	changed := len(kept) != len(u.Sessions)
	u.Sessions = kept
	return changed
}

func (s storedSession) toSession() sessions.Session {
	return sessions.Session{
		Provider:   Name,
		ID:         s.ID,
		Kind:       s.Kind,
		Created:    s.Created,
		LastActive: s.LastActive,
		Expires:    s.Expires,
		IP:         s.IP,
		UserAgent:  s.UserAgent,
		Device:     sessions.Device{OS: s.OS, Browser: s.Browser, Client: s.DevClient, Mobile: s.Mobile},
		Location:   s.Location,
		Country:    s.Country,
		Managed:    s.Managed,
		Client:     s.Client,
		Active:     true,
	}
}

func fromSession(s sessions.Session) storedSession {
	return storedSession{
		ID:         s.ID,
		Kind:       s.Kind,
		Created:    s.Created.UTC(),
		LastActive: s.LastActive.UTC(),
		Expires:    s.Expires.UTC(),
		IP:         s.IP,
		UserAgent:  s.UserAgent,
		OS:         s.Device.OS,
		Browser:    s.Device.Browser,
		DevClient:  s.Device.Client,
		Mobile:     s.Device.Mobile,
		Location:   s.Location,
		Country:    s.Country,
		Managed:    s.Managed,
		Client:     s.Client,
	}
}

// memStore is the Store of a zero Config: the same compare-and-swap
// semantics as storage, in memory.
type memStore struct {
	mu    sync.Mutex
	items map[string]storage.Item
}

func newMemStore() *memStore { return &memStore{items: make(map[string]storage.Item)} }

func (m *memStore) Get(ctx context.Context, b storage.Bucket, key string) (storage.Item, error) {
	if err := ctx.Err(); err != nil {
		return storage.Item{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[string(b)+"\x00"+key]
	if !ok {
		return storage.Item{}, storage.ErrNotFound
	}
	it.Value = append([]byte(nil), it.Value...)
	return it, nil
}

func (m *memStore) Put(ctx context.Context, b storage.Bucket, key string, expect uint64, value []byte, _ ...storage.Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := string(b) + "\x00" + key
	if m.items[k].Version != expect {
		return 0, storage.ErrConflict
	}
	m.items[k] = storage.Item{Key: key, Value: append([]byte(nil), value...), Version: expect + 1}
	return expect + 1, nil
}
