package demo

import (
	"time"

	"github.com/warden-sec/warden/sessions"
)

// User agents of the seeded inventory, as real clients send them.
const (
	uaMacChrome     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaMacSafari     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	uaWinEdge       = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
	uaWinChrome     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"
	uaWinSlack      = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.39.95 Chrome/126.0.6478.127 Electron/31.2.1 Safari/537.36 Sonic Slack_SSB/4.39.95"
	uaLinuxFirefox  = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
	uaIPhoneSlack   = "Slack/24.07.10 (com.tinyspeck.chatlyio; build:24071000; iOS 17.5.1) Alamofire/5.8.0"
	uaIPhoneSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaIPadSafari    = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaAndroidSlack  = "Slack/24.07.10.0 (Android 14; Pixel 7)"
	uaWardenCLI     = "warden-cli/1.0 (darwin; arm64)"
	uaPythonRequest = "python-requests/2.31.0"
	uaCurl          = "curl/8.4.0"
)

// Seeded people. Exported so tests and the playground can name them.
const (
	AliceEmail = "alice.responder@example.com"
	BobEmail   = "bob.engineer@example.com"
	CarolEmail = "carol.manager@example.com"
	DaveEmail  = "dave.contractor@example.com"
	ErinEmail  = "erin.sales@example.com"
)

// seed builds the initial inventory with every time relative to now.
//
// Who is who: alice is a security responder; bob is an engineer whose
// manager is carol; bob has a stale Linux session (52 days idle) and a
// sign-in from São Paulo although he only ever works from Germany; dave is
// a contractor managed by carol, working from his own, unmanaged Windows
// laptop and holding a personal access token; erin is in sales.
func seed(now time.Time) *state {
	now = now.UTC()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	in := func(d time.Duration) time.Time { return now.Add(d) }
	const day = 24 * time.Hour
	s := func(id string, kind sessions.Kind, created, last, expires time.Time, ip, ua, loc, country string, managed sessions.Managed, client string) storedSession {
		d := sessions.ParseUserAgent(ua)
		return storedSession{
			ID: id, Kind: kind, Created: created, LastActive: last, Expires: expires,
			IP: ip, UserAgent: ua, OS: d.OS, Browser: d.Browser, DevClient: d.Client, Mobile: d.Mobile,
			Location: loc, Country: country, Managed: managed, Client: client,
		}
	}
	const (
		sess  = sessions.KindSession
		token = sessions.KindToken
		yes   = sessions.ManagedYes
		no    = sessions.ManagedNo
		unk   = sessions.ManagedUnknown
	)
	return &state{
		V:      stateVersion,
		Seeded: now,
		Users: []storedUser{
			{
				ID: "demo-u-1001", Email: AliceEmail, Name: "Alice Rivera",
				Sessions: []storedSession{
					s("ds-alice-mbp-chrome", sess, ago(6*day), ago(10*time.Minute), in(8*day),
						"198.51.100.23", uaMacChrome, "San Francisco, US", "US", yes, ""),
					s("ds-alice-iphone-slack", sess, ago(20*day), ago(2*time.Hour), in(70*day),
						"203.0.113.41", uaIPhoneSlack, "San Francisco, US", "US", yes, ""),
					s("ds-alice-cli", token, ago(30*day), ago(26*time.Hour), in(60*day),
						"198.51.100.23", uaWardenCLI, "San Francisco, US", "US", unk, "warden-cli"),
				},
			},
			{
				ID: "demo-u-1002", Email: BobEmail, Name: "Bob Engel", Manager: CarolEmail,
				Sessions: []storedSession{
					s("ds-bob-win-edge", sess, ago(3*day), ago(25*time.Minute), in(11*day),
						"192.0.2.10", uaWinEdge, "Berlin, DE", "DE", yes, ""),
					s("ds-bob-android-slack", sess, ago(41*day), ago(3*time.Hour), in(49*day),
						"192.0.2.58", uaAndroidSlack, "Berlin, DE", "DE", yes, ""),
					s("ds-bob-linux-firefox", sess, ago(80*day), ago(52*day), in(8*day),
						"192.0.2.77", uaLinuxFirefox, "Hamburg, DE", "DE", unk, ""),
					s("ds-bob-saopaulo-chrome", sess, ago(50*time.Minute), ago(40*time.Minute), in(14*day-50*time.Minute),
						"203.0.113.200", uaWinChrome, "São Paulo, BR", "BR", unk, ""),
					s("ds-bob-jira-sync", token, ago(90*day), ago(5*time.Hour), time.Time{},
						"192.0.2.10", uaPythonRequest, "Berlin, DE", "DE", unk, "jira-sync script"),
				},
			},
			{
				ID: "demo-u-1003", Email: CarolEmail, Name: "Carol Mendes",
				Sessions: []storedSession{
					s("ds-carol-mbp-safari", sess, ago(2*day), ago(5*time.Minute), in(12*day),
						"192.0.2.131", uaMacSafari, "Munich, DE", "DE", yes, ""),
					s("ds-carol-ipad-safari", sess, ago(9*day), ago(26*time.Hour), in(5*day),
						"192.0.2.140", uaIPadSafari, "Munich, DE", "DE", yes, ""),
				},
			},
			{
				ID: "demo-u-1004", Email: DaveEmail, Name: "Dave Kowalski", Manager: CarolEmail,
				Sessions: []storedSession{
					s("ds-dave-win-chrome", sess, ago(4*day), ago(15*time.Minute), in(10*day),
						"203.0.113.77", uaWinChrome, "Warsaw, PL", "PL", no, ""),
					s("ds-dave-win-slack", sess, ago(12*day), ago(20*time.Minute), in(78*day),
						"203.0.113.77", uaWinSlack, "Warsaw, PL", "PL", no, ""),
					s("ds-dave-pat", token, ago(40*day), ago(3*day), in(50*day),
						"203.0.113.77", uaCurl, "Warsaw, PL", "PL", unk, "personal access token"),
				},
			},
			{
				ID: "demo-u-1005", Email: ErinEmail, Name: "Erin Sato",
				Sessions: []storedSession{
					s("ds-erin-mbp-chrome", sess, ago(1*day), ago(1*time.Hour), in(13*day),
						"198.51.100.87", uaMacChrome, "Austin, US", "US", yes, ""),
					s("ds-erin-iphone-safari", sess, ago(15*day), ago(30*time.Minute), in(15*day),
						"198.51.100.90", uaIPhoneSafari, "Austin, US", "US", yes, ""),
				},
			},
		},
	}
}
