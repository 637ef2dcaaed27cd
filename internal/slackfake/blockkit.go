package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Slack limits (reference/slack-platform.md §4 and §5).
const (
	maxMessageText      = 4000
	maxMessageBlocks    = 50
	maxViewBlocks       = 100
	maxIDLen            = 255
	maxTextObject       = 3000
	maxSectionText      = 3000
	maxSectionFields    = 10
	maxFieldText        = 2000
	maxHeaderText       = 150
	maxContextElements  = 10
	maxActionsElements  = 25
	maxButtonText       = 75
	maxButtonValue      = 2000
	maxButtonURL        = 3000
	maxPlaceholder      = 150
	maxConfirmTitle     = 100
	maxConfirmText      = 300
	maxConfirmButton    = 30
	maxModalTitle       = 24
	maxPrivateMetadata  = 3000
	maxInputLabel       = 2000
	maxInputMaxLength   = 3000
	maxOptions          = 100
	maxCheckboxOptions  = 10
	maxOptionText       = 75
	maxOptionValue      = 150
	maxMarkdownBlockLen = 12000
)

// normBlocks maps absent, null and empty block lists to nil.
func normBlocks(raw json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" || string(t) == "[]" {
		return nil
	}
	return raw
}

func joinProblems(p []string) string { return strings.Join(p, "; ") }

func runes(s string) int { return utf8.RuneCountInString(s) }

// validateMessage checks a message's text and blocks. It returns the Slack
// error code ("msg_too_long" or "invalid_blocks") and the problems found.
func validateMessage(text string, blocks json.RawMessage) (string, []string) {
	if n := runes(text); n > maxMessageText {
		return "msg_too_long", []string{fmt.Sprintf("text is %d characters (max %d)", n, maxMessageText)}
	}
	if probs := validateBlocks(blocks, maxMessageBlocks); len(probs) > 0 {
		return "invalid_blocks", probs
	}
	return "", nil
}

// validateView checks a modal or Home tab view.
func validateView(v viewRequest) (string, []string) {
	var probs []string
	switch v.Type {
	case "modal", "home":
	default:
		return "invalid_arguments", []string{fmt.Sprintf("view type %q is not modal or home", v.Type)}
	}
	if v.Type == "modal" {
		if v.Title == nil {
			probs = append(probs, "modal title is required")
		}
		hasInput := false
		for _, b := range decodeBlocks(v.Blocks) {
			if b["type"] == "input" {
				hasInput = true
			}
		}
		if hasInput && v.Submit == nil {
			probs = append(probs, "modal with an input block needs submit")
		}
		for name, raw := range map[string]json.RawMessage{"title": v.Title, "submit": v.Submit, "close": v.Close} {
			if raw == nil {
				continue
			}
			var t map[string]any
			if json.Unmarshal(raw, &t) != nil {
				probs = append(probs, name+" is not a text object")
				continue
			}
			if t["type"] != "plain_text" {
				probs = append(probs, name+" must be plain_text")
			}
			if n := runes(str(t["text"])); n == 0 || n > maxModalTitle {
				probs = append(probs, fmt.Sprintf("%s text is %d characters (want 1..%d)", name, n, maxModalTitle))
			}
		}
	}
	if n := runes(v.PrivateMetadata); n > maxPrivateMetadata {
		probs = append(probs, fmt.Sprintf("private_metadata is %d characters (max %d)", n, maxPrivateMetadata))
	}
	if n := runes(v.CallbackID); n > maxIDLen {
		probs = append(probs, fmt.Sprintf("callback_id is %d characters (max %d)", n, maxIDLen))
	}
	if len(probs) > 0 {
		return "invalid_arguments", probs
	}
	if probs := validateBlocks(v.Blocks, maxViewBlocks); len(probs) > 0 {
		return "invalid_blocks", probs
	}
	return "", nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func decodeBlocks(raw json.RawMessage) []map[string]any {
	var blocks []map[string]any
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &blocks)
	}
	return blocks
}

