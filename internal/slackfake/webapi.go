package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// params gives uniform access to form-encoded and JSON request bodies.
type params struct {
	form url.Values
	json map[string]json.RawMessage
}

// str returns a string parameter; JSON scalars other than strings are
// returned as their JSON text (true, 12).
func (p params) str(key string) string {
	if raw, ok := p.json[key]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		if string(raw) == "null" {
			return ""
		}
		return string(raw)
	}
	return p.form.Get(key)
}

func (p params) has(key string) bool {
	if _, ok := p.json[key]; ok {
		return true
	}
	_, ok := p.form[key]
	return ok
}

// raw returns a JSON-valued parameter (blocks, view): inline JSON in a JSON
// body, or a JSON string in a form field.
func (p params) raw(key string) json.RawMessage {
	if raw, ok := p.json[key]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s == "" {
				return nil
			}
			return json.RawMessage(s)
		}
		if string(raw) == "null" {
			return nil
		}
		return raw
	}
	if v := p.form.Get(key); v != "" {
		return json.RawMessage(v)
	}
	return nil
}

type apiHandler func(s *Slack, p params) (map[string]any, string, []string)

var apiMethods = map[string]apiHandler{
	"apps.connections.open": (*Slack).apiConnectionsOpen,
	"auth.test":             (*Slack).apiAuthTest,
	"chat.postMessage":      (*Slack).apiPostMessage,
	"chat.postEphemeral":    (*Slack).apiPostEphemeral,
	"chat.update":           (*Slack).apiUpdate,
	"chat.delete":           (*Slack).apiDelete,
	"conversations.open":    (*Slack).apiConversationsOpen,
	"conversations.history": (*Slack).apiHistory,
	"users.info":            (*Slack).apiUsersInfo,
	"users.lookupByEmail":   (*Slack).apiLookupByEmail,
	"usergroups.users.list": (*Slack).apiUsergroupUsers,
	"views.open":            (*Slack).apiViewsOpen,
	"views.update":          (*Slack).apiViewsUpdate,
	"views.push":            (*Slack).apiViewsPush,
	"views.publish":         (*Slack).apiViewsPublish,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(code string, problems []string) map[string]any {
	out := map[string]any{"ok": false, "error": code}
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = "[ERROR] " + p
		}
		out["response_metadata"] = map[string]any{"messages": msgs}
	}
	return out
}

func (s *Slack) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError("invalid_form_data", nil))
		return
	}
	var p params
	call := Call{Method: method, At: time.Now()}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ctype == "application/json":
		p.form = r.URL.Query()
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &p.json); err != nil {
				s.record(call)
				writeJSON(w, http.StatusOK, apiError("invalid_json", nil))
				return
			}
			call.JSON = json.RawMessage(body)
		}
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.record(call)
			writeJSON(w, http.StatusOK, apiError("invalid_form_data", nil))
			return
		}
		for k, v := range r.URL.Query() {
			form[k] = append(form[k], v...)
		}
		p.form = form
	}
	call.Values = p.form

	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.notifyLocked()
	th := s.throttles[method]
	throttled := th != nil && th.n > 0
	var retryAfter time.Duration
	if throttled {
		th.n--
		retryAfter = th.retryAfter
	}
	s.mu.Unlock()

	if throttled {
		secs := max(int(math.Ceil(retryAfter.Seconds())), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeJSON(w, http.StatusTooManyRequests, apiError("ratelimited", nil))
		return
	}
	if method == "apps.connections.open" {
		s.mu.Lock()
		gate := s.connGate
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-s.stop:
				writeJSON(w, http.StatusServiceUnavailable, apiError("fake_closed", nil))
				return
			case <-r.Context().Done():
				return
			}
		}
	}
	h, ok := apiMethods[method]
	if !ok {
		s.fail("Web API method %q is not implemented by the fake (unknown_method)", method)
		writeJSON(w, http.StatusOK, apiError("unknown_method", nil))
		return
	}
	// Token: form field or Bearer header.
	token := p.str("token")
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		token = strings.TrimPrefix(auth, "Bearer ")
	}
	wantPrefix := "xoxb-"
	if method == "apps.connections.open" {
		wantPrefix = "xapp-"
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			token = ""
		}
	}
	switch {
	case token == "":
		writeJSON(w, http.StatusOK, apiError("not_authed", nil))
		return
	case !strings.HasPrefix(token, wantPrefix):
		writeJSON(w, http.StatusOK, apiError("invalid_auth", nil))
		return
	}
	out, code, problems := h(s, p)
	if code != "" {
		writeJSON(w, http.StatusOK, apiError(code, problems))
		return
	}
	if out == nil {
		out = map[string]any{}
	}
	out["ok"] = true
	writeJSON(w, http.StatusOK, out)
}

