package sessions

import "time"

// EventType is what a login event says happened.
type EventType string

const (
	EventLogin           EventType = "login"            // a sign-in succeeded
	EventMFAAdded        EventType = "mfa_added"        // an MFA factor was enrolled
	EventPasswordChanged EventType = "password_changed" // the password was changed or reset
	EventRecoveryChanged EventType = "recovery_changed" // recovery email or phone changed
	EventSessionRevoked  EventType = "session_revoked"  // a session ended at the provider
)

// HighRisk reports whether an event is an account change that, soon after a
// new device, suggests a takeover.
func (t EventType) HighRisk() bool {
	switch t {
	case EventMFAAdded, EventPasswordChanged, EventRecoveryChanged:
		return true
	}
	return false
}

// LoginEvent is one event about a person's account, as a provider's webhook
// or log stream reported it. Every field is untrusted.
type LoginEvent struct {
	ID        string // the provider's event id, for de-duplication
	Provider  string
	Type      EventType
	Email     string // lower-cased
	UserID    string // the provider's user id, when known
	SessionID string
	Time      time.Time
	IP        string
	UserAgent string
	Device    Device
	Location  string
	Country   string
}
