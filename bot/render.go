package bot

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/warden-sec/warden/commands"
)

// Block Kit and message limits (reference/slack-platform.md §4, §5). Lengths
// are counted in characters (runes) of the text as sent, after escaping.
const (
	maxMessageBlocks   = 50
	maxModalBlocks     = 100
	maxSectionText     = 3000
	maxFields          = 10
	maxFieldText       = 2000
	maxContextText     = 3000
	maxActionElements  = 25
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxID              = 255
	maxMessageText     = 4000
	maxHeaderText      = 150
	maxConfirmTitle    = 100
	maxConfirmText     = 300
	maxConfirmButton   = 30
	maxModalTitle      = 24 // also submit and close
	maxPrivateMetadata = 3000
	maxInputLabel      = 2000
	maxPlaceholder     = 150
	maxInputLength     = 3000
)

const ellipsis = "…"

// dupSep separates an action id from the counter Render appends when the same
// action id appears twice in one actions block (Slack wants them unique per
// block). The bot strips it again before a click reaches the Handler, so the
// constants in commands/ids.go are all the Handler ever sees.
const dupSep = "~"

var (
	userIDRe      = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)
	mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
)

// Render turns a neutral reply into Block Kit blocks for a message. It is a
// pure function: every span is escaped, so untrusted text can never ping,
// link or inject markup, and every Block Kit limit is enforced by truncating
// (with "…"), dropping what cannot be shortened safely (over-long button
// values and ids), and ending an over-long list with "…and N more".
func Render(r commands.Reply) []slack.Block {
	return renderBlocks(r.Blocks, maxMessageBlocks)
}

// RenderText is the plain notification text of a message: the reply's Text
// (escaped), or else a summary taken from its first header or section, within
// the 4,000 character limit.
func RenderText(r commands.Reply) string {
	if strings.TrimSpace(r.Text) != "" {
		return truncEscaped(escape(r.Text), maxMessageText)
	}
	for _, b := range r.Blocks {
		switch b.Kind {
		case commands.Header, commands.Section:
			if s := plainText(b.Text); s != "" {
				return truncEscaped(escape(s), maxMessageText)
			}
		}
	}
	return ""
}

// RenderModal turns a neutral modal into a views.open request within the
// modal limits. An over-long private_metadata is dropped rather than cut, so
// the submission handler sees no identifiers instead of corrupt ones.
func RenderModal(m commands.Modal) slack.ModalViewRequest {
	title := truncRunes(oneLine(m.Title), maxModalTitle)
	if title == "" {
		title = "Warden"
	}
	v := slack.ModalViewRequest{
		Type:  slack.VTModal,
		Title: plain(title),
		Close: plain("Cancel"),
	}
	if len(m.CallbackID) <= maxID {
		v.CallbackID = m.CallbackID
	}
	if utf8.RuneCountInString(m.PrivateMetadata) <= maxPrivateMetadata {
		v.PrivateMetadata = m.PrivateMetadata
	}
	inputs := make([]slack.Block, 0, len(m.Inputs))
	seen := make(map[string]bool, len(m.Inputs))
	for _, in := range m.Inputs {
		if seen[in.ID] {
			continue // block ids must be unique in a view
		}
		seen[in.ID] = true
		if b := renderInput(in); b != nil {
			inputs = append(inputs, b)
		}
	}
	blocks := renderBlocks(m.Blocks, maxModalBlocks-len(inputs))
	blocks = append(blocks, inputs...)
	if len(blocks) > maxModalBlocks {
		blocks = blocks[:maxModalBlocks]
	}
	v.Blocks = slack.Blocks{BlockSet: blocks}
	if len(inputs) > 0 || m.Submit != "" {
		submit := truncRunes(oneLine(m.Submit), maxModalTitle)
		if submit == "" {
			submit = "Submit"
		}
		v.Submit = plain(submit)
	}
	return v
}

func renderInput(in commands.Input) slack.Block {
	if in.ID == "" || len(in.ID) > maxID {
		return nil
	}
	label := truncRunes(oneLine(in.Label), maxInputLabel)
	if label == "" {
		label = in.ID
	}
	el := slack.NewPlainTextInputBlockElement(nil, in.ID)
	if p := truncRunes(oneLine(in.Placeholder), maxPlaceholder); p != "" {
		el.Placeholder = plain(p)
	}
	el.Multiline = in.Multiline
	if in.MaxLength > 0 {
		el.MaxLength = min(in.MaxLength, maxInputLength)
	}
	b := slack.NewInputBlock(in.ID, plain(label), nil, el)
	b.Optional = in.Optional
	return b
}