func (s *Slack) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	s.notifyLocked()
}

func (s *Slack) apiConnectionsOpen(params) (map[string]any, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authErr != "" {
		return nil, s.authErr, nil
	}
	ticket := s.nextIDLocked("ticket")
	s.tickets[ticket] = false
	u := fmt.Sprintf("ws%s/link/?ticket=%s&app_id=%s", strings.TrimPrefix(s.srv.URL, "http"),
		url.QueryEscape(ticket), url.QueryEscape(s.opts.AppID))
	return map[string]any{"url": u}, "", nil
}

func (s *Slack) apiAuthTest(params) (map[string]any, string, []string) {
	return map[string]any{
		"url": s.srv.URL + "/", "team": "Fake Team", "user": "warden",
		"team_id": s.opts.TeamID, "user_id": BotUserID, "bot_id": BotID,
	}, "", nil
}

// channelFor maps a user ID given as a channel to that user's DM.
func (s *Slack) channelForLocked(ch string) string {
	if strings.HasPrefix(ch, "U") || strings.HasPrefix(ch, "W") {
		return s.dmLocked(ch)
	}
	return ch
}

func (s *Slack) messageTextAndBlocks(method string, p params) (string, json.RawMessage, string, []string) {
	text := p.str("text")
	blocks := normBlocks(p.raw("blocks"))
	if code, probs := validateMessage(text, blocks); code != "" {
		s.fail("%s: %s: %s", method, code, joinProblems(probs))
		return "", nil, code, probs
	}
	return text, blocks, "", nil
}