// textOf returns the text of a text object.
func textOf(raw json.RawMessage) string {
	var t struct {
		Text string `json:"text"`
	}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &t)
	}
	return t.Text
}

type checker struct{ probs []string }

func (c *checker) addf(format string, args ...any) {
	c.probs = append(c.probs, fmt.Sprintf(format, args...))
}

// maxLen checks 0..limit characters.
func (c *checker) maxLen(path, s string, limit int) {
	if n := runes(s); n > limit {
		c.addf("%s is %d characters (max %d)", path, n, limit)
	}
}

// text checks a text object with 1..limit characters.
func (c *checker) text(path string, v any, limit int, plainOnly bool) {
	t, ok := v.(map[string]any)
	if !ok {
		c.addf("%s is not a text object", path)
		return
	}
	typ := str(t["type"])
	switch {
	case typ != "plain_text" && typ != "mrkdwn":
		c.addf("%s.type %q is not plain_text or mrkdwn", path, typ)
	case plainOnly && typ != "plain_text":
		c.addf("%s must be plain_text", path)
	}
	n := runes(str(t["text"]))
	if n == 0 || n > limit {
		c.addf("%s.text is %d characters (want 1..%d)", path, n, limit)
	}
}

// validateBlocks checks a block list against Slack's Block Kit limits.
func validateBlocks(raw json.RawMessage, maxBlocks int) []string {
	if raw == nil {
		return nil
	}
	var blocks []any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return []string{"blocks is not a JSON array: " + err.Error()}
	}
	c := &checker{}
	if len(blocks) > maxBlocks {
		c.addf("%d blocks (max %d)", len(blocks), maxBlocks)
	}
	seen := map[string]bool{}
	for i, bv := range blocks {
		path := fmt.Sprintf("blocks[%d]", i)
		b, ok := bv.(map[string]any)
		if !ok {
			c.addf("%s is not an object", path)
			continue
		}
		if id := str(b["block_id"]); id != "" {
			c.maxLen(path+".block_id", id, maxIDLen)
			if seen[id] {
				c.addf("%s.block_id %q is not unique", path, id)
			}
			seen[id] = true
		}
		c.block(path, b)
	}
	return c.probs
}

func (c *checker) block(path string, b map[string]any) {
	switch typ := str(b["type"]); typ {
	case "section":
		text, hasText := b["text"]
		fields, hasFields := b["fields"].([]any)
		if !hasText && !hasFields {
			c.addf("%s: section needs text or fields", path)
		}
		if hasText {
			c.text(path+".text", text, maxSectionText, false)
		}
		if hasFields {
			if len(fields) > maxSectionFields {
				c.addf("%s.fields has %d items (max %d)", path, len(fields), maxSectionFields)
			}
			for j, f := range fields {
				c.text(fmt.Sprintf("%s.fields[%d]", path, j), f, maxFieldText, false)
			}
		}
		if acc, ok := b["accessory"].(map[string]any); ok {
			c.element(path+".accessory", acc)
		}
	case "header":
		c.text(path+".text", b["text"], maxHeaderText, true)
	case "context":
		els, _ := b["elements"].([]any)
		if len(els) == 0 || len(els) > maxContextElements {
			c.addf("%s.elements has %d items (want 1..%d)", path, len(els), maxContextElements)
		}
		for j, e := range els {
			em, _ := e.(map[string]any)
			if t := str(em["type"]); t == "plain_text" || t == "mrkdwn" {
				c.text(fmt.Sprintf("%s.elements[%d]", path, j), em, maxTextObject, false)
			}
		}
	case "actions":
		els, _ := b["elements"].([]any)
		if len(els) == 0 || len(els) > maxActionsElements {
			c.addf("%s.elements has %d items (want 1..%d)", path, len(els), maxActionsElements)
		}
		for j, e := range els {
			em, ok := e.(map[string]any)
			if !ok {
				c.addf("%s.elements[%d] is not an object", path, j)
				continue
			}
			c.element(fmt.Sprintf("%s.elements[%d]", path, j), em)
		}
	case "input":
		c.text(path+".label", b["label"], maxInputLabel, true)
		if h, ok := b["hint"]; ok {
			c.text(path+".hint", h, maxInputLabel, true)
		}
		el, ok := b["element"].(map[string]any)
		if !ok {
			c.addf("%s: input needs an element", path)
			break
		}
		c.element(path+".element", el)
	case "markdown":
		c.maxLen(path+".text", str(b["text"]), maxMarkdownBlockLen)
	case "":
		c.addf("%s has no type", path)
	}
}