// renderBlocks renders blocks and keeps at most limit of them; when some are
// cut, the last kept block is a context block saying how many were left out.
func renderBlocks(in []commands.Block, limit int) []slack.Block {
	out := make([]slack.Block, 0, min(len(in), limit))
	for i, b := range in {
		if rb := renderBlock(b, i); rb != nil {
			out = append(out, rb)
		}
	}
	if len(out) <= limit || limit < 1 {
		if limit < 1 {
			return nil
		}
		return out
	}
	kept := out[:limit-1]
	more := len(out) - len(kept)
	return append(kept, moreBlock(more))
}

func moreBlock(n int) slack.Block {
	return slack.NewContextBlock("", mrkdwn("_…and "+strconv.Itoa(n)+" more_"))
}

func renderBlock(b commands.Block, i int) slack.Block {
	switch b.Kind {
	case commands.Header:
		s := truncRunes(oneLine(plainText(b.Text)), maxHeaderText)
		if s == "" {
			return nil
		}
		return slack.NewHeaderBlock(plain(s))
	case commands.Section:
		var text *slack.TextBlockObject
		if s := renderText(b.Text, maxSectionText); strings.TrimSpace(s) != "" {
			text = mrkdwn(s)
		}
		fields := renderFields(b.Fields)
		if text == nil && len(fields) == 0 {
			return nil
		}
		if b.Accessory != nil {
			if el := renderButton(*b.Accessory, b.Accessory.ActionID); el != nil {
				// A block with an interactive element needs a block_id.
				return slack.NewSectionBlock(text, fields, slack.NewAccessory(el), slack.SectionBlockOptionBlockID(fmt.Sprintf("section-%d", i)))
			}
		}
		return slack.NewSectionBlock(text, fields, nil)
	case commands.Context:
		s := renderText(b.Text, maxContextText)
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return slack.NewContextBlock("", mrkdwn(s))
	case commands.Divider:
		return slack.NewDividerBlock()
	case commands.Actions:
		return renderActions(b.Buttons, i)
	}
	return nil
}

func renderFields(in []commands.Text) []*slack.TextBlockObject {
	var out []*slack.TextBlockObject
	for _, f := range in {
		if s := renderText(f, maxFieldText); strings.TrimSpace(s) != "" {
			out = append(out, mrkdwn(s))
		}
	}
	if len(out) > maxFields {
		more := len(out) - (maxFields - 1)
		out = append(out[:maxFields-1], mrkdwn("_…and "+strconv.Itoa(more)+" more_"))
	}
	return out
}

// renderActions renders the buttons of one actions block. The block gets a
// block_id derived from its position (Slack files a click without one under
// attachment actions). Buttons whose value or action id is too long to send
// are dropped: values carry identifiers, and a cut identifier is a wrong one.
func renderActions(in []commands.Button, i int) slack.Block {
	seen := make(map[string]int, len(in))
	els := make([]slack.BlockElement, 0, min(len(in), maxActionElements))
	for _, bt := range in {
		if len(els) == maxActionElements {
			break
		}
		id := bt.ActionID
		if n := seen[bt.ActionID]; n > 0 {
			id = bt.ActionID + dupSep + strconv.Itoa(n)
		}
		el := renderButton(bt, id)
		if el == nil {
			continue
		}
		seen[bt.ActionID]++
		els = append(els, el)
	}
	if len(els) == 0 {
		return nil
	}
	return slack.NewActionBlock(fmt.Sprintf("actions-%d", i), els...)
}

// renderButton renders one button with action id id, or nil when its value
// or id is too long to send.
func renderButton(bt commands.Button, id string) *slack.ButtonBlockElement {
	if bt.ActionID == "" || len(id) > maxID || len(bt.ActionID) > maxID-4 || len(bt.Value) > maxButtonValue {
		return nil
	}
	label := truncRunes(oneLine(bt.Label), maxButtonText)
	if label == "" {
		label = "Open"
	}
	el := slack.NewButtonBlockElement(id, bt.Value, plain(label))
	switch bt.Style {
	case commands.Primary:
		el.Style = slack.StylePrimary
	case commands.Danger:
		el.Style = slack.StyleDanger
	}
	if bt.Confirm != nil {
		el.Confirm = renderConfirm(*bt.Confirm)
	}
	return el
}

func renderConfirm(c commands.Confirm) *slack.ConfirmationBlockObject {
	title := truncRunes(oneLine(c.Title), maxConfirmTitle)
	if title == "" {
		title = "Are you sure?"
	}
	text := truncRunes(c.Text, maxConfirmText)
	if strings.TrimSpace(text) == "" {
		text = "Are you sure?"
	}
	ok := truncRunes(oneLine(c.OK), maxConfirmButton)
	if ok == "" {
		ok = "Confirm"
	}
	deny := truncRunes(oneLine(c.Cancel), maxConfirmButton)
	if deny == "" {
		deny = "Cancel"
	}
	return slack.NewConfirmationBlockObject(plain(title), plain(text), plain(ok), plain(deny))
}

