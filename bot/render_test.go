package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	c "github.com/warden-sec/warden/commands"
)

var update = flag.Bool("update", false, "rewrite bot/testdata/*.golden.json")

func goldenJSON(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<" and "&" readable in the golden files
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden (-want +got):\n%s", path, cmp.Diff(string(want), string(got)))
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply c.Reply
	}{
		{"help", c.Reply{
			Text: "Warden help",
			Blocks: []c.Block{
				{Kind: c.Header, Text: c.T(c.P("Warden: sessions during an incident"))},
				{Kind: c.Section, Text: c.T(c.C("/sessions mine"), c.P("  your own sessions, with "), c.B("Revoke"), c.P(" buttons"))},
				{Kind: c.Section, Text: c.T(c.C("/sessions list @user"), c.P(" responders only; see "), c.L("the runbook", "https://wiki.example.com/ir?x=1&y=2"))},
				{Kind: c.Divider},
				{Kind: c.Context, Text: c.T(c.I("Asked by "), c.U("U0RESP"))},
			},
		}},
		{"sessions", c.Reply{
			InChannel: true,
			Blocks: []c.Block{
				{Kind: c.Header, Text: c.T(c.P("Sessions of alice@example.com"))},
				{Kind: c.Section, Text: c.T(c.B("okta"), c.P(" · live session")), Fields: []c.Text{
					c.T(c.B("Device"), c.P("\nMacBook Pro (macOS 15)")),
					c.T(c.B("IP"), c.P("\n203.0.113.7")),
					c.T(c.B("Last active"), c.P("\n2026-01-02 10:04 UTC")),
					c.T(c.B("User agent"), c.P("\nMozilla/5.0 <script> & co")),
				}},
				{Kind: c.Actions, Buttons: []c.Button{
					{Label: "Revoke", ActionID: c.ActRevokeSession, Value: "okta/s1", Style: c.Danger,
						Confirm: &c.Confirm{Title: "Revoke this session?", Text: "Alice will be signed out of this device.", OK: "Revoke", Cancel: "Keep"}},
					{Label: "Revoke", ActionID: c.ActRevokeSession, Value: "okta/s2", Style: c.Danger},
					{Label: "Approve", ActionID: c.ActApprove, Value: "run-7f3a/2", Style: c.Primary},
				}},
			},
		}},
		{"escaping", c.Reply{
			Text: "Alert <!channel> & <@U123>",
			Blocks: []c.Block{
				{Kind: c.Section, Text: c.T(
					c.P("UA: <!channel> <!here|here> <@U123> a & b <http://evil.example|click>"),
					c.B(" *bold* <!everyone> "),
					c.I("_it_"),
					c.C("`code` <@U999>"),
					c.U("<!channel>"),
					c.U("U0ALICE"),
					c.L("label <!here>", "javascript:alert(1)"),
					c.L("ok|label>", "https://example.com/a|b?c=<d>&e"),
				)},
			},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks := Render(tc.reply)
			checkMessageLimits(t, blocks)
			goldenJSON(t, "message_"+tc.name, struct {
				Text   string        `json:"text"`
				Blocks []slack.Block `json:"blocks"`
			}{RenderText(tc.reply), blocks})
		})
	}
}

func TestRenderModalGolden(t *testing.T) {
	m := c.Modal{
		CallbackID:      c.CallbackDeny,
		Title:           "Why deny this approval request today?", // > 24 characters
		Submit:          "Deny",
		PrivateMetadata: "run-7f3a/2",
		Blocks:          []c.Block{{Kind: c.Section, Text: c.T(c.P("Denying "), c.B("offboarding"), c.P(" of "), c.U("U0BOB"))}},
		Inputs: []c.Input{
			{ID: "reason", Label: "Reason", Placeholder: "What is wrong with this request?", Multiline: true, MaxLength: 5000},
			{ID: "reason", Label: "duplicate id is dropped"},
			{ID: "ticket", Label: "Ticket", Optional: true},
		},
	}
	v := RenderModal(m)
	if got := utf8.RuneCountInString(v.Title.Text); got > maxModalTitle {
		t.Errorf("title has %d characters, limit %d", got, maxModalTitle)
	}
	if !slack.ValidateUniqueBlockID(v) {
		t.Error("modal input block ids are not unique")
	}
	goldenJSON(t, "modal_deny", v)
}

func TestRenderModalDropsOverlongMetadata(t *testing.T) {
	v := RenderModal(c.Modal{Title: "x", PrivateMetadata: strings.Repeat("r", maxPrivateMetadata+1)})
	if v.PrivateMetadata != "" {
		t.Errorf("private_metadata of %d characters kept; want it dropped", len(v.PrivateMetadata))
	}
	v = RenderModal(c.Modal{Title: "x", PrivateMetadata: "run-1/2"})
	if v.PrivateMetadata != "run-1/2" {
		t.Errorf("private_metadata = %q, want run-1/2", v.PrivateMetadata)
	}
}

