package intake

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-sec/warden/sessions"
)

// Field caps, in characters. Anything longer is refused, not truncated.
const (
	maxIDLen       = 200 // ID, Provider, UserID, SessionID
	maxEmailLen    = 254
	maxUALen       = 512
	maxLocationLen = 128
)

// The time window an event must fall in, relative to the Handler's clock.
const (
	maxFuture = 5 * time.Minute
	maxAge    = 30 * 24 * time.Hour
)

// normalize checks ev in place and brings it to canonical form: email lower
// case, time UTC, IP in netip's canonical text (IPv4-mapped IPv6 unmapped),
// country upper case, Device parsed from the user agent when empty. It
// returns an ErrInvalid-wrapping error with a short reason, or nil.
//
// normalize is idempotent: a normalized event normalizes to itself.
func normalize(ev *sessions.LoginEvent, now time.Time) error {
	ev.Email = strings.ToLower(strings.TrimSpace(ev.Email))
	if ev.Email == "" {
		return invalid("missing email")
	}
	if utf8.RuneCountInString(ev.Email) > maxEmailLen || !validEmail(ev.Email) {
		return invalid("email is not an email address")
	}
	for _, f := range []struct {
		name, val string
		max       int
	}{
		{"id", ev.ID, maxIDLen},
		{"provider", ev.Provider, maxIDLen},
		{"user_id", ev.UserID, maxIDLen},
		{"session_id", ev.SessionID, maxIDLen},
		{"user_agent", ev.UserAgent, maxUALen},
		{"location", ev.Location, maxLocationLen},
	} {
		if !utf8.ValidString(f.val) || strings.ContainsFunc(f.val, unicode.IsControl) {
			return invalid("%s has invalid characters", f.name)
		}
		if utf8.RuneCountInString(f.val) > f.max {
			return invalid("%s longer than %d characters", f.name, f.max)
		}
	}
	if ev.Provider == "" {
		return invalid("missing provider")
	}
	switch ev.Type {
	case sessions.EventLogin, sessions.EventMFAAdded, sessions.EventPasswordChanged,
		sessions.EventRecoveryChanged, sessions.EventSessionRevoked:
	case "":
		return invalid("missing type")
	default:
		return invalid("unknown type")
	}
	if ev.Time.IsZero() {
		return invalid("missing time")
	}
	ev.Time = ev.Time.UTC()
	if ev.Time.After(now.Add(maxFuture)) {
		return invalid("time is in the future")
	}
	if ev.Time.Before(now.Add(-maxAge)) {
		return invalid("time is older than 30 days")
	}
	if ev.IP != "" {
		addr, err := netip.ParseAddr(ev.IP)
		if err != nil || addr.Zone() != "" {
			return invalid("ip is not an IP address")
		}
		ev.IP = addr.Unmap().String()
	}
	if ev.Country != "" {
		if len(ev.Country) != 2 || !isASCIILetter(ev.Country[0]) || !isASCIILetter(ev.Country[1]) {
			return invalid("country is not a two-letter code")
		}
		ev.Country = strings.ToUpper(ev.Country)
	}
	if ev.Device == (sessions.Device{}) {
		ev.Device = sessions.ParseUserAgent(ev.UserAgent)
	}
	return nil
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// validEmail accepts a plain, lower-case addr-spec: a dot-atom local part of
// at most 64 characters and a domain of at least two DNS labels. Quoted local
// parts, comments, IP-literal domains and non-ASCII are refused; a person's
// work email never needs them, and every provider lookup would fail on them.
func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || domain == "" {
		return false
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0 {
			continue
		}
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 || len(domain) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// parseTime reads an RFC 3339 timestamp, refusing anything else.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, invalid("missing time")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid("time is not RFC 3339")
	}
	return t, nil
}

// jsonReason turns a decoding error into a short reason that quotes nothing
// from the body but, for an unknown field, its (capped) name.
func jsonReason(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("truncated json")
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return invalid("malformed json")
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			return invalid("wrong json type")
		}
		return invalid("wrong json type for %s", capName(field))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalid("unknown field %s", capName(name))
	}
	return invalid("malformed json")
}

// capName keeps a field name short and printable for an error message.
func capName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || r > unicode.MaxASCII {
			return '?'
		}
		return r
	}, s)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// expectEOF refuses trailing data after the JSON value.
func expectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("trailing data after json")
	}
	return nil
}

// joinNonEmpty joins the trimmed, non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, s := range parts {
		if s = strings.TrimSpace(s); s != "" {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, sep)
}

// countryCode returns s upper-cased if it is a two-letter code, else "".
func countryCode(s string) string {
	s = strings.TrimSpace(s)
	if len(s) == 2 && isASCIILetter(s[0]) && isASCIILetter(s[1]) {
		return strings.ToUpper(s)
	}
	return ""
}