// renderText renders spans as mrkdwn of at most limit characters. When the
// text is too long, the span that overflows is cut (never inside an escape,
// a mention or a link) and "…" ends the text.
func renderText(t commands.Text, limit int) string {
	var b strings.Builder
	n := 0
	for _, sp := range t {
		s := renderSpan(sp)
		sn := utf8.RuneCountInString(s)
		if n+sn <= limit {
			b.WriteString(s)
			n += sn
			continue
		}
		room := limit - n - utf8.RuneCountInString(ellipsis)
		if room > 0 {
			b.WriteString(fitSpan(sp, room))
		}
		b.WriteString(ellipsis)
		return b.String()
	}
	return b.String()
}

// fitSpan renders the longest prefix of sp whose rendering fits in room
// characters. Mentions and links are atomic; a link that does not fit
// degrades to its (cut) label.
func fitSpan(sp commands.Span, room int) string {
	switch sp.Style {
	case commands.Mention:
		return ""
	case commands.Link:
		sp = commands.Span{Style: commands.Plain, Text: linkLabel(sp)}
	}
	runes := []rune(sp.Text)
	lo, hi := 0, len(runes) // largest k with len(render(prefix k)) <= room
	for lo < hi {
		mid := (lo + hi + 1) / 2
		c := sp
		c.Text = string(runes[:mid])
		if utf8.RuneCountInString(renderSpan(c)) <= room {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 {
		return ""
	}
	c := sp
	c.Text = string(runes[:lo])
	return renderSpan(c)
}

// renderSpan renders one span as escaped mrkdwn.
func renderSpan(sp commands.Span) string {
	switch sp.Style {
	case commands.Bold:
		return wrap(escape(strings.ReplaceAll(oneLine(sp.Text), "*", "∗")), "*")
	case commands.Italic:
		return wrap(escape(strings.ReplaceAll(oneLine(sp.Text), "_", "\u02cd")), "_")
	case commands.Code:
		return wrap(escape(strings.ReplaceAll(oneLine(sp.Text), "`", "")), "`")
	case commands.Mention:
		if userIDRe.MatchString(sp.Text) {
			return "<@" + sp.Text + ">"
		}
		return escape(sp.Text)
	case commands.Link:
		label := linkLabel(sp)
		if u, ok := safeURL(sp.URL); ok {
			return "<" + u + "|" + escape(oneLine(label)) + ">"
		}
		return escape(label)
	default:
		return escape(sp.Text)
	}
}

func linkLabel(sp commands.Span) string {
	if strings.TrimSpace(sp.Text) != "" {
		return sp.Text
	}
	return sp.URL
}

// safeURL returns raw as it may appear inside <…|…> when it is an absolute
// http(s) URL.
func safeURL(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.User != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return "", false
	}
	s := u.String()
	s = strings.NewReplacer("|", "%7C", " ", "%20").Replace(s)
	return escape(s), true
}

// wrap puts marker around s, keeping leading and trailing spaces outside the
// markers (Slack ignores "* bold *"). Blank text is returned unstyled.
func wrap(s, marker string) string {
	core := strings.TrimFunc(s, unicode.IsSpace)
	if core == "" {
		return s
	}
	lead := s[:strings.Index(s, core)]
	trail := s[len(lead)+len(core):]
	return lead + marker + core + marker + trail
}

func escape(s string) string { return mrkdwnEscaper.Replace(s) }

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// plainText is the text of spans without any markup, for plain_text fields.
func plainText(t commands.Text) string {
	var b strings.Builder
	for _, sp := range t {
		switch sp.Style {
		case commands.Link:
			b.WriteString(linkLabel(sp))
		default:
			b.WriteString(sp.Text)
		}
	}
	return strings.TrimSpace(b.String())
}

// truncRunes cuts s to at most n characters, ending a cut text with "…".
func truncRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + ellipsis
}

// truncEscaped is truncRunes for escaped mrkdwn: it never cuts inside an
// entity such as "&amp;".
func truncEscaped(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := string([]rune(s)[:n-1])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	return cut + ellipsis
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// mrkdwn texts are verbatim: Slack then parses only explicit <…> markup
// (which escape removes from untrusted text) and never auto-links names,
// channels or "@here".
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

// baseActionID undoes the de-duplication suffix renderActions adds.
func baseActionID(id string) string {
	i := strings.LastIndex(id, dupSep)
	if i <= 0 {
		return id
	}
	if _, err := strconv.Atoi(id[i+len(dupSep):]); err != nil {
		return id
	}
	return id[:i]
}
