package commands

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a slash command may carry. Slack caps command text at a few
// thousand characters; ours are tighter so nothing large reaches storage.
const (
	maxTextLen   = 2000
	maxReasonLen = 500
	maxUsers     = 20
	maxTargets   = 50
)

// Verbs of /sessions.
const (
	VerbHelp     = "help"
	VerbMine     = "mine"
	VerbList     = "list"
	VerbRevoke   = "revoke"
	VerbOffboard = "offboard"
	VerbStatus   = "status"
	VerbAudit    = "audit"
	VerbReport   = "report"
)

// ErrUsage is wrapped by every parse error. Its message is safe to show: it
// never echoes more than a short, sanitised piece of the input.
var ErrUsage = errors.New("usage")

// UserRef names a person as typed: a Slack mention or an email.
type UserRef struct {
	ID    string // Slack user id, from <@U123|name>
	Email string // lower-cased, from a bare or mailto email
}

func (u UserRef) String() string {
	if u.ID != "" {
		return u.ID
	}
	return u.Email
}

// Command is a parsed /sessions command.
type Command struct {
	Verb    string
	Users   []UserRef
	Targets []string // revoke: "all", or provider:id session refs
	DryRun  bool
	Reason  string
	RunID   string
}

// usage lines, one per verb, shown on bad input.
var usage = map[string]string{
	VerbHelp:     "/sessions help",
	VerbMine:     "/sessions mine",
	VerbList:     "/sessions list @user",
	VerbRevoke:   "/sessions revoke @user [@user…] all|<provider:session-id>… [--dry-run] [reason…]",
	VerbOffboard: "/sessions offboard @user [reason…]",
	VerbStatus:   "/sessions status <run-id>",
	VerbAudit:    "/sessions audit @user",
	VerbReport:   "/sessions report",
}

// verbs in the order help shows them.
var verbs = []string{VerbMine, VerbList, VerbRevoke, VerbOffboard, VerbStatus, VerbAudit, VerbReport, VerbHelp}

var (
	mentionRe = regexp.MustCompile(`^<@([UW][A-Z0-9]{2,20})(?:\|[^<>]{0,80})?>$`)
	mailtoRe  = regexp.MustCompile(`^<mailto:([^|<>]{3,254})(?:\|[^<>]{0,254})?>$`)
	// emailRe is deliberately narrower than RFC 5322: no quoting, no markup
	// characters, a dotted domain.
	emailRe  = regexp.MustCompile(`^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	runIDRe  = regexp.MustCompile(`^[A-Za-z0-9-]{6,64}$`)
	targetRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,20}:[A-Za-z0-9._:@/+=-]{1,200}$`)
)

// UsageError is a parse error. Text is one line, safe to show the caller.
type UsageError struct{ Text string }

func (e *UsageError) Error() string { return e.Text }

// Is makes errors.Is(err, ErrUsage) true.
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

