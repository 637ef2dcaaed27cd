package sessions

import "testing"

func TestFingerprint(t *testing.T) {
	base := Session{Kind: KindSession, UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", IP: "203.0.113.7", Country: "DE"}
	same := []Session{
		{Kind: KindSession, UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36", IP: "203.0.113.99", Country: "de"},
		{Kind: KindSignIn, UserAgent: base.UserAgent, IP: "203.0.113.7:51234", Country: "DE"},
	}
	different := []Session{
		{Kind: KindSession, UserAgent: base.UserAgent, IP: "198.51.100.7", Country: "DE"},
		{Kind: KindSession, UserAgent: base.UserAgent, IP: "203.0.113.7", Country: "BR"},
		{Kind: KindSession, UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", IP: "203.0.113.7", Country: "DE"},
	}
	want := Fingerprint(base)
	if want == "" {
		t.Fatal("no fingerprint for a browser session")
	}
	for _, s := range same {
		if got := Fingerprint(s); got != want {
			t.Errorf("Fingerprint(%+v) = %q, want the same device %q", s, got, want)
		}
	}
	for _, s := range different {
		if got := Fingerprint(s); got == want {
			t.Errorf("Fingerprint(%+v) = %q: a new network, country or browser must be a new device", s, got)
		}
	}
	if got := Fingerprint(Session{Kind: KindToken, Client: "warden-cli"}); got != "" {
		t.Errorf("a token has fingerprint %q, want none", got)
	}
	if a, b := Fingerprint(Session{Kind: KindSession, IP: "2001:db8:1:2::1"}), Fingerprint(Session{Kind: KindSession, IP: "2001:db8:1:ffff::9"}); a != b {
		t.Errorf("IPv6 addresses in one /48 differ: %q %q", a, b)
	}
}
