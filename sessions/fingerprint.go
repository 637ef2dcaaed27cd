package sessions

import (
	"net"
	"net/netip"
	"strings"
	"unicode"
)

// Fingerprint is a coarse identity of the device behind a session: OS
// family, browser or client family, network (/24 for IPv4, /48 for IPv6)
// and country. It is coarse on purpose: a browser or OS update is not a new
// device; a new network or country is. It returns "" for records that say
// nothing about a device (tokens, registered-device entries).
func Fingerprint(s Session) string {
	if s.Kind != KindSession && s.Kind != KindSignIn {
		return ""
	}
	d := s.Device
	if d == (Device{}) && s.UserAgent != "" {
		d = ParseUserAgent(s.UserAgent)
	}
	parts := []string{family(d.OS), family(d.Browser), family(d.Client), network(s.IP), strings.ToUpper(strings.TrimSpace(s.Country))}
	if strings.Join(parts, "") == "" {
		return ""
	}
	return strings.Join(parts, "|")
}

// family drops versions: "Chrome 126" → "chrome", "macOS 14.5" → "macos".
func family(s string) string {
	var words []string
	for _, w := range strings.Fields(strings.ToLower(s)) {
		if strings.IndexFunc(w, unicode.IsDigit) >= 0 {
			continue
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// network returns the /24 (IPv4) or /48 (IPv6) of an address that may carry
// a port; "" when it is not an address.
func network(ip string) string {
	ip = strings.TrimSpace(ip)
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
