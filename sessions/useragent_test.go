package sessions

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var uaCases = []struct {
	name string
	ua   string
	want Device
}{
	{
		name: "chrome on macOS (frozen 10_15_7)",
		ua:   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		want: Device{OS: "macOS", Browser: "Chrome 126"},
	},
	{
		name: "edge on windows 10/11",
		ua:   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
		want: Device{OS: "Windows", Browser: "Edge 126"},
	},
	{
		name: "chrome on windows 7",
		ua:   "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
		want: Device{OS: "Windows 7", Browser: "Chrome 109"},
	},
	{
		name: "firefox on linux",
		ua:   "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		want: Device{OS: "Linux", Browser: "Firefox 128"},
	},
	{
		name: "firefox on macOS",
		ua:   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:127.0) Gecko/20100101 Firefox/127.0",
		want: Device{OS: "macOS", Browser: "Firefox 127"},
	},
	{
		name: "safari on macOS",
		ua:   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		want: Device{OS: "macOS", Browser: "Safari 17"},
	},
	{
		name: "safari on old macOS",
		ua:   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Safari/605.1.15",
		want: Device{OS: "macOS 10.14", Browser: "Safari 14"},
	},
	{
		name: "safari on iPhone",
		ua:   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		want: Device{OS: "iOS 17", Browser: "Safari 17", Mobile: true},
	},
	{
		name: "safari on iPad",
		ua:   "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
		want: Device{OS: "iPadOS 16", Browser: "Safari 16", Mobile: true},
	},
	{
		name: "chrome on iOS",
		ua:   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
		want: Device{OS: "iOS 17", Browser: "Chrome 126", Mobile: true},
	},
	{
		name: "firefox on iOS",
		ua:   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
		want: Device{OS: "iOS 17", Browser: "Firefox 127", Mobile: true},
	},
	{
		name: "edge on iOS",
		ua:   "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/126.2592.86 Mobile/15E148 Safari/605.1.15",
		want: Device{OS: "iOS 17", Browser: "Edge 126", Mobile: true},
	},
	{
		name: "chrome on android",
		ua:   "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
		want: Device{OS: "Android 14", Browser: "Chrome 126", Mobile: true},
	},
	{
		name: "chrome on android, reduced UA",
		ua:   "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
		want: Device{OS: "Android 10", Browser: "Chrome 126", Mobile: true},
	},
	{
		name: "firefox on android",
		ua:   "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0",
		want: Device{OS: "Android 14", Browser: "Firefox 128", Mobile: true},
	},
	{
		name: "samsung internet",
		ua:   "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
		want: Device{OS: "Android 13", Browser: "Samsung Internet 25", Mobile: true},
	},
	{
		name: "opera",
		ua:   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
		want: Device{OS: "Windows", Browser: "Opera 111"},
	},
	{
		name: "presto opera",
		ua:   "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
		want: Device{OS: "Windows 7", Browser: "Opera 12"},
	},
	{
		name: "chromeOS",
		ua:   "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		want: Device{OS: "ChromeOS", Browser: "Chrome 126"},
	},
	{
		name: "slack desktop on macOS",
		ua:   "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.39.95 Chrome/126.0.6478.127 Electron/31.2.1 Safari/537.36 Sonic Slack_SSB/4.39.95",
		want: Device{OS: "macOS", Client: "Slack desktop"},
	},
	{
		name: "slack desktop on windows",
		ua:   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.35.131 Chrome/118.0.5993.159 Electron/27.0.3 Safari/537.36 Sonic Slack_SSB/4.35.131",
		want: Device{OS: "Windows", Client: "Slack desktop"},
	},
	{
		name: "slack iOS app",
		ua:   "Slack/24.07.10 (com.tinyspeck.chatlyio; build:24071000; iOS 17.5.1) Alamofire/5.8.0",
		want: Device{OS: "iOS 17", Client: "Slack mobile", Mobile: true},
	},
	{
		name: "slack iOS app, CFNetwork style",
		ua:   "Slack/24071000 CFNetwork/1496.0.7 Darwin/23.5.0",
		want: Device{OS: "iOS 17", Client: "Slack mobile", Mobile: true},
	},
	{
		name: "slack android app",
		ua:   "Slack/24.07.10.0 (Android 14; Pixel 7)",
		want: Device{OS: "Android 14", Client: "Slack mobile", Mobile: true},
	},
	{
		name: "electron app",
		ua:   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Code/1.91.0 Chrome/122.0.6261.156 Electron/29.4.0 Safari/537.36",
		want: Device{OS: "Linux", Client: "Code"},
	},
	{
		name: "anonymous electron app",
		ua:   "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.156 Electron/29.4.0 Safari/537.36",
		want: Device{OS: "Windows", Client: "Electron app"},
	},
	{name: "curl", ua: "curl/8.4.0", want: Device{Client: "curl"}},
	{name: "python-requests", ua: "python-requests/2.31.0", want: Device{Client: "python-requests"}},
	{name: "go http client", ua: "Go-http-client/1.1", want: Device{Client: "Go-http-client"}},
	{name: "okhttp", ua: "okhttp/4.12.0", want: Device{Client: "okhttp"}},
	{name: "warden-cli", ua: "warden-cli/1.0", want: Device{Client: "warden-cli"}},
	{name: "warden-cli with platform", ua: "warden-cli/1.0 (darwin; arm64)", want: Device{OS: "macOS", Client: "warden-cli"}},
	{name: "cli on linux", ua: "deploy-bot/2.3.1 (linux; amd64) go1.26", want: Device{OS: "Linux", Client: "deploy-bot"}},
	{
		name: "android app via dalvik",
		ua:   "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240705.005)",
		want: Device{OS: "Android 14", Client: "Android app", Mobile: true},
	},
	{
		name: "headless chrome",
		ua:   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36",
		want: Device{OS: "Linux", Browser: "Headless Chrome 126"},
	},
	{name: "empty", ua: "", want: Device{}},
	{name: "garbage", ua: "!!! ((( ;;; ///", want: Device{}},
	{name: "unterminated comment", ua: "Mozilla/5.0 (Windows NT 10.0; Win64", want: Device{OS: "Windows"}},
	{name: "name only client", ua: "Slackbot 1.0 (+https://api.slack.com/robots)", want: Device{Client: "Slackbot"}},
}