func (s *Slack) apiPostMessage(p params) (map[string]any, string, []string) {
	text, blocks, code, probs := s.messageTextAndBlocks("chat.postMessage", p)
	if code != "" {
		return nil, code, probs
	}
	if text == "" && blocks == nil && !p.has("attachments") {
		return nil, "no_text", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(p.str("channel"))
	if ch == "" {
		return nil, "channel_not_found", nil
	}
	m := s.appendMessageLocked(ch, text, blocks, p.str("thread_ts"), false, "")
	m.Metadata = p.raw("metadata")
	return map[string]any{"channel": ch, "ts": m.TS, "message": wireMessage(m.Message)}, "", nil
}

// apiHistory answers conversations.history: the channel's messages, newest
// first, with their metadata when include_all_metadata is set.
func (s *Slack) apiHistory(p params) (map[string]any, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(p.str("channel"))
	if ch == "" {
		return nil, "channel_not_found", nil
	}
	limit := 100
	if n, err := strconv.Atoi(p.str("limit")); err == nil && n > 0 && n < limit {
		limit = n
	}
	withMeta := p.str("include_all_metadata") == "1" || p.str("include_all_metadata") == "true"
	msgs := []map[string]any{}
	list := s.chans[ch]
	for i := len(list) - 1; i >= 0 && len(msgs) < limit; i-- {
		m := list[i]
		if m.deleted || m.Ephemeral {
			continue
		}
		w := wireMessage(m.Message)
		if withMeta && len(m.Metadata) > 0 {
			w["metadata"] = m.Metadata
		}
		msgs = append(msgs, w)
	}
	return map[string]any{"messages": msgs, "has_more": false}, "", nil
}

func (s *Slack) apiPostEphemeral(p params) (map[string]any, string, []string) {
	text, blocks, code, probs := s.messageTextAndBlocks("chat.postEphemeral", p)
	if code != "" {
		return nil, code, probs
	}
	if text == "" && blocks == nil && !p.has("attachments") {
		return nil, "no_text", nil
	}
	user := p.str("user")
	if user == "" {
		return nil, "user_not_in_channel", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(p.str("channel"))
	if ch == "" {
		return nil, "channel_not_found", nil
	}
	m := s.appendMessageLocked(ch, text, blocks, p.str("thread_ts"), true, user)
	return map[string]any{"message_ts": m.TS}, "", nil
}

func (s *Slack) appendMessageLocked(ch, text string, blocks json.RawMessage, threadTS string, ephemeral bool, user string) *message {
	m := &message{Message: Message{
		Channel: ch, TS: s.newTSLocked(), Text: text, Blocks: blocks,
		ThreadTS: threadTS, Ephemeral: ephemeral, User: user,
	}}
	s.chans[ch] = append(s.chans[ch], m)
	s.notifyLocked()
	return m
}

func (s *Slack) findMessageLocked(ch, ts string) *message {
	for _, m := range s.chans[ch] {
		if m.TS == ts && !m.deleted {
			return m
		}
	}
	return nil
}

func wireMessage(m Message) map[string]any {
	blocks := m.Blocks
	if blocks == nil {
		blocks = json.RawMessage("[]")
	}
	out := map[string]any{
		"type": "message", "ts": m.TS, "text": m.Text, "blocks": blocks,
		"user": BotUserID, "bot_id": BotID,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	return out
}

func (s *Slack) apiUpdate(p params) (map[string]any, string, []string) {
	text, blocks, code, probs := s.messageTextAndBlocks("chat.update", p)
	if code != "" {
		return nil, code, probs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(p.str("channel"))
	m := s.findMessageLocked(ch, p.str("ts"))
	if m == nil || m.Ephemeral {
		// Ephemeral messages are not stored by Slack: chat.update cannot find them.
		return nil, "message_not_found", nil
	}
	hasText, hasBlocks := p.has("text"), blocks != nil
	if !hasText && !hasBlocks && !p.has("attachments") {
		return nil, "no_text", nil
	}
	if hasText {
		m.Text = text
	}
	if hasBlocks {
		m.Blocks = blocks
	} else if hasText {
		m.Blocks = nil // text without blocks removes the blocks
	}
	if md := p.raw("metadata"); md != nil {
		m.Metadata = md
	}
	m.Edits++
	s.notifyLocked()
	return map[string]any{"channel": ch, "ts": m.TS, "text": m.Text, "message": wireMessage(m.Message)}, "", nil
}

func (s *Slack) apiDelete(p params) (map[string]any, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelForLocked(p.str("channel"))
	m := s.findMessageLocked(ch, p.str("ts"))
	if m == nil || m.Ephemeral {
		return nil, "message_not_found", nil
	}
	m.deleted = true
	s.notifyLocked()
	return map[string]any{"channel": ch, "ts": m.TS}, "", nil
}

func (s *Slack) apiConversationsOpen(p params) (map[string]any, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := p.str("channel"); ch != "" {
		return map[string]any{"channel": map[string]any{"id": ch}, "already_open": true}, "", nil
	}
	users := strings.Split(p.str("users"), ",")
	if len(users) != 1 || users[0] == "" {
		// Multi-person DMs are not modelled.
		return nil, "users_list_not_supplied", nil
	}
	u := strings.TrimSpace(users[0])
	if existing, ok := s.users[u]; ok && existing.Deleted {
		return nil, "user_disabled", nil
	}
	_, already := s.dms[u]
	id := s.dmLocked(u)
	s.notifyLocked()
	return map[string]any{
		"channel":      map[string]any{"id": id, "is_im": true, "user": u},
		"already_open": already,
	}, "", nil
}

func (s *Slack) wireUser(u User) map[string]any {
	return map[string]any{
		"id": u.ID, "team_id": s.opts.TeamID, "name": u.Name, "deleted": u.Deleted,
		"real_name": u.RealName, "is_bot": u.IsBot,
		"profile": map[string]any{
			"email": u.Email, "real_name": u.RealName, "display_name": u.Name,
		},
	}
}

func (s *Slack) apiUsersInfo(p params) (map[string]any, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[p.str("user")]
	if !ok {
		return nil, "user_not_found", nil
	}
	return map[string]any{"user": s.wireUser(u)}, "", nil
}

func (s *Slack) apiLookupByEmail(p params) (map[string]any, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	email := p.str("email")
	for _, u := range s.users {
		if email != "" && strings.EqualFold(u.Email, email) {
			return map[string]any{"user": s.wireUser(u)}, "", nil
		}
	}
	return nil, "users_not_found", nil
}

func (s *Slack) apiUsergroupUsers(p params) (map[string]any, string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.groups[p.str("usergroup")]
	if !ok {
		return nil, "no_such_subteam", nil
	}
	if members == nil {
		members = []string{}
	}
	return map[string]any{"users": members}, "", nil
}
