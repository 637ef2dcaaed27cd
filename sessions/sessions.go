// Package sessions is Warden's domain: who a person is at each identity
// provider, where they are signed in, and how a provider can end it.
//
// Connectors live one per package below this one (sessions/demo,
// sessions/kratos, …) and implement Provider with plain net/http through the
// shared layer in sessions/httpclient. Nothing here knows about Slack.
package sessions

import (
	"context"
	"errors"
	"time"
)

// Errors returned by providers. Connectors wrap them with "op: %w".
var (
	// ErrNoAccount means the person has no account at this provider. The UI
	// shows "no account there", not an error.
	ErrNoAccount = errors.New("no account at provider")
	// ErrNotSupported means the provider cannot do what was asked (for
	// example revoking one session at Google).
	ErrNotSupported = errors.New("not supported by provider")
	// ErrNotFound means a session or token id is unknown to the provider.
	// Revoke methods never return it: revoking what is gone is success.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized means the provider refused Warden's credentials.
	ErrUnauthorized = errors.New("provider refused credentials")
)

// Kind says what a Session record really is. Only live sessions are sessions
// in the strict sense; the other kinds are the closest thing a provider offers.
type Kind string

const (
	KindSession Kind = "session" // a live session the provider can list
	KindSignIn  Kind = "sign_in" // a sign-in event from an audit log
	KindDevice  Kind = "device"  // a registered or managed device
	KindToken   Kind = "token"   // an OAuth grant, refresh token or app password
)

// Managed says whether a device is known to device management.
type Managed string

const (
	ManagedUnknown Managed = ""
	ManagedYes     Managed = "managed"
	ManagedNo      Managed = "unmanaged"
)

// Device is what a user agent or provider record tells about the machine.
type Device struct {
	OS      string // "macOS 14", "iOS", "Windows", "Linux"
	Browser string // "Chrome 126", "Safari", "Firefox 128"
	Client  string // a non-browser client: "Slack desktop", "warden-cli"
	Mobile  bool
}

// Session is one place a person is signed in, or the nearest record a
// provider has of it. Every field but Provider, ID and Kind may be empty.
// All strings that came from outside are untrusted and must be escaped by
// whoever renders them.
type Session struct {
	Provider   string
	ID         string
	Kind       Kind
	Created    time.Time
	LastActive time.Time
	Expires    time.Time
	IP         string
	UserAgent  string
	Device     Device
	Location   string // "Berlin, DE"
	Country    string // ISO 3166 alpha-2 when known
	Managed    Managed
	Client     string // for tokens: the application holding the grant
	Active     bool   // false when the provider lists it as revoked (Kratos)
}

// User is a person's account at one provider.
type User struct {
	Provider     string
	ID           string
	Email        string
	Name         string
	ManagerEmail string // when the provider knows the manager
}

// Capabilities say honestly what a provider can do. The UI shows them next to
// every revoke so a responder knows what will end and how fast.
type Capabilities struct {
	ListSessions bool          // can list live sessions
	ListSignIns  bool          // can only list sign-in history
	ListDevices  bool          // can list registered devices
	RevokeOne    bool          // can end one session by id
	RevokeAll    bool          // can sign the user out everywhere
	RevokeTokens bool          // can revoke OAuth tokens and grants
	EffectWithin time.Duration // 0: immediate; otherwise how long revocation takes
	Ends         string        // what "revoke all" ends, in one sentence
	Leaves       string        // what it does not end, in one sentence
}

// Provider is one identity provider. Implementations are safe for concurrent
// use. Revoke methods are idempotent: revoking what is already gone returns nil.
type Provider interface {
	Name() string
	Capabilities() Capabilities
	// FindUser returns ErrNoAccount when nobody has that email.
	FindUser(ctx context.Context, email string) (User, error)
	ListSessions(ctx context.Context, u User) ([]Session, error)
	// RevokeSession returns ErrNotSupported where Capabilities().RevokeOne is false.
	RevokeSession(ctx context.Context, u User, id string) error
	RevokeAll(ctx context.Context, u User) error
}

// TokenRevoker is implemented by providers that can revoke OAuth tokens,
// grants and app passwords separately from sessions.
type TokenRevoker interface {
	RevokeTokens(ctx context.Context, u User) error
}

// Lister is implemented by providers that can list sessions org-wide, for
// new-device detection.
type Lister interface {
	ListAll(ctx context.Context) ([]Session, []User, error)
}
