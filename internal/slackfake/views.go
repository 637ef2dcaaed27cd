package slackfake

import (
	"encoding/json"
	"maps"
	"time"
)

// view is the fake's state for one modal or Home tab.
type view struct {
	id, typ, callbackID, privateMetadata, externalID string
	user                                             string
	title, submit, close                             json.RawMessage
	blocks                                           json.RawMessage
	open                                             bool
	errors                                           map[string]string
	hash                                             string
	rootID, previousID                               string
}

func (v *view) public() View {
	return View{
		ID: v.id, CallbackID: v.callbackID, PrivateMetadata: v.privateMetadata, User: v.user,
		Blocks: v.blocks, Open: v.open, Type: v.typ, Title: textOf(v.title),
		Errors: maps.Clone(v.errors), PreviousViewID: v.previousID,
		Submit: textOf(v.submit), Close: textOf(v.close),
	}
}

// wire is the view object Slack returns and sends in payloads.
func (v *view) wire(teamID, appID string, state map[string]any) map[string]any {
	blocks := v.blocks
	if blocks == nil {
		blocks = json.RawMessage("[]")
	}
	if state == nil {
		state = map[string]any{"values": map[string]any{}}
	}
	out := map[string]any{
		"id": v.id, "team_id": teamID, "type": v.typ, "blocks": blocks,
		"private_metadata": v.privateMetadata, "callback_id": v.callbackID,
		"state": state, "hash": v.hash, "clear_on_close": false, "notify_on_close": false,
		"root_view_id": v.rootID, "previous_view_id": nil, "app_id": appID,
		"external_id": v.externalID, "app_installed_team_id": teamID, "bot_id": BotID,
	}
	if v.previousID != "" {
		out["previous_view_id"] = v.previousID
	}
	for k, raw := range map[string]json.RawMessage{"title": v.title, "submit": v.submit, "close": v.close} {
		if raw != nil {
			out[k] = raw
		} else {
			out[k] = nil
		}
	}
	return out
}

// viewRequest is the view object an app sends to views.*.
type viewRequest struct {
	Type            string          `json:"type"`
	Title           json.RawMessage `json:"title"`
	Submit          json.RawMessage `json:"submit"`
	Close           json.RawMessage `json:"close"`
	Blocks          json.RawMessage `json:"blocks"`
	PrivateMetadata string          `json:"private_metadata"`
	CallbackID      string          `json:"callback_id"`
	ExternalID      string          `json:"external_id"`
}

