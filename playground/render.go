package playground

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
)

// The Block Kit the page understands: what Warden's bot renders (header,
// section with text, fields and a button accessory, context, divider,
// actions with buttons) and, for modals, input blocks. Anything else is
// shown as a visible "unsupported" note, never dropped silently.

// textObj is a Block Kit text object.
type textObj struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

type confirmObj struct {
	Title   *textObj `json:"title"`
	Text    *textObj `json:"text"`
	Confirm *textObj `json:"confirm"`
	Deny    *textObj `json:"deny"`
}

type optionObj struct {
	Text  *textObj `json:"text"`
	Value string   `json:"value"`
}

// element is an interactive element (button, input, select) or a context
// element (text object or image).
type element struct {
	Type         string          `json:"type"`
	ActionID     string          `json:"action_id"`
	Value        string          `json:"value"`
	Text         json.RawMessage `json:"text"` // object for a button; string for a context text
	Style        string          `json:"style"`
	URL          string          `json:"url"`
	Confirm      *confirmObj     `json:"confirm"`
	Placeholder  *textObj        `json:"placeholder"`
	Multiline    bool            `json:"multiline"`
	MaxLength    int             `json:"max_length"`
	InitialValue string          `json:"initial_value"`
	Options      []optionObj     `json:"options"`
	AltText      string          `json:"alt_text"`
}

type block struct {
	Type      string    `json:"type"`
	BlockID   string    `json:"block_id"`
	Text      *textObj  `json:"text"`
	Fields    []textObj `json:"fields"`
	Accessory *element  `json:"accessory"`
	Elements  []element `json:"elements"`
	Label     *textObj  `json:"label"`
	Element   *element  `json:"element"`
	Optional  bool      `json:"optional"`
	Hint      *textObj  `json:"hint"`
	AltText   string    `json:"alt_text"`
}

// Views handed to the templates. Every string in them is literal text;
// html/template escapes it wherever it lands.
type (
	buttonVM struct {
		Label, ActionID, Value, Style, URL string
		Confirm                            *confirmVM
	}
	confirmVM struct{ Title, Text, OK, Deny string }
	optionVM  struct{ Label, Value string }
	inputVM   struct {
		BlockID, Label, Type, Placeholder, Initial, Error string
		Multiline, Optional                               bool
		MaxLength                                         int
		Options                                           []optionVM
		Hint                                              []inline
	}
	blockVM struct {
		Type      string // header, section, context, divider, actions, input, image, unsupported
		Text      []inline
		Fields    [][]inline
		Accessory *buttonVM
		Buttons   []buttonVM
		Elements  [][]inline // context
		Input     *inputVM
		Notes     []string // elements the page cannot show
	}
	// messageVM is one message in a feed.
	messageVM struct {
		Kind      string // "message" (channel or DM) or "ephemeral"
		Channel   string
		TS        string
		Author    string
		Ephemeral bool // shown only to the viewer
		Edited    bool
		Thread    bool
		Blocks    []blockVM
		Fallback  []inline // the text, when there are no blocks
	}
	// modalVM is an open modal, as a form.
	modalVM struct {
		ViewID, Title, Submit, Close string
		Blocks                       []blockVM
	}
)

// textOf renders a text object: mrkdwn is parsed, plain_text is literal.
func textOf(t *textObj, n names) []inline {
	if t == nil || t.Text == "" {
		return nil
	}
	if t.Type == "mrkdwn" {
		return parseMrkdwn(t.Text, n)
	}
	return plainLines(t.Text)
}

// plainLines is plain_text: literal, with its line breaks.
func plainLines(s string) []inline {
	var out []inline
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			out = append(out, inline{Kind: inBreak})
		}
		if line != "" {
			out = append(out, inline{Kind: inText, Text: line})
		}
	}
	return out
}

func plainOf(t *textObj) string {
	if t == nil {
		return ""
	}
	return t.Text
}

func button(el *element) (buttonVM, bool) {
	if el == nil || el.Type != "button" {
		return buttonVM{}, false
	}
	var label textObj
	_ = json.Unmarshal(el.Text, &label)
	b := buttonVM{Label: label.Text, ActionID: el.ActionID, Value: el.Value, Style: el.Style, URL: el.URL}
	if b.Label == "" {
		b.Label = el.ActionID
	}
	if c := el.Confirm; c != nil {
		b.Confirm = &confirmVM{Title: plainOf(c.Title), Text: plainOf(c.Text), OK: plainOf(c.Confirm), Deny: plainOf(c.Deny)}
		if b.Confirm.Title == "" {
			b.Confirm.Title = "Are you sure?"
		}
		if b.Confirm.OK == "" {
			b.Confirm.OK = "OK"
		}
		if b.Confirm.Deny == "" {
			b.Confirm.Deny = "Cancel"
		}
	}
	return b, true
}

// decodeBlocks reads a block list; an empty or null list is no blocks.
func decodeBlocks(raw json.RawMessage) ([]block, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var bs []block
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, fmt.Errorf("decode blocks: %w", err)
	}
	return bs, nil
}

