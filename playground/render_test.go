package playground

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenInput is a message (text and blocks) or a modal to render.
type goldenInput struct {
	Text   string          `json:"text"`
	Blocks json.RawMessage `json:"blocks"`
	Modal  *struct {
		ID, Title, Submit, Close string
		Errors                   map[string]string
		Blocks                   json.RawMessage
	} `json:"modal"`
}

func testRenderer(t *testing.T) *renderer {
	t.Helper()
	cfg := Config{}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	r, err := newRenderer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRenderGolden renders every testdata/*.json to HTML and compares it
// with its .golden.html (go test -run TestRenderGolden -update rewrites them).
func TestRenderGolden(t *testing.T) {
	r := testRenderer(t)
	inputs, err := filepath.Glob("testdata/*.json")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var g goldenInput
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			var got string
			if g.Modal != nil {
				h, err := r.renderModal(g.Modal.ID, g.Modal.Title, g.Modal.Submit, g.Modal.Close, g.Modal.Blocks, g.Modal.Errors)
				if err != nil {
					t.Fatal(err)
				}
				got = string(h)
			} else {
				h, err := r.renderMessage(messageVM{Kind: "message", Channel: DefaultChannel, TS: "1700000000.000001", Author: "Warden"}, g.Text, g.Blocks)
				if err != nil {
					t.Fatal(err)
				}
				got = string(h)
			}
			golden := filepath.Join("testdata", name+".golden.html")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestRenderEscapesEverything checks the property the goldens show: no
// markup from a message survives as markup, whatever field carries it.
func TestRenderEscapesEverything(t *testing.T) {
	r := testRenderer(t)
	raw, err := os.ReadFile("testdata/message_escaping.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenInput
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	h, err := r.renderMessage(messageVM{Kind: "message"}, g.Text, g.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	got := string(h)
	for _, bad := range []string{"<script", "<img", "<b>", "javascript:", `onmouseover="`, "onerror=alert(1)>"} {
		if strings.Contains(got, bad) {
			t.Errorf("rendered HTML contains %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;", // Slack's escaping decoded once, then HTML-escaped
		"&amp;amp;",                             // "&amp;amp;" in mrkdwn is the text "&amp;"
		`<span class="mention" data-id="U0BOB">@bob</span>`,
		`<span class="mention" data-id="U0NOBODY">@ghost</span>`,
		`<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">a &lt;link&gt;</a>`,
		"evil link", // a javascript: link is shown as its label only
		"<strong>bold <em>nested</em></strong>",
		"<code>code &lt;b&gt;</code>",
		"a*b*c", // markers inside a word are literal
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered HTML lacks %q:\n%s", want, got)
		}
	}
}

func TestParseMrkdwn(t *testing.T) {
	n := names{users: map[string]string{"U1": "ann"}, channels: map[string]string{"C1": "ops"}}
	txt := func(s string) inline { return inline{Kind: inText, Text: s} }
	tests := []struct {
		in   string
		want []inline
	}{
		{"plain &lt;b&gt; &amp;lt;", []inline{txt("plain <b> &lt;")}},
		{"*bold* and _it_", []inline{{Kind: inBold, Kids: []inline{txt("bold")}}, txt(" and "), {Kind: inItalic, Kids: []inline{txt("it")}}}},
		{"* not bold*", []inline{txt("* not bold*")}},
		{"snake_case_name", []inline{txt("snake_case_name")}},
		{"*unclosed", []inline{txt("*unclosed")}},
		{"a\nb", []inline{txt("a"), {Kind: inBreak}, txt("b")}},
		{"`x *y*`", []inline{{Kind: inCode, Text: "x *y*"}}},
		{"<@U1> <@U2|bo> <@U3>", []inline{{Kind: inMention, Text: "@ann", URL: "U1"}, txt(" "), {Kind: inMention, Text: "@bo", URL: "U2"}, txt(" "), {Kind: inMention, Text: "@U3", URL: "U3"}}},
		{"<#C1> <!channel>", []inline{{Kind: inMention, Text: "#ops", URL: "C1"}, txt(" "), {Kind: inMention, Text: "@channel"}}},
		{"<https://x.test/a|go>", []inline{{Kind: inLink, Text: "go", URL: "https://x.test/a"}}},
		{"<mailto:a@x.test|a@x.test>", []inline{{Kind: inLink, Text: "a@x.test", URL: "mailto:a@x.test"}}},
		{"<data:text/html,hi|click>", []inline{txt("click")}},
		{"a < b", []inline{txt("a < b")}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, parseMrkdwn(tc.in, n)); diff != "" {
			t.Errorf("parseMrkdwn(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestClientTextEscapesLikeSlack(t *testing.T) {
	people := DefaultPeople()
	tests := []struct{ typed, want string }{
		{"list @bob", "list <@U0BOB|bob>"},
		{"revoke @Bob @dave. all", "revoke <@U0BOB|bob> <@U0DAVE|dave>. all"},
		{"list @nobody", "list @nobody"},
		{"list bob.engineer@example.com", "list <mailto:bob.engineer@example.com|bob.engineer@example.com>"},
		{"<script>alert(1)</script> & co", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := clientText(tc.typed, people); got != tc.want {
			t.Errorf("clientText(%q) = %q, want %q", tc.typed, got, tc.want)
		}
	}
}

func TestRenderShowsTextWhenBlocksAreBroken(t *testing.T) {
	r := testRenderer(t)
	h, err := r.renderMessage(messageVM{Kind: "message"}, "the *text* &lt;still&gt; shows", json.RawMessage(`[{"type": "section"`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"the <strong>text</strong> &lt;still&gt; shows", "these blocks are not valid JSON"} {
		if !strings.Contains(string(h), want) {
			t.Errorf("rendered %s, want %q in it", h, want)
		}
	}
}