func TestParseUserAgent(t *testing.T) {
	for _, tc := range uaCases {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseUserAgent(tc.ua)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseUserAgent(%q) mismatch (-want +got):\n%s", tc.ua, diff)
			}
		})
	}
}

func TestParseUserAgentCapsFields(t *testing.T) {
	long := strings.Repeat("a", 500)
	cases := []string{
		long + "/1.0",
		"Mozilla/5.0 (Windows NT 10.0) " + long + "/1.0 Chrome/1 Electron/1",
		"Mozilla/5.0 (Linux; Android " + strings.Repeat("9", 500) + ") Chrome/" + strings.Repeat("1", 500),
		"x/1 (" + strings.Repeat("(", 10000) + ")",
		strings.Repeat("Mozilla/5.0 (Linux) ", 5000),
		"Slack/1 (iOS \x00\x1b[31m" + long + ")",
	}
	for _, ua := range cases {
		checkDevice(t, ua, ParseUserAgent(ua))
	}
}

// checkDevice asserts the invariants every parsed Device keeps, whatever the
// input: short, printable, valid UTF-8 fields.
func checkDevice(t *testing.T, ua string, d Device) {
	t.Helper()
	for name, f := range map[string]string{"OS": d.OS, "Browser": d.Browser, "Client": d.Client} {
		if n := utf8.RuneCountInString(f); n > maxUAField {
			t.Errorf("ParseUserAgent(%.80q).%s has %d characters, want <= %d", ua, name, n, maxUAField)
		}
		if !utf8.ValidString(f) {
			t.Errorf("ParseUserAgent(%.80q).%s = %q is not valid UTF-8", ua, name, f)
		}
		for _, r := range f {
			if !unicode.IsPrint(r) {
				t.Errorf("ParseUserAgent(%.80q).%s = %q has unprintable %U", ua, name, f, r)
				break
			}
		}
	}
}

func FuzzParseUserAgent(f *testing.F) {
	for _, tc := range uaCases {
		f.Add(tc.ua)
	}
	f.Add("Mozilla/5.0 ((((((((")
	f.Add(")))))) Mozilla/5.0")
	f.Add("Slack/\xff\xfe (iOS \xff)")
	f.Add("Mozilla/5.0 (Macintosh; Intel Mac OS X 99999999999_1) Version/99999999999 Safari/1")
	f.Add("Slack/1 CFNetwork/1 Darwin/99999999999999999999")
	f.Fuzz(func(t *testing.T, ua string) {
		d := ParseUserAgent(ua)
		checkDevice(t, ua, d)
		if again := ParseUserAgent(ua); again != d {
			t.Errorf("ParseUserAgent(%q) not deterministic: %+v then %+v", ua, d, again)
		}
	})
}