func (c *checker) element(path string, el map[string]any) {
	c.maxLen(path+".action_id", str(el["action_id"]), maxIDLen)
	if p, ok := el["placeholder"]; ok {
		c.text(path+".placeholder", p, maxPlaceholder, true)
	}
	if cf, ok := el["confirm"].(map[string]any); ok {
		c.text(path+".confirm.title", cf["title"], maxConfirmTitle, true)
		c.text(path+".confirm.text", cf["text"], maxConfirmText, false)
		c.text(path+".confirm.confirm", cf["confirm"], maxConfirmButton, true)
		c.text(path+".confirm.deny", cf["deny"], maxConfirmButton, true)
	}
	switch str(el["type"]) {
	case "button":
		c.text(path+".text", el["text"], maxButtonText, true)
		c.maxLen(path+".value", str(el["value"]), maxButtonValue)
		c.maxLen(path+".url", str(el["url"]), maxButtonURL)
		c.maxLen(path+".accessibility_label", str(el["accessibility_label"]), maxButtonText)
		switch st := str(el["style"]); st {
		case "", "primary", "danger":
		default:
			c.addf("%s.style %q is not primary or danger", path, st)
		}
	case "static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes":
		opts, _ := el["options"].([]any)
		limit := maxOptions
		if t := str(el["type"]); t == "checkboxes" || t == "radio_buttons" {
			limit = maxCheckboxOptions
		}
		if len(opts) > limit {
			c.addf("%s.options has %d items (max %d)", path, len(opts), limit)
		}
		for j, o := range opts {
			om, _ := o.(map[string]any)
			op := fmt.Sprintf("%s.options[%d]", path, j)
			c.text(op+".text", om["text"], maxOptionText, false)
			c.maxLen(op+".value", str(om["value"]), maxOptionValue)
		}
	case "plain_text_input":
		if ml, ok := el["max_length"].(float64); ok && ml > maxInputMaxLength {
			c.addf("%s.max_length is %v (max %d)", path, ml, maxInputMaxLength)
		}
	}
}

// findAction finds the interactive element with actionID in a block list
// (actions elements, section accessories, input elements). It returns the
// element's block_id, or a generated one when the block has none, as Slack
// assigns one to every block.
func findAction(raw json.RawMessage, actionID string) (string, map[string]any, bool) {
	for i, b := range decodeBlocks(raw) {
		blockID := str(b["block_id"])
		if blockID == "" {
			blockID = fmt.Sprintf("fakeblk%d", i)
		}
		var els []any
		switch b["type"] {
		case "actions":
			els, _ = b["elements"].([]any)
		case "section":
			els = []any{b["accessory"]}
		case "input":
			els = []any{b["element"]}
		}
		for _, e := range els {
			if em, ok := e.(map[string]any); ok && str(em["action_id"]) == actionID {
				return blockID, em, true
			}
		}
	}
	return "", nil, false
}

// inputElements maps the block_id of every input block to its element.
func inputElements(raw json.RawMessage) map[string]map[string]any {
	out := map[string]map[string]any{}
	for i, b := range decodeBlocks(raw) {
		if b["type"] != "input" {
			continue
		}
		blockID := str(b["block_id"])
		if blockID == "" {
			blockID = fmt.Sprintf("fakeblk%d", i)
		}
		el, _ := b["element"].(map[string]any)
		if el == nil {
			el = map[string]any{}
		}
		out[blockID] = el
	}
	return out
}

func hasInputBlock(raw json.RawMessage, blockID string) bool {
	_, ok := inputElements(raw)[blockID]
	return ok
}
