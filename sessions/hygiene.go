package sessions

import (
	"slices"
	"time"
)

// DefaultStaleAfter is how long without activity makes a session stale when
// the caller does not say.
const DefaultStaleAfter = 30 * 24 * time.Hour

// Activity is when s was last seen: LastActive, else Created, else the zero
// time.
func Activity(s Session) time.Time {
	if !s.LastActive.IsZero() {
		return s.LastActive
	}
	return s.Created
}

// IsStale reports whether s has seen no activity (LastActive, else Created)
// for at least after, as of now. after <= 0 means DefaultStaleAfter (30 days).
// Only live sessions, tokens and devices can be stale, and only when their
// time is known: sign-in events are history, not something left signed in.
func IsStale(s Session, now time.Time, after time.Duration) bool {
	switch s.Kind {
	case KindSession, KindToken, KindDevice:
	default:
		return false
	}
	last := Activity(s)
	if last.IsZero() {
		return false
	}
	if after <= 0 {
		after = DefaultStaleAfter
	}
	return now.Sub(last) >= after
}

// IsUnmanaged reports whether s is known to come from a device outside
// device management. Unknown is not unmanaged.
func IsUnmanaged(s Session) bool {
	return s.Managed == ManagedNo
}

// SortByActivity sorts ss in place, most recently active first (LastActive,
// else Created). Sessions without any time go last. Ties keep their order.
func SortByActivity(ss []Session) {
	slices.SortStableFunc(ss, func(a, b Session) int {
		return Activity(b).Compare(Activity(a))
	})
}
