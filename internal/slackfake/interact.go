package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

func (s *Slack) responseURL(envID string) string { return s.srv.URL + "/response/" + envID }

func (s *Slack) newTriggerLocked(user string, env *envelope, viewTop string) string {
	s.seq++
	id := fmt.Sprintf("%d.%d.fake%06d", 1700000000+s.seq, s.seq, s.seq)
	tr := &trigger{user: user, viewTop: viewTop}
	s.triggers[id] = tr
	env.trigger = tr
	return id
}

func (s *Slack) userNameLocked(user string) string {
	if u, ok := s.users[user]; ok && u.Name != "" {
		return u.Name
	}
	return strings.ToLower(user)
}

func (s *Slack) wireInteractionUserLocked(user string) map[string]any {
	name := s.userNameLocked(user)
	return map[string]any{"id": user, "username": name, "name": name, "team_id": s.opts.TeamID}
}

func channelName(ch string) string {
	if strings.HasPrefix(ch, "D") {
		return "directmessage"
	}
	return strings.ToLower(ch)
}

// SlashCommand pushes a slash_commands envelope for /sessions from user in
// channel and returns its envelope ID. The envelope has its own
// response_url served by the fake and a fresh trigger_id.
func (s *Slack) SlashCommand(user, channel, text string) string {
	return s.Command(SlashCommandName, user, channel, text)
}

// Command is SlashCommand for any command name.
func (s *Slack) Command(command, user, channel, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	env := &envelope{
		id: uuid.NewString(), typ: "slash_commands", acceptsResponse: true,
		user: user, channel: channel, responseURL: true,
	}
	payload := map[string]string{
		"token": VerificationToken, "team_id": s.opts.TeamID, "team_domain": "fake",
		"channel_id": channel, "channel_name": channelName(channel),
		"user_id": user, "user_name": s.userNameLocked(user),
		"command": command, "text": text, "api_app_id": s.opts.AppID,
		"is_enterprise_install": "false",
		"response_url":          s.responseURL(env.id),
		"trigger_id":            s.newTriggerLocked(user, env, ""),
	}
	env.payload = mustJSON(payload)
	s.enqueueLocked(env)
	return env.id
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("slackfake: marshal: %v", err))
	}
	return b
}

// Click pushes a block_actions envelope for user clicking the element with
// actionID in message ts of channel, sending value (which tests may forge).
// It returns the envelope ID, or an error wrapping ErrNotFound if the
// message or element does not exist.
func (s *Slack) Click(user, channel, ts, actionID, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findMessageLocked(channel, ts)
	if m == nil {
		return "", fmt.Errorf("click %s: message %s/%s: %w", actionID, channel, ts, ErrNotFound)
	}
	if m.Ephemeral && m.User != user {
		return "", fmt.Errorf("click %s: ephemeral message %s/%s is shown only to %s: %w", actionID, channel, ts, m.User, ErrNotFound)
	}
	blockID, el, ok := findAction(m.Blocks, actionID)
	if !ok {
		return "", fmt.Errorf("click %s: no element with that action_id in message %s/%s: %w", actionID, channel, ts, ErrNotFound)
	}
	env := &envelope{
		id: uuid.NewString(), typ: "interactive", subtype: "block_actions",
		user: user, channel: channel, responseURL: true,
		originChannel: channel, originTS: ts,
	}
	p := s.blockActionsLocked(env, user, channel, ts, m.Ephemeral, blockID, el, actionID, value)
	if !m.Ephemeral {
		p["message"] = wireMessage(m.Message)
	}
	env.payload = mustJSON(p)
	s.enqueueLocked(env)
	return env.id, nil
}

// ClickEphemeral pushes a block_actions envelope for user clicking the
// element with actionID in an ephemeral reply produced for envelope envID:
// a response_url post (as last replaced) or a slash command's ack payload.
func (s *Slack) ClickEphemeral(user, envID, actionID, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.envs[envID]
	if src == nil {
		return "", fmt.Errorf("click %s: envelope %s: %w", actionID, envID, ErrNotFound)
	}
	if src.user != user {
		return "", fmt.Errorf("click %s: replies to envelope %s are shown only to %s: %w", actionID, envID, src.user, ErrNotFound)
	}
	for i := len(src.surfaces) - 1; i >= 0; i-- {
		sf := src.surfaces[i]
		if sf.deleted {
			continue
		}
		blockID, el, ok := findAction(sf.blocks, actionID)
		if !ok {
			continue
		}
		return s.clickSurfaceLocked(user, src, sf, blockID, el, actionID, value), nil
	}
	return "", fmt.Errorf("click %s: no ephemeral reply to envelope %s has that action_id: %w", actionID, envID, ErrNotFound)
}

