package sessions

// User-agent parsing.
//
// Warden parses user agents with the small parser below instead of a library.
// The maintained Go user-agent libraries are either large regular-expression
// databases (ua-parser's regexes.yaml, megabytes to load and to audit) or
// unmaintained, and Warden needs very little: the OS family and major
// version, the browser family and major version, and a handful of known
// clients (Slack desktop and mobile, Electron apps, curl, python-requests,
// Go-http-client, okhttp, our own warden-cli). The result is a hint shown to a
// responder, never an input to a security decision: a user agent is whatever
// the client chose to send.

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// maxUALen is how much of a user agent is looked at. Real ones are well
	// under 1 KiB; anything longer is noise or an attack.
	maxUALen = 2048
	// maxUAField caps every field of the parsed Device, in characters.
	maxUAField = 64
	// maxUAProducts and maxUAParts bound the work done on hostile input.
	maxUAProducts = 32
	maxUAParts    = 64
)

// uaProduct is one "name/version" token.
type uaProduct struct {
	name, version string
}

// uaTokens is a user agent split into its product tokens and the parts of its
// parenthesised comments (split on ';', trimmed).
type uaTokens struct {
	products []uaProduct
	parts    []string
}

// product returns the version of the first product named name (case
// sensitive) and whether it is present.
func (t *uaTokens) product(name string) (string, bool) {
	for _, p := range t.products {
		if p.name == name {
			return p.version, true
		}
	}
	return "", false
}

func (t *uaTokens) has(name string) bool {
	_, ok := t.product(name)
	return ok
}

// ParseUserAgent tells what a User-Agent header says about the device: the OS
// family with its major version ("macOS", "Windows", "iOS 17", "Android 14"),
// the browser family with its major version ("Chrome 126", "Safari 17") and,
// for non-browser clients, the client ("Slack desktop", "Slack mobile",
// "curl", "warden-cli"). Unknown parts are left empty.
//
// It never panics, looks at no more than the first 2 KiB of ua, and caps
// every field at 64 characters of printable text.
func ParseUserAgent(ua string) Device {
	if len(ua) > maxUALen {
		ua = ua[:maxUALen]
	}
	t := tokenizeUA(ua)
	var d Device
	d.OS, d.Mobile = uaOS(&t)

	first := ""
	if len(t.products) > 0 {
		first = t.products[0].name
	}
	switch {
	case first == "Mozilla":
		d.Browser, d.Client = uaBrowser(&t)
	case first == "Opera":
		// Presto-era Opera: "Opera/9.80 (…) Presto/2.12 Version/12.16".
		d.Browser = withMajor("Opera", firstOf(&t, "Version", "Opera"))
	default:
		d.Client = uaClient(&t, first)
		if d.Client == "Slack mobile" {
			if d.OS == "" {
				d.OS = uaDarwinToIOS(&t)
			}
			d.Mobile = true
		}
	}
	if d.Client == "Slack desktop" {
		d.Mobile = false
	}
	d.OS = clampField(d.OS)
	d.Browser = clampField(d.Browser)
	d.Client = clampField(d.Client)
	return d
}