func nullToNil(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// parseView decodes and validates a view. It fails the test on a violation.
func (s *Slack) parseView(method string, raw json.RawMessage) (viewRequest, string, []string) {
	var vr viewRequest
	if len(raw) == 0 {
		return vr, "invalid_arguments", []string{"view is required"}
	}
	if err := json.Unmarshal(raw, &vr); err != nil {
		return vr, "invalid_arguments", []string{"view is not a JSON object: " + err.Error()}
	}
	vr.Title, vr.Submit, vr.Close = nullToNil(vr.Title), nullToNil(vr.Submit), nullToNil(vr.Close)
	vr.Blocks = normBlocks(vr.Blocks)
	if code, probs := validateView(vr); code != "" {
		s.fail("%s: %s: %s", method, code, joinProblems(probs))
		return vr, code, probs
	}
	return vr, "", nil
}

func (v *view) apply(vr viewRequest) {
	v.typ = vr.Type
	v.title, v.submit, v.close = vr.Title, vr.Submit, vr.Close
	v.blocks = vr.Blocks
	v.privateMetadata, v.callbackID = vr.PrivateMetadata, vr.CallbackID
	if vr.ExternalID != "" {
		v.externalID = vr.ExternalID
	}
}

func (s *Slack) newViewLocked(user string, vr viewRequest, previous *view) *view {
	v := &view{id: s.nextIDLocked("VFAKE"), user: user, open: vr.Type == "modal"}
	v.apply(vr)
	v.hash = s.newTSLocked() + ".fakehash"
	v.rootID = v.id
	if previous != nil {
		v.previousID = previous.id
		v.rootID = previous.rootID
	}
	s.views = append(s.views, v)
	s.viewByID[v.id] = v
	s.notifyLocked()
	return v
}

// useTriggerLocked consumes a trigger_id.
func (s *Slack) useTriggerLocked(id string) (*trigger, string) {
	tr := s.triggers[id]
	switch {
	case id == "":
		return nil, "invalid_arguments"
	case tr == nil:
		return nil, "invalid_trigger_id"
	case tr.used:
		return nil, "exchanged_trigger_id"
	case tr.issued.IsZero() || time.Since(tr.issued) > s.opts.TriggerTTL:
		return nil, "expired_trigger_id"
	}
	tr.used = true
	return tr, ""
}

func (s *Slack) apiViewsOpen(p params) (map[string]any, string, []string) {
	vr, code, probs := s.parseView("views.open", p.raw("view"))
	if code != "" {
		return nil, code, probs
	}
	if vr.Type != "modal" {
		return nil, "invalid_arguments", []string{"views.open needs a modal view"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tr, code := s.useTriggerLocked(p.str("trigger_id"))
	if code != "" {
		return nil, code, nil
	}
	v := s.newViewLocked(tr.user, vr, nil)
	return map[string]any{"view": v.wire(s.opts.TeamID, s.opts.AppID, nil)}, "", nil
}

func (s *Slack) apiViewsPush(p params) (map[string]any, string, []string) {
	vr, code, probs := s.parseView("views.push", p.raw("view"))
	if code != "" {
		return nil, code, probs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tr, code := s.useTriggerLocked(p.str("trigger_id"))
	if code != "" {
		return nil, code, nil
	}
	prev := s.viewByID[tr.viewTop]
	if prev == nil || !prev.open {
		return nil, "not_found", []string{"views.push needs a trigger from an open modal"}
	}
	v := s.newViewLocked(tr.user, vr, prev)
	return map[string]any{"view": v.wire(s.opts.TeamID, s.opts.AppID, nil)}, "", nil
}

func (s *Slack) apiViewsUpdate(p params) (map[string]any, string, []string) {
	vr, code, probs := s.parseView("views.update", p.raw("view"))
	if code != "" {
		return nil, code, probs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var v *view
	if id := p.str("view_id"); id != "" {
		v = s.viewByID[id]
	} else if ext := p.str("external_id"); ext != "" {
		for _, c := range s.views {
			if c.externalID == ext {
				v = c
			}
		}
	}
	if v == nil {
		return nil, "not_found", nil
	}
	if h := p.str("hash"); h != "" && h != v.hash {
		return nil, "hash_conflict", nil
	}
	v.apply(vr)
	v.hash = s.newTSLocked() + ".fakehash"
	s.notifyLocked()
	return map[string]any{"view": v.wire(s.opts.TeamID, s.opts.AppID, nil)}, "", nil
}

func (s *Slack) apiViewsPublish(p params) (map[string]any, string, []string) {
	vr, code, probs := s.parseView("views.publish", p.raw("view"))
	if code != "" {
		return nil, code, probs
	}
	if vr.Type != "home" {
		return nil, "invalid_arguments", []string{"views.publish needs a home view"}
	}
	user := p.str("user_id")
	if user == "" {
		return nil, "invalid_arguments", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.homeViews[user]
	if v == nil {
		v = s.newViewLocked(user, vr, nil)
		s.homeViews[user] = v
	} else {
		v.apply(vr)
		v.hash = s.newTSLocked() + ".fakehash"
		s.notifyLocked()
	}
	return map[string]any{"view": v.wire(s.opts.TeamID, s.opts.AppID, nil)}, "", nil
}

// applyViewResponseLocked applies a view_submission ack's response_action.
func (s *Slack) applyViewResponseLocked(env *envelope, payload json.RawMessage) {
	v := s.viewByID[env.viewID]
	if v == nil {
		return
	}
	var p struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
		View           json.RawMessage   `json:"view"`
	}
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &p); err != nil {
			s.fail("envelope %s: view_submission ack payload: %v", env.id, err)
			return
		}
	}
	switch p.ResponseAction {
	case "":
		v.open = false
	case "errors":
		if len(p.Errors) == 0 {
			s.fail("envelope %s: response_action errors without errors", env.id)
		}
		for blockID := range p.Errors {
			if !hasInputBlock(v.blocks, blockID) {
				s.fail("envelope %s: response_action errors names %q, which is not an input block of view %s; Slack shows a generic error", env.id, blockID, v.id)
			}
		}
		v.errors = p.Errors
	case "update":
		vr, code, probs := s.parseView("view_submission ack (update)", nullToNil(p.View))
		if code != "" {
			_ = probs
			return
		}
		v.apply(vr)
		v.errors = nil
		v.hash = s.newTSLocked() + ".fakehash"
	case "push":
		vr, code, _ := s.parseView("view_submission ack (push)", nullToNil(p.View))
		if code != "" {
			return
		}
		v.errors = nil
		s.newViewLocked(v.user, vr, v)
	case "clear":
		for _, c := range s.views {
			if c.user == v.user && c.typ == "modal" && c.rootID == v.rootID {
				c.open = false
			}
		}
	default:
		s.fail("envelope %s: unknown response_action %q", env.id, p.ResponseAction)
	}
}