// TestRenderEscapesUntrustedText: text from users and providers (user agents,
// device names, reasons) must never ping, link or format.
func TestRenderEscapesUntrustedText(t *testing.T) {
	untrusted := "<!channel> <!here> <@U123> <#C123> <https://evil.example|x> Tom & Jerry"
	for _, style := range []c.Style{c.Plain, c.Bold, c.Italic, c.Code} {
		r := c.Reply{Text: untrusted, Blocks: []c.Block{
			{Kind: c.Section, Text: c.T(c.Span{Style: style, Text: untrusted}), Fields: []c.Text{c.T(c.Span{Style: style, Text: untrusted})}},
			{Kind: c.Context, Text: c.T(c.Span{Style: style, Text: untrusted})},
		}}
		out := allText(t, Render(r)) + "\n" + RenderText(r)
		for _, bad := range []string{"<!", "<@", "<#", "<http", "& "} {
			if strings.Contains(out, bad) {
				t.Errorf("style %d: rendered text contains %q:\n%s", style, bad, out)
			}
		}
		for _, want := range []string{"&lt;!channel&gt;", "&lt;@U123&gt;", "Tom &amp; Jerry"} {
			if !strings.Contains(out, want) {
				t.Errorf("style %d: rendered text lacks %q:\n%s", style, want, out)
			}
		}
	}

	// A mention renders only for a well-formed user id.
	for id, want := range map[string]string{
		"U0ALICE":    "<@U0ALICE>",
		"W123ABC":    "<@W123ABC>",
		"<!channel>": "&lt;!channel&gt;",
		"U1|x>":      "U1|x&gt;",
		"C0CHAN":     "C0CHAN",
		"u0alice":    "u0alice",
	} {
		if got := renderSpan(c.U(id)); got != want {
			t.Errorf("mention %q rendered %q, want %q", id, got, want)
		}
	}
	// A link renders only for http(s), with its label escaped.
	for _, tc := range []struct{ label, url, want string }{
		{"docs", "https://example.com/x?a=1&b=2", "<https://example.com/x?a=1&amp;b=2|docs>"},
		{"<!here>", "https://example.com", "<https://example.com|&lt;!here&gt;>"},
		{"x", "https://example.com/a|b>c", "<https://example.com/a%7Cb%3Ec|x>"},
		{"run", "javascript:alert(1)", "run"},
		{"ftp", "ftp://example.com", "ftp"},
		{"creds", "https://user:pw@example.com", "creds"},
		{"", "https://example.com", "<https://example.com|https://example.com>"},
	} {
		if got := renderSpan(c.L(tc.label, tc.url)); got != tc.want {
			t.Errorf("link(%q, %q) rendered %q, want %q", tc.label, tc.url, got, tc.want)
		}
	}
	// Markers inside styled spans cannot end the style early.
	for _, tc := range []struct {
		span c.Span
		want string
	}{
		{c.B("a*b"), "*a∗b*"},
		{c.B("  padded  "), "  *padded*  "},
		{c.C("rm `x`"), "`rm x`"},
		{c.I("snake_case"), "_snake\u02cdcase_"},
		{c.B(""), ""},
		{c.B("two\nlines"), "*two lines*"},
	} {
		if got := renderSpan(tc.span); got != tc.want {
			t.Errorf("span %+v rendered %q, want %q", tc.span, got, tc.want)
		}
	}
}

// TestRenderRandomTextNeverEscapes renders random plain text full of Slack
// syntax: no "<" may survive, whatever the truncation does.
func TestRenderRandomTextNeverEscapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("<>&!@#*_`|~ aZ9\né€😀")
	for i := range 300 {
		n := rng.IntN(5000)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		s := b.String()
		style := c.Style(rng.IntN(4))
		r := c.Reply{Text: s, Blocks: []c.Block{
			{Kind: c.Section, Text: c.T(c.Span{Style: style, Text: s}, c.P(s))},
			{Kind: c.Context, Text: c.T(c.Span{Style: style, Text: s})},
		}}
		blocks := Render(r)
		checkMessageLimits(t, blocks)
		out := allText(t, blocks) + RenderText(r)
		if strings.Contains(out, "<") {
			t.Fatalf("case %d: rendered text contains '<'", i)
		}
		if txt := RenderText(r); utf8.RuneCountInString(txt) > maxMessageText || brokenEntity(txt) {
			t.Fatalf("case %d: message text broken or too long (%d)", i, utf8.RuneCountInString(txt))
		}
	}
}

// brokenEntity reports an "&" not starting &amp; &lt; or &gt;.
func brokenEntity(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			continue
		}
		rest := s[i:]
		if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
			return true
		}
	}
	return false
}