// tokenizeUA splits ua into products and comment parts. It is linear in
// len(ua) and keeps at most maxUAProducts products and maxUAParts comment
// parts.
func tokenizeUA(ua string) uaTokens {
	var t uaTokens
	i := 0
	for i < len(ua) {
		c := ua[i]
		switch {
		case c == ' ' || c == '\t' || c == ',':
			i++
		case c == '(':
			depth, j := 0, i
			for ; j < len(ua); j++ {
				if ua[j] == '(' {
					depth++
				} else if ua[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			end := min(j, len(ua))
			for p := range strings.SplitSeq(ua[i+1:end], ";") {
				if len(t.parts) >= maxUAParts {
					break
				}
				if p = strings.TrimSpace(p); p != "" {
					t.parts = append(t.parts, p)
				}
			}
			i = end + 1
		case c == ')':
			i++
		default:
			j := i
			for j < len(ua) && ua[j] != ' ' && ua[j] != '\t' && ua[j] != '(' && ua[j] != ')' {
				j++
			}
			tok := ua[i:j]
			i = j
			if len(t.products) >= maxUAProducts {
				continue
			}
			name, version, _ := strings.Cut(tok, "/")
			t.products = append(t.products, uaProduct{name: name, version: version})
		}
	}
	return t
}

// uaOS reads the OS from the comment parts. Android wins over Linux, iOS over
// macOS ("like Mac OS X"), and a real OS over a bare "Linux".
func uaOS(t *uaTokens) (os string, mobile bool) {
	var ios, ipad, android, chromeOS, windows, mac, linux bool
	var iosVer, androidVer, winVer, macVer string
	for _, p := range t.parts {
		switch {
		case hasPrefixFold(p, "Android"):
			android = true
			if androidVer == "" {
				androidVer = major(strings.TrimSpace(p[len("Android"):]))
			}
		case p == "iPhone" || p == "iPod" || p == "iPod touch":
			ios = true
		case p == "iPad":
			ipad = true
		case strings.HasPrefix(p, "CPU iPhone OS "):
			ios = true
			iosVer = major(p[len("CPU iPhone OS "):])
		case strings.HasPrefix(p, "CPU OS "):
			iosVer = major(p[len("CPU OS "):])
		case strings.HasPrefix(p, "iOS ") || strings.HasPrefix(p, "iPadOS "):
			_, v, _ := strings.Cut(p, " ")
			ios = ios || strings.HasPrefix(p, "iOS")
			ipad = ipad || strings.HasPrefix(p, "iPadOS")
			iosVer = major(v)
		case strings.HasPrefix(p, "CrOS"):
			chromeOS = true
		case strings.HasPrefix(p, "Windows NT"):
			windows = true
			winVer = windowsName(strings.TrimSpace(p[len("Windows NT"):]))
		case hasPrefixFold(p, "windows") || hasPrefixFold(p, "win64") || hasPrefixFold(p, "win32"):
			windows = true
		case strings.Contains(p, "Mac OS X") || strings.HasPrefix(p, "macOS"):
			mac = true
			if macVer == "" {
				macVer = macName(p)
			}
		case p == "Macintosh" || strings.EqualFold(p, "darwin"):
			mac = true
		case strings.Contains(p, "Linux") || strings.EqualFold(p, "linux") ||
			strings.HasPrefix(p, "Ubuntu") || strings.HasPrefix(p, "Fedora") || p == "X11":
			linux = true
		}
	}
	switch {
	case android:
		return withMajor("Android", androidVer), true
	case ipad:
		return withMajor("iPadOS", iosVer), true
	case ios:
		return withMajor("iOS", iosVer), true
	case chromeOS:
		return "ChromeOS", false
	case windows:
		if winVer == "" {
			winVer = "Windows"
		}
		return winVer, false
	case mac:
		if macVer == "" {
			macVer = "macOS"
		}
		return macVer, false
	case linux:
		return "Linux", false
	}
	return "", false
}

// windowsName maps an NT version to the marketing name. Windows 11 still says
// "NT 10.0", so both 10 and 11 are just "Windows".
func windowsName(nt string) string {
	switch {
	case strings.HasPrefix(nt, "6.3"):
		return "Windows 8.1"
	case strings.HasPrefix(nt, "6.2"):
		return "Windows 8"
	case strings.HasPrefix(nt, "6.1"):
		return "Windows 7"
	case strings.HasPrefix(nt, "6.0"):
		return "Windows Vista"
	case strings.HasPrefix(nt, "5.1"), strings.HasPrefix(nt, "5.2"):
		return "Windows XP"
	}
	return "Windows"
}

// macName reads "Intel Mac OS X 14_5" style parts. Browsers freeze the value
// at 10_15_7, which therefore says only "macOS".
func macName(p string) string {
	i := strings.Index(p, "Mac OS X")
	v := ""
	if i >= 0 {
		v = strings.TrimSpace(p[i+len("Mac OS X"):])
	} else {
		v = strings.TrimSpace(strings.TrimPrefix(p, "macOS"))
	}
	v = strings.ReplaceAll(v, "_", ".")
	maj := major(v)
	switch {
	case maj == "":
		return "macOS"
	case maj == "10":
		rest := strings.TrimPrefix(v, "10.")
		minor := major(rest)
		if minor == "" || minor == "15" {
			return "macOS"
		}
		return "macOS 10." + minor
	}
	return "macOS " + maj
}

// uaBrowser reads a Mozilla-style user agent: a browser, or an Electron app
// (which looks like Chrome but is not a browser).
func uaBrowser(t *uaTokens) (browser, client string) {
	if t.has("Slack_SSB") || (t.has("Electron") && t.has("Slack")) {
		return "", "Slack desktop"
	}
	if t.has("Electron") {
		return "", electronApp(t)
	}
	switch {
	case t.has("Edg"), t.has("EdgA"), t.has("EdgiOS"), t.has("Edge"):
		return withMajor("Edge", firstOf(t, "Edg", "EdgA", "EdgiOS", "Edge")), ""
	case t.has("OPR"), t.has("OPiOS"):
		return withMajor("Opera", firstOf(t, "OPR", "OPiOS")), ""
	case t.has("SamsungBrowser"):
		return withMajor("Samsung Internet", firstOf(t, "SamsungBrowser")), ""
	case t.has("FxiOS"):
		return withMajor("Firefox", firstOf(t, "FxiOS")), ""
	case t.has("CriOS"):
		return withMajor("Chrome", firstOf(t, "CriOS")), ""
	case t.has("Firefox"):
		return withMajor("Firefox", firstOf(t, "Firefox")), ""
	case t.has("HeadlessChrome"):
		return withMajor("Headless Chrome", firstOf(t, "HeadlessChrome")), ""
	case t.has("Chrome"):
		return withMajor("Chrome", firstOf(t, "Chrome")), ""
	case t.has("Chromium"):
		return withMajor("Chromium", firstOf(t, "Chromium")), ""
	case t.has("Safari") && t.has("Version"):
		return withMajor("Safari", firstOf(t, "Version")), ""
	case t.has("Safari"):
		return "Safari", ""
	}
	return "", ""
}

// uaStandard are product tokens that browsers and Electron always send; the
// first other token of an Electron user agent is the app's name.
var uaStandard = map[string]bool{
	"Mozilla": true, "AppleWebKit": true, "KHTML": true, "like": true,
	"Gecko": true, "Chrome": true, "Safari": true, "Electron": true,
	"Version": true, "Mobile": true, "Sonic": true,
}

func electronApp(t *uaTokens) string {
	for _, p := range t.products {
		if !uaStandard[p.name] && p.version != "" && validClientName(p.name) {
			return p.name
		}
	}
	return "Electron app"
}

// uaClient names a non-browser client from its first product token:
// "curl/8.4.0" is "curl", "warden-cli/1.0" is "warden-cli". Slack's mobile
// apps send "Slack/…" or "com.tinyspeck.chatlyio/…".
func uaClient(t *uaTokens, first string) string {
	switch {
	case first == "Slack" || strings.Contains(first, "tinyspeck") || first == "com.Slack":
		return "Slack mobile"
	case first == "Slackbot":
		return "Slackbot"
	case first == "Dalvik":
		return "Android app"
	}
	if validClientName(first) {
		return first
	}
	return ""
}

// uaDarwinToIOS reads "CFNetwork/… Darwin/23.0.0", sent by iOS apps: Darwin
// 23 is iOS 17.
func uaDarwinToIOS(t *uaTokens) string {
	v, ok := t.product("Darwin")
	if !ok || !t.has("CFNetwork") {
		return ""
	}
	if n, err := strconv.Atoi(major(v)); err == nil && n > 6 && n < 100 {
		return "iOS " + strconv.Itoa(n-6)
	}
	return "iOS"
}

// validClientName accepts a product name that looks like a program name:
// starts with a letter, then letters, digits and ". _ - +".
func validClientName(s string) bool {
	if s == "" || len(s) > maxUAField {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+'):
		default:
			return false
		}
	}
	return true
}

func firstOf(t *uaTokens, names ...string) string {
	for _, n := range names {
		if v, ok := t.product(n); ok {
			return v
		}
	}
	return ""
}

// major returns the leading digits of a version ("126.0.1" → "126",
// "17_5" → "17"), at most 6 of them.
func major(v string) string {
	i := 0
	for i < len(v) && i < 6 && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	return v[:i]
}

func withMajor(family, version string) string {
	if m := major(version); m != "" {
		return family + " " + m
	}
	return family
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// clampField keeps printable, valid UTF-8 and at most maxUAField characters.
func clampField(s string) string {
	clean := true
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || !unicode.IsPrint(r) {
			clean = false
			break
		}
		n++
		i += size
	}
	if clean && n <= maxUAField {
		return s
	}
	var b strings.Builder
	n = 0
	for _, r := range s {
		if n == maxUAField {
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