// clickSurfaceLocked pushes the block_actions envelope of a click on an
// ephemeral reply of envelope src and returns its ID.
func (s *Slack) clickSurfaceLocked(user string, src *envelope, sf *surface, blockID string, el map[string]any, actionID, value string) string {
	env := &envelope{
		id: uuid.NewString(), typ: "interactive", subtype: "block_actions",
		user: user, channel: src.channel, responseURL: true, originSurface: sf,
	}
	p := s.blockActionsLocked(env, user, src.channel, sf.ts, true, blockID, el, actionID, value)
	env.payload = mustJSON(p)
	s.enqueueLocked(env)
	return env.id
}

func (s *Slack) blockActionsLocked(env *envelope, user, channel, ts string, ephemeral bool,
	blockID string, el map[string]any, actionID, value string,
) map[string]any {
	typ, _ := el["type"].(string)
	action := map[string]any{
		"type": typ, "action_id": actionID, "block_id": blockID,
		"action_ts": s.newTSLocked(),
	}
	switch typ {
	case "button":
		action["value"] = value
		if t, ok := el["text"]; ok {
			action["text"] = t
		}
		if st, ok := el["style"]; ok {
			action["style"] = st
		}
	case "static_select", "external_select", "radio_buttons", "overflow":
		opt := map[string]any{"value": value, "text": map[string]any{"type": "plain_text", "text": value}}
		action["selected_option"] = opt
	case "users_select":
		action["selected_user"] = value
	case "conversations_select":
		action["selected_conversation"] = value
	case "channels_select":
		action["selected_channel"] = value
	default:
		action["value"] = value
	}
	return map[string]any{
		"type": "block_actions", "token": VerificationToken, "api_app_id": s.opts.AppID,
		"trigger_id":   s.newTriggerLocked(user, env, ""),
		"response_url": s.responseURL(env.id),
		"user":         s.wireInteractionUserLocked(user),
		"team":         map[string]any{"id": s.opts.TeamID, "domain": "fake"},
		"enterprise":   nil, "is_enterprise_install": false,
		"container": map[string]any{
			"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": ephemeral,
		},
		"channel": map[string]any{"id": channel, "name": channelName(channel)},
		"state":   map[string]any{"values": map[string]any{}},
		"actions": []any{action},
	}
}

// Submit pushes a view_submission envelope for user submitting open view
// viewID. values are keyed by block_id; each goes to that input block's
// element (action_id and type taken from the view; plain_text_input when the
// block is not found). It fails if the view is not open for user or a
// block_id names no input block of the view.
func (s *Slack) Submit(user, viewID string, values map[string]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.viewByID[viewID]
	switch {
	case v == nil:
		return "", fmt.Errorf("submit view %s: %w", viewID, ErrNotFound)
	case !v.open:
		return "", fmt.Errorf("submit view %s: view is not open: %w", viewID, ErrNotFound)
	case v.user != user:
		return "", fmt.Errorf("submit view %s: view belongs to %s: %w", viewID, v.user, ErrNotFound)
	}
	state := map[string]any{}
	inputs := inputElements(v.blocks)
	for blockID := range values {
		if _, ok := inputs[blockID]; !ok {
			return "", fmt.Errorf("submit view %s: no input block %q: %w", viewID, blockID, ErrNotFound)
		}
	}
	for blockID, el := range inputs {
		actionID, _ := el["action_id"].(string)
		if actionID == "" {
			actionID = blockID
		}
		typ, _ := el["type"].(string)
		if typ == "" {
			typ = "plain_text_input"
		}
		val, set := values[blockID]
		entry := map[string]any{"type": typ}
		switch typ {
		case "static_select", "radio_buttons", "external_select":
			if set {
				entry["selected_option"] = map[string]any{"value": val, "text": map[string]any{"type": "plain_text", "text": val}}
			} else {
				entry["selected_option"] = nil
			}
		case "users_select":
			if set {
				entry["selected_user"] = val
			} else {
				entry["selected_user"] = nil
			}
		default:
			if set {
				entry["value"] = val
			} else {
				entry["value"] = nil
			}
		}
		state[blockID] = map[string]any{actionID: entry}
	}
	env := &envelope{
		id: uuid.NewString(), typ: "interactive", subtype: "view_submission",
		acceptsResponse: true, user: user, viewID: v.id,
	}
	p := map[string]any{
		"type": "view_submission", "token": VerificationToken, "api_app_id": s.opts.AppID,
		"trigger_id":    s.newTriggerLocked(user, env, v.id),
		"user":          s.wireInteractionUserLocked(user),
		"team":          map[string]any{"id": s.opts.TeamID, "domain": "fake"},
		"enterprise":    nil,
		"view":          v.wire(s.opts.TeamID, s.opts.AppID, map[string]any{"values": state}),
		"hash":          v.hash,
		"response_urls": []any{}, "is_enterprise_install": false,
	}
	env.payload = mustJSON(p)
	s.enqueueLocked(env)
	return env.id, nil
}

