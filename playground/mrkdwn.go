package playground

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of inline, the pieces a mrkdwn text is cut into. Templates switch
// on them; every Text is shown with html/template's escaping.
const (
	inText    = "text"
	inBold    = "b"
	inItalic  = "i"
	inStrike  = "s"
	inCode    = "code"
	inPre     = "pre"
	inBreak   = "br"
	inLink    = "link"
	inMention = "mention" // a user, channel or @here: Text is what to show
)

// inline is one piece of formatted text.
type inline struct {
	Kind string
	Text string   // decoded, literal text (text, code, pre, link label, mention)
	URL  string   // link target; for a mention, the id it names
	Kids []inline // bold, italic, strike
}

// slackUnescape decodes the three entities Slack escapes in mrkdwn and
// nothing else, in one left-to-right pass ("&amp;lt;" is "&lt;").
var slackUnescape = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// names resolves the ids of mentions to what Slack would show.
type names struct {
	users    map[string]string // U… -> name
	channels map[string]string // C…/D… -> name
}

func (n names) user(id, label string) string {
	if name, ok := n.users[id]; ok {
		return name
	}
	if label != "" {
		return label
	}
	return id
}

// parseMrkdwn cuts Slack mrkdwn into inlines: *bold*, _italic_, ~strike~,
// `code`, ```pre```, <url|label> links, <@U…> mentions, <#C…> channels,
// <!here>, and line breaks. It never produces markup itself; the template
// escapes every Text.
func parseMrkdwn(s string, n names) []inline {
	var out []inline
	var buf strings.Builder
	flush := func() {
		if buf.Len() > 0 {
			out = append(out, inline{Kind: inText, Text: slackUnescape.Replace(buf.String())})
			buf.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			flush()
			out = append(out, inline{Kind: inBreak})
			i++
			continue
		case c == '<':
			if j := strings.IndexByte(s[i+1:], '>'); j >= 0 && !strings.ContainsAny(s[i+1:i+1+j], "<\n") {
				flush()
				out = append(out, angle(s[i+1:i+1+j], n))
				i += j + 2
				continue
			}
		case strings.HasPrefix(s[i:], "```"):
			if j := strings.Index(s[i+3:], "```"); j >= 0 {
				flush()
				out = append(out, inline{Kind: inPre, Text: slackUnescape.Replace(strings.Trim(s[i+3:i+3+j], "\n"))})
				i += j + 6
				continue
			}
		case c == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j > 0 && !strings.Contains(s[i+1:i+1+j], "\n") {
				flush()
				out = append(out, inline{Kind: inCode, Text: slackUnescape.Replace(s[i+1 : i+1+j])})
				i += j + 2
				continue
			}
		case c == '*' || c == '_' || c == '~':
			if k := closing(s, i); k > 0 {
				flush()
				kind := map[byte]string{'*': inBold, '_': inItalic, '~': inStrike}[c]
				out = append(out, inline{Kind: kind, Kids: parseMrkdwn(s[i+1:k], n)})
				i = k + 1
				continue
			}
		}
		buf.WriteByte(c)
		i++
	}
	flush()
	return out
}

// closing finds the marker that closes the one at s[i], following Slack's
// rules: the opener starts a word, the closer ends one, neither touches a
// space on the inside, and both are on one line. It returns -1 when there
// is none.
func closing(s string, i int) int {
	m := s[i]
	if i > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); isWord(r) {
			return -1
		}
	}
	if i+1 >= len(s) || s[i+1] == m || s[i+1] == ' ' || s[i+1] == '\n' {
		return -1
	}
	for k := i + 2; k < len(s); k++ {
		switch s[k] {
		case '\n':
			return -1
		case m:
			if s[k-1] == ' ' {
				continue
			}
			if k+1 < len(s) {
				if r, _ := utf8.DecodeRuneInString(s[k+1:]); isWord(r) {
					continue
				}
			}
			return k
		}
	}
	return -1
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// angle reads what was between < and >.
func angle(body string, n names) inline {
	target, label, _ := strings.Cut(body, "|")
	label = slackUnescape.Replace(label)
	switch {
	case strings.HasPrefix(target, "@"):
		id := target[1:]
		return inline{Kind: inMention, Text: "@" + n.user(id, label), URL: id}
	case strings.HasPrefix(target, "#"):
		id := target[1:]
		name, ok := n.channels[id]
		if !ok {
			name = label
		}
		if name == "" {
			name = id
		}
		return inline{Kind: inMention, Text: "#" + name, URL: id}
	case strings.HasPrefix(target, "!"):
		special := strings.TrimPrefix(target, "!")
		switch {
		case special == "here" || special == "channel" || special == "everyone":
			return inline{Kind: inMention, Text: "@" + special}
		case label != "":
			return inline{Kind: inMention, Text: label}
		}
		return inline{Kind: inText, Text: slackUnescape.Replace(special)}
	}
	u := slackUnescape.Replace(target)
	if label == "" {
		label = u
	}
	if safeLink(u) {
		return inline{Kind: inLink, Text: label, URL: u}
	}
	return inline{Kind: inText, Text: label}
}

// safeLink admits absolute http, https and mailto URLs only.
func safeLink(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "mailto":
		return u.Opaque != ""
	}
	return false
}