// usageError builds a UsageError naming the verb's usage line.
func usageError(verb, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if u, ok := usage[verb]; ok {
		return &UsageError{Text: fmt.Sprintf("%s. Usage: `%s`", capitalize(msg), u)}
	}
	return &UsageError{Text: fmt.Sprintf("%s. Try `/sessions help`.", capitalize(msg))}
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// Parse reads the text after "/sessions". Every error wraps ErrUsage and is
// safe to show to the caller.
func Parse(text string) (Command, error) {
	if len(text) > maxTextLen {
		return Command{}, usageError("", "that command is too long")
	}
	if !utf8.ValidString(text) {
		return Command{}, usageError("", "that command is not valid text")
	}
	toks, err := tokenize(text)
	if err != nil {
		return Command{}, usageError("", "%s", err.Error())
	}
	if len(toks) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	verb := strings.ToLower(toks[0].text)
	if toks[0].quoted {
		verb = ""
	}
	cmd := Command{Verb: verb}
	rest := toks[1:]
	switch verb {
	case VerbHelp, VerbMine, VerbReport:
		if len(rest) > 0 {
			return Command{}, usageError(verb, "%s takes no arguments", verb)
		}
	case VerbList, VerbAudit:
		users, rest, err := takeUsers(verb, rest)
		if err != nil {
			return Command{}, err
		}
		if len(users) != 1 || len(rest) > 0 {
			return Command{}, usageError(verb, "name exactly one person")
		}
		cmd.Users = users
	case VerbStatus:
		if len(rest) != 1 || !runIDRe.MatchString(rest[0].text) {
			return Command{}, usageError(verb, "give one run id")
		}
		cmd.RunID = rest[0].text
	case VerbOffboard:
		users, rest, err := takeUsers(verb, rest)
		if err != nil {
			return Command{}, err
		}
		if len(users) != 1 {
			return Command{}, usageError(verb, "name exactly one person")
		}
		cmd.Users = users
		if cmd.Reason, err = takeReason(verb, rest); err != nil {
			return Command{}, err
		}
	case VerbRevoke:
		var err error
		if cmd, err = parseRevoke(rest); err != nil {
			return Command{}, err
		}
	default:
		return Command{}, usageError("", "unknown command %q", shorten(toks[0].text, 20))
	}
	return cmd, nil
}

func parseRevoke(toks []token) (Command, error) {
	cmd := Command{Verb: VerbRevoke}
	// Flags may stand anywhere; take them out first.
	var kept []token
	for _, t := range toks {
		if !t.quoted && strings.HasPrefix(t.text, "--") {
			switch t.text {
			case "--dry-run":
				cmd.DryRun = true
			default:
				return Command{}, usageError(VerbRevoke, "unknown flag %q", shorten(t.text, 20))
			}
			continue
		}
		kept = append(kept, t)
	}
	users, rest, err := takeUsers(VerbRevoke, kept)
	if err != nil {
		return Command{}, err
	}
	if len(users) == 0 {
		return Command{}, usageError(VerbRevoke, "name at least one person")
	}
	cmd.Users = users
	switch {
	case len(rest) > 0 && !rest[0].quoted && strings.EqualFold(rest[0].text, "all"):
		cmd.Targets = []string{"all"}
		rest = rest[1:]
	default:
		for len(rest) > 0 && !rest[0].quoted && targetRe.MatchString(rest[0].text) {
			if len(cmd.Targets) == maxTargets {
				return Command{}, usageError(VerbRevoke, "at most %d sessions at once", maxTargets)
			}
			cmd.Targets = append(cmd.Targets, rest[0].text)
			rest = rest[1:]
		}
	}
	if len(cmd.Targets) == 0 {
		return Command{}, usageError(VerbRevoke, "say `all` or name sessions as provider:id")
	}
	if len(cmd.Targets) > 0 && cmd.Targets[0] != "all" && len(users) > 1 {
		return Command{}, usageError(VerbRevoke, "name sessions for one person at a time, or use `all`")
	}
	if cmd.Reason, err = takeReason(VerbRevoke, rest); err != nil {
		return Command{}, err
	}
	return cmd, nil
}

// takeUsers reads user references from the front of toks.
func takeUsers(verb string, toks []token) ([]UserRef, []token, error) {
	var users []UserRef
	seen := map[string]bool{}
	for len(toks) > 0 && !toks[0].quoted {
		u, ok, err := parseUser(toks[0].text)
		if err != nil {
			return nil, nil, usageError(verb, "%s", err.Error())
		}
		if !ok {
			break
		}
		toks = toks[1:]
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		if len(users) == maxUsers {
			return nil, nil, usageError(verb, "at most %d people at once", maxUsers)
		}
		users = append(users, u)
	}
	return users, toks, nil
}

// parseUser recognises <@U123|name>, <@U123>, <mailto:a@b|a@b> and a@b.
// ok is false when s is not meant as a user at all.
func parseUser(s string) (UserRef, bool, error) {
	if m := mentionRe.FindStringSubmatch(s); m != nil {
		return UserRef{ID: m[1]}, true, nil
	}
	if strings.HasPrefix(s, "<@") || strings.HasPrefix(s, "@") {
		return UserRef{}, false, errors.New("mention people with @, and pick them from Slack's list")
	}
	if m := mailtoRe.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if !strings.Contains(s, "@") || strings.HasPrefix(s, "<") {
		return UserRef{}, false, nil
	}
	if !emailRe.MatchString(s) || len(s) > 254 {
		return UserRef{}, false, errors.New("that is not an email address")
	}
	return UserRef{Email: strings.ToLower(s)}, true, nil
}

// takeReason joins the remaining tokens into a reason of bounded length with
// control characters removed.
func takeReason(verb string, toks []token) (string, error) {
	parts := make([]string, 0, len(toks))
	for _, t := range toks {
		parts = append(parts, t.text)
	}
	r := strings.Join(parts, " ")
	r = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return ' '
		}
		return c
	}, r)
	r = strings.TrimSpace(r)
	if utf8.RuneCountInString(r) > maxReasonLen {
		return "", usageError(verb, "keep the reason under %d characters", maxReasonLen)
	}
	return r, nil
}

var slackUnescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

type token struct {
	text   string
	quoted bool
}

// tokenize splits on white space, keeping "quoted strings" (straight or
// typographic quotes, which Slack clients substitute) together.
func tokenize(s string) ([]token, error) {
	var toks []token
	var cur strings.Builder
	inQuote := rune(0)
	started := false
	quoted := false
	flush := func() {
		if started {
			text := cur.String()
			if !strings.HasPrefix(text, "<") {
				// Slack escapes &, < and > in what people type; markup
				// it adds itself (<@U…>, <mailto:…>) stays as it is.
				text = slackUnescaper.Replace(text)
			}
			toks = append(toks, token{text: text, quoted: quoted})
		}
		cur.Reset()
		started, quoted = false, false
	}
	for _, r := range s {
		switch {
		case inQuote != 0:
			if r == inQuote || (inQuote == '“' && r == '”') {
				inQuote = 0
				continue
			}
			cur.WriteRune(r)
		case r == '"' || r == '“' || r == '\'' && !started:
			inQuote = r
			started, quoted = true, true
		case unicode.IsSpace(r):
			flush()
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if inQuote != 0 {
		return nil, errors.New("a quote is not closed")
	}
	flush()
	return toks, nil
}

// shorten returns at most n runes of s, printable, for echoing in errors.
func shorten(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