// handleResponseURL serves the response_url of every envelope.
func (s *Slack) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	envID := strings.TrimPrefix(r.URL.Path, "/response/")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	var p struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal flexBool        `json:"replace_original"`
		DeleteOriginal  flexBool        `json:"delete_original"`
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if err := json.Unmarshal(body, &p); err != nil {
		s.fail("response_url %s: body is not JSON: %v", envID, err)
		writeJSON(w, http.StatusBadRequest, apiError("invalid_payload", nil))
		return
	}
	p.Blocks = normBlocks(p.Blocks)

	s.mu.Lock()
	defer s.mu.Unlock()
	env := s.envs[envID]
	if env == nil || !env.responseURL {
		s.fail("response_url for unknown envelope %q", envID)
		http.Error(w, "no such response_url", http.StatusNotFound)
		return
	}
	env.respUses++
	if env.respUses > maxResponseURLUses {
		s.fail("response_url of envelope %s used more than %d times", envID, maxResponseURLUses)
		http.Error(w, "used_url", http.StatusNotFound)
		return
	}
	if !bool(p.DeleteOriginal) {
		if code, probs := validateMessage(p.Text, p.Blocks); code != "" {
			s.fail("response_url %s: %s: %s", envID, code, joinProblems(probs))
			writeJSON(w, http.StatusOK, apiError(code, probs))
			return
		}
		if p.Text == "" && p.Blocks == nil {
			s.fail("response_url %s: neither text nor blocks", envID)
			writeJSON(w, http.StatusOK, apiError("no_text", nil))
			return
		}
	}
	resp := Response{
		EnvelopeID: envID, Text: p.Text, Blocks: p.Blocks, ResponseType: p.ResponseType,
		ReplaceOriginal: bool(p.ReplaceOriginal), DeleteOriginal: bool(p.DeleteOriginal), At: time.Now(),
	}
	env.responses = append(env.responses, resp)
	s.applyResponseLocked(env, resp)
	s.notifyLocked()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// applyResponseLocked changes what users see after a response_url post.
func (s *Slack) applyResponseLocked(env *envelope, r Response) {
	switch {
	case r.DeleteOriginal:
		switch {
		case env.originSurface != nil:
			env.originSurface.deleted = true
		case env.originTS != "":
			if m := s.findMessageLocked(env.originChannel, env.originTS); m != nil {
				m.deleted = true
			}
		default:
			if n := len(env.surfaces); n > 0 {
				env.surfaces[n-1].deleted = true
			}
		}
	case r.ReplaceOriginal:
		switch {
		case env.originSurface != nil:
			sf := env.originSurface
			sf.text, sf.blocks, sf.deleted = r.Text, r.Blocks, false
			env.surfaces = append(env.surfaces, sf)
		case env.originTS != "":
			if m := s.findMessageLocked(env.originChannel, env.originTS); m != nil {
				m.Text, m.Blocks = r.Text, r.Blocks
				m.Edits++
			}
		default:
			if n := len(env.surfaces); n > 0 {
				sf := env.surfaces[n-1]
				sf.text, sf.blocks, sf.deleted = r.Text, r.Blocks, false
			} else {
				env.surfaces = append(env.surfaces, &surface{ts: s.newTSLocked(), text: r.Text, blocks: r.Blocks})
			}
		}
	case r.ResponseType == "in_channel":
		s.appendMessageLocked(env.channel, r.Text, r.Blocks, "", false, "")
	default:
		env.surfaces = append(env.surfaces, &surface{ts: s.newTSLocked(), text: r.Text, blocks: r.Blocks})
	}
}

// flexBool decodes true, "true", false, "false" and null.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch strings.Trim(string(data), `"`) {
	case "true":
		*b = true
	case "false", "null", "":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", data)
	}
	return nil
}