// TestRenderFiveHundredSessionsWithinLimits renders what /sessions list would
// show for a user with 500 sessions (long user agents, buttons per session):
// every Block Kit limit holds, and the cut is announced.
func TestRenderFiveHundredSessionsWithinLimits(t *testing.T) {
	var blocks []c.Block
	blocks = append(blocks, c.Block{Kind: c.Header, Text: c.T(c.P(strings.Repeat("Sessions of a person with a very long name ", 10)))})
	var buttons []c.Button
	for i := range 500 {
		ua := strings.Repeat(fmt.Sprintf("Mozilla/5.0 (X11; <!channel> & %d) ", i), 120) // ~4,800 characters
		blocks = append(blocks, c.Block{Kind: c.Section,
			Text: c.T(c.B(fmt.Sprintf("okta session %d", i)), c.P(" "), c.C(ua)),
			Fields: []c.Text{
				c.T(c.B("Device"), c.P(" "+ua)), c.T(c.B("IP"), c.P(" 203.0.113.7")),
				c.T(c.P("a")), c.T(c.P("b")), c.T(c.P("c")), c.T(c.P("d")), c.T(c.P("e")),
				c.T(c.P("f")), c.T(c.P("g")), c.T(c.P("h")), c.T(c.P("i")), c.T(c.P("j")),
			},
		})
		buttons = append(buttons, c.Button{
			Label: "Revoke " + ua, ActionID: c.ActRevokeSession, Value: fmt.Sprintf("okta/s%d", i), Style: c.Danger,
			Confirm: &c.Confirm{Title: ua, Text: ua, OK: ua, Cancel: ua},
		})
	}
	buttons = append(buttons, c.Button{Label: "too long value", ActionID: c.ActRetry, Value: strings.Repeat("v", 2001)})
	blocks = append(blocks, c.Block{Kind: c.Actions, Buttons: buttons})
	blocks = append(blocks, c.Block{Kind: c.Context, Text: c.T(c.P(strings.Repeat("x", 10000)))})
	r := c.Reply{Text: strings.Repeat("& ", 3000), Blocks: blocks}

	out := Render(r)
	checkMessageLimits(t, out)
	if len(out) != maxMessageBlocks {
		t.Fatalf("got %d blocks, want exactly %d", len(out), maxMessageBlocks)
	}
	last, ok := out[len(out)-1].(*slack.ContextBlock)
	if !ok {
		t.Fatalf("last block is %T, want the '…and N more' context", out[len(out)-1])
	}
	if got, want := last.ContextElements.Elements[0].(*slack.TextBlockObject).Text, "_…and 454 more_"; got != want {
		t.Errorf("last block says %q, want %q", got, want)
	}
	if txt := RenderText(r); utf8.RuneCountInString(txt) > maxMessageText || brokenEntity(txt) {
		t.Errorf("message text has %d characters or a broken entity", utf8.RuneCountInString(txt))
	}

	// The actions block alone: 25 buttons at most, the over-long value dropped,
	// duplicate action ids made unique and mapped back on click.
	acts := Render(c.Reply{Blocks: []c.Block{{Kind: c.Actions, Buttons: buttons}}})
	checkMessageLimits(t, acts)
	ab := acts[0].(*slack.ActionBlock)
	if n := len(ab.Elements.ElementSet); n != maxActionElements {
		t.Errorf("actions block has %d elements, want %d", n, maxActionElements)
	}
	for _, el := range ab.Elements.ElementSet {
		b := el.(*slack.ButtonBlockElement)
		if baseActionID(b.ActionID) != c.ActRevokeSession {
			t.Errorf("button action id %q maps back to %q", b.ActionID, baseActionID(b.ActionID))
		}
	}
	tooLong := Render(c.Reply{Blocks: []c.Block{{Kind: c.Actions, Buttons: buttons[500:]}}})
	if len(tooLong) != 0 {
		t.Errorf("a button whose value exceeds %d characters was kept", maxButtonValue)
	}
}