// blockVMs turns Block Kit into the template's views. errs are a modal's
// field errors by block_id.
func blockVMs(bs []block, n names, errs map[string]string) []blockVM {
	out := make([]blockVM, 0, len(bs))
	for _, b := range bs {
		vm := blockVM{Type: b.Type}
		switch b.Type {
		case "header":
			vm.Text = plainLines(plainOf(b.Text))
		case "section":
			vm.Text = textOf(b.Text, n)
			for i := range b.Fields {
				vm.Fields = append(vm.Fields, textOf(&b.Fields[i], n))
			}
			if b.Accessory != nil {
				if bt, ok := button(b.Accessory); ok {
					vm.Accessory = &bt
				} else {
					vm.Notes = append(vm.Notes, "unsupported accessory: "+b.Accessory.Type)
				}
			}
		case "context":
			for _, el := range b.Elements {
				switch el.Type {
				case "mrkdwn", "plain_text":
					var s string
					_ = json.Unmarshal(el.Text, &s)
					vm.Elements = append(vm.Elements, textOf(&textObj{Type: el.Type, Text: s}, n))
				case "image":
					vm.Elements = append(vm.Elements, []inline{{Kind: inText, Text: "[image: " + el.AltText + "]"}})
				default:
					vm.Notes = append(vm.Notes, "unsupported context element: "+el.Type)
				}
			}
		case "divider":
		case "actions":
			for i := range b.Elements {
				if bt, ok := button(&b.Elements[i]); ok {
					vm.Buttons = append(vm.Buttons, bt)
				} else {
					vm.Notes = append(vm.Notes, "unsupported element: "+b.Elements[i].Type)
				}
			}
		case "input":
			vm.Input = inputOf(b, n, errs[b.BlockID])
			if vm.Input == nil {
				vm.Type = "unsupported"
				vm.Notes = append(vm.Notes, "unsupported input element")
			}
		case "image":
			vm.Text = []inline{{Kind: inText, Text: "[image: " + b.AltText + "]"}}
		default:
			vm.Type = "unsupported"
			vm.Notes = append(vm.Notes, "unsupported block: "+b.Type)
		}
		out = append(out, vm)
	}
	return out
}

func inputOf(b block, n names, errText string) *inputVM {
	el := b.Element
	if el == nil {
		return nil
	}
	in := &inputVM{
		BlockID: b.BlockID, Label: plainOf(b.Label), Type: el.Type,
		Placeholder: plainOf(el.Placeholder), Initial: el.InitialValue, Error: errText,
		Multiline: el.Multiline, Optional: b.Optional, MaxLength: el.MaxLength,
		Hint: textOf(b.Hint, n),
	}
	switch el.Type {
	case "plain_text_input", "email_text_input", "url_text_input", "number_input":
	case "static_select", "radio_buttons":
		for _, o := range el.Options {
			in.Options = append(in.Options, optionVM{Label: plainOf(o.Text), Value: o.Value})
		}
	default:
		return nil
	}
	return in
}

// renderMessage renders one message (or ephemeral reply) to HTML.
func (r *renderer) renderMessage(m messageVM, text string, raw json.RawMessage) (template.HTML, error) {
	bs, err := decodeBlocks(raw)
	if err != nil {
		// Slack would refuse such a message; show its text and say so.
		bs = []block{{Type: "section", Text: &textObj{Type: "mrkdwn", Text: text}}}
		m.Blocks = append(blockVMs(bs, r.names, nil), blockVM{Type: "unsupported", Notes: []string{"these blocks are not valid JSON"}})
		return r.exec("message", m)
	}
	m.Blocks = blockVMs(bs, r.names, nil)
	if len(bs) == 0 {
		m.Fallback = parseMrkdwn(text, r.names)
	}
	return r.exec("message", m)
}

// renderer executes the page's templates with the names mentions show.
type renderer struct {
	tmpl  *template.Template
	names names
}

// newRenderer parses the fragments' templates; mentions show the names of
// cfg's people and channels.
func newRenderer(cfg Config) (*renderer, error) {
	tmpl, err := template.New("blocks").ParseFS(webFS, "web/blocks.tmpl")
	if err != nil {
		return nil, err
	}
	n := names{users: map[string]string{}, channels: map[string]string{
		cfg.Channel:         channelName(cfg.Channel),
		cfg.SecurityChannel: channelName(cfg.SecurityChannel),
	}}
	for _, p := range cfg.People {
		n.users[p.ID] = p.Name
	}
	return &renderer{tmpl: tmpl, names: n}, nil
}

// renderModal renders an open modal as a form; errs are its field errors
// by block_id.
func (r *renderer) renderModal(viewID, title, submit, closeLabel string, raw json.RawMessage, errs map[string]string) (template.HTML, error) {
	bs, err := decodeBlocks(raw)
	if err != nil {
		return "", err
	}
	if closeLabel == "" {
		closeLabel = "Cancel"
	}
	return r.exec("modal", modalVM{ViewID: viewID, Title: title, Submit: submit, Close: closeLabel, Blocks: blockVMs(bs, r.names, errs)})
}

func (r *renderer) exec(name string, data any) (template.HTML, error) {
	var b bytes.Buffer
	if err := r.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return template.HTML(b.String()), nil //nolint:gosec // produced by html/template
}