// checkMessageLimits walks rendered blocks as Slack would validate them.
func checkMessageLimits(t *testing.T, blocks []slack.Block) {
	t.Helper()
	if len(blocks) > maxMessageBlocks {
		t.Errorf("%d blocks, limit %d", len(blocks), maxMessageBlocks)
	}
	text := func(where string, o *slack.TextBlockObject, limit int) {
		t.Helper()
		if o == nil {
			t.Errorf("%s: missing text", where)
			return
		}
		if n := utf8.RuneCountInString(o.Text); n == 0 || n > limit {
			t.Errorf("%s: %d characters, want 1..%d", where, n, limit)
		}
		if o.Type == slack.MarkdownType && brokenEntity(o.Text) {
			t.Errorf("%s: broken escape entity in %q", where, o.Text)
		}
	}
	blockIDs := map[string]bool{}
	for i, b := range blocks {
		where := fmt.Sprintf("block %d", i)
		if id := b.ID(); id != "" {
			if len(id) > maxID || blockIDs[id] {
				t.Errorf("%s: bad or duplicate block_id %q", where, id)
			}
			blockIDs[id] = true
		}
		switch b := b.(type) {
		case *slack.HeaderBlock:
			text(where+" header", b.Text, maxHeaderText)
		case *slack.SectionBlock:
			if b.Text == nil && len(b.Fields) == 0 {
				t.Errorf("%s: empty section", where)
			}
			if b.Text != nil {
				text(where+" section", b.Text, maxSectionText)
			}
			if len(b.Fields) > maxFields {
				t.Errorf("%s: %d fields", where, len(b.Fields))
			}
			for _, f := range b.Fields {
				text(where+" field", f, maxFieldText)
			}
		case *slack.ContextBlock:
			if n := len(b.ContextElements.Elements); n == 0 || n > 10 {
				t.Errorf("%s: %d context elements", where, n)
			}
			for _, e := range b.ContextElements.Elements {
				text(where+" context", e.(*slack.TextBlockObject), maxContextText)
			}
		case *slack.ActionBlock:
			if b.BlockID == "" {
				t.Errorf("%s: actions block without block_id", where)
			}
			if n := len(b.Elements.ElementSet); n == 0 || n > maxActionElements {
				t.Errorf("%s: %d elements", where, n)
			}
			ids := map[string]bool{}
			for _, e := range b.Elements.ElementSet {
				bt := e.(*slack.ButtonBlockElement)
				text(where+" button", bt.Text, maxButtonText)
				if len(bt.Value) > maxButtonValue || len(bt.ActionID) > maxID || bt.ActionID == "" || ids[bt.ActionID] {
					t.Errorf("%s: button value %d, action id %q (dup %v)", where, len(bt.Value), bt.ActionID, ids[bt.ActionID])
				}
				ids[bt.ActionID] = true
				if cf := bt.Confirm; cf != nil {
					text(where+" confirm title", cf.Title, maxConfirmTitle)
					text(where+" confirm text", cf.Text, maxConfirmText)
					text(where+" confirm ok", cf.Confirm, maxConfirmButton)
					text(where+" confirm deny", cf.Deny, maxConfirmButton)
				}
			}
		case *slack.DividerBlock:
		default:
			t.Errorf("%s: unexpected %T", where, b)
		}
	}
}

// allText collects every text of rendered blocks.
func allText(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(v any, out *strings.Builder)
	walk = func(v any, out *strings.Builder) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "text" {
					out.WriteString(s)
					out.WriteByte('\n')
				} else {
					walk(x, out)
				}
			}
		case []any:
			for _, x := range v {
				walk(x, out)
			}
		}
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	walk(generic, &b)
	return b.String()
}

func TestBaseActionID(t *testing.T) {
	for in, want := range map[string]string{
		"ses.revoke":    "ses.revoke",
		"ses.revoke~1":  "ses.revoke",
		"ses.revoke~12": "ses.revoke",
		"a~b":           "a~b",
		"~1":            "~1",
	} {
		if got := baseActionID(in); got != want {
			t.Errorf("baseActionID(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkRenderFiveHundredSessions renders a /sessions list of 500 sessions
// (one section with a Revoke button each) and reports how many blocks and
// bytes reach Slack; it fails if the message breaks a Block Kit limit.
func BenchmarkRenderFiveHundredSessions(b *testing.B) {
	var blocks []c.Block
	for i := range 500 {
		blocks = append(blocks, c.Block{Kind: c.Section,
			Text: c.T(c.B("Chrome 126 · macOS"), c.P("  "), c.C(fmt.Sprintf("okta:session-%d", i)),
				c.P("\nIP 203.0.113.7 · Berlin, DE · last active 3 h ago · <!channel> & co")),
			Accessory: &c.Button{Label: "Revoke", ActionID: c.ActRevokeSession, Value: fmt.Sprintf("U0BOB|okta|session-%d", i),
				Style: c.Danger, Confirm: &c.Confirm{Title: "Revoke this session?", Text: "This signs the device out.", OK: "Revoke", Cancel: "Keep it"}},
		})
	}
	r := c.Reply{Text: "500 records across 1 provider", Blocks: blocks}
	var out []slack.Block
	for b.Loop() {
		out = Render(r)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		b.Fatal(err)
	}
	if len(out) > maxMessageBlocks {
		b.Fatalf("%d blocks, over the limit of %d", len(out), maxMessageBlocks)
	}
	b.ReportMetric(float64(len(out)), "blocks")
	b.ReportMetric(float64(len(raw)), "bytes")
}
