package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// socket is one Socket Mode WebSocket.
type socket struct {
	id   int
	conn *websocket.Conn
	wmu  sync.Mutex // one writer of data frames at a time
	done chan struct{}

	// Guarded by Slack.mu.
	hello    bool // hello was written: envelopes may follow
	draining bool // a disconnect was sent: no more envelopes
	closed   bool
}

func (c *socket) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("marshal frame: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(socketWriteTimeout)); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// envelope is one slash_commands or interactive request for the app.
type envelope struct {
	id              string
	typ             string // slash_commands or interactive
	subtype         string // block_actions or view_submission for interactive
	payload         json.RawMessage
	acceptsResponse bool
	user, channel   string
	responseURL     bool     // has a response_url served at /response/<id>
	trigger         *trigger // the payload's trigger_id

	delivered bool
	sent      time.Time
	sentOn    int
	acked     bool
	timer     *time.Timer

	respUses  int
	responses []Response
	// surfaces are the ephemeral messages this envelope's replies produced.
	surfaces []*surface
	// What the interaction came from: a channel message or an ephemeral surface.
	originChannel, originTS string
	originSurface           *surface
	viewID                  string // the submitted view, for view_submission
}

// surface is an ephemeral message shown to one user (a response_url reply
// or an ack payload), which ClickEphemeral can click.
type surface struct {
	ts, text string
	blocks   json.RawMessage
	deleted  bool
}

func (e *envelope) frame() map[string]any {
	return map[string]any{
		"envelope_id":              e.id,
		"type":                     e.typ,
		"payload":                  e.payload,
		"accepts_response_payload": e.acceptsResponse,
		"retry_attempt":            0,
		"retry_reason":             "",
	}
}

// enqueueLocked queues env for delivery. Call with s.mu held.
func (s *Slack) enqueueLocked(env *envelope) {
	s.envs[env.id] = env
	s.envOrder = append(s.envOrder, env)
	s.queue = append(s.queue, env)
	s.notifyLocked()
	s.kickDispatch()
}

func (s *Slack) kickDispatch() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// dispatch delivers queued envelopes, in order, round-robin over live sockets.
func (s *Slack) dispatch() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		for s.deliverOne() {
		}
	}
}

// deliverOne sends the head of the queue, if there is a live socket. It
// reports whether it made progress.
func (s *Slack) deliverOne() bool {
	s.mu.Lock()
	if s.closed || len(s.queue) == 0 {
		s.mu.Unlock()
		return false
	}
	live := s.liveLocked()
	if len(live) == 0 {
		s.mu.Unlock()
		return false
	}
	sock := live[s.rr%len(live)]
	s.rr++
	env := s.queue[0]
	s.queue = s.queue[1:]
	env.delivered = true
	env.sent = time.Now()
	env.sentOn = sock.id
	if env.trigger != nil {
		env.trigger.issued = env.sent // the trigger's clock starts at delivery
	}
	if !s.opts.AllowMissingAcks {
		env.timer = time.AfterFunc(s.opts.AckDeadline, func() { s.checkAcked(env) })
	}
	frame := env.frame()
	s.mu.Unlock()

	err := sock.write(frame)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if env.timer != nil {
			env.timer.Stop()
		}
		if !env.acked {
			env.delivered = false
			s.queue = append([]*envelope{env}, s.queue...)
		}
		s.removeSocketLocked(sock)
		return true
	}
	s.notifyLocked()
	return true
}

func (s *Slack) checkAcked(env *envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || env.acked || !env.delivered {
		return
	}
	s.fail("envelope %s (%s %s) was not acked within %v of delivery", env.id, env.typ, env.subtype, s.opts.AckDeadline)
}

// liveLocked returns the sockets envelopes may be delivered on.
func (s *Slack) liveLocked() []*socket {
	var live []*socket
	for _, sock := range s.sockets {
		if sock.hello && !sock.draining && !sock.closed {
			live = append(live, sock)
		}
	}
	return live
}

// removeSocketLocked closes sock without a close frame and forgets it.
func (s *Slack) removeSocketLocked(sock *socket) {
	if sock.closed {
		return
	}
	sock.closed = true
	close(sock.done)
	_ = sock.conn.Close()
	s.sockets = slices.DeleteFunc(s.sockets, func(c *socket) bool { return c == sock })
	s.notifyLocked()
}

// handleLink serves the WebSocket URL apps.connections.open hands out.
func (s *Slack) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	used, issued := s.tickets[ticket]
	if s.closed || !issued || used {
		s.rejectedDials++
		s.notifyLocked()
		s.mu.Unlock()
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	s.tickets[ticket] = true
	s.mu.Unlock()

	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	conn.SetReadLimit(socketReadLimit)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	open := 0
	for _, c := range s.sockets {
		if !c.draining && !c.closed {
			open++
		}
	}
	if open >= s.opts.MaxSockets {
		s.tooMany++
		s.notifyLocked()
		s.mu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(socketWriteTimeout))
		_ = conn.WriteJSON(map[string]any{"type": "disconnect", "reason": "too_many_websockets",
			"debug_info": map[string]any{"host": "slackfake"}})
		_ = conn.Close()
		return
	}
	s.opened++
	sock := &socket{id: s.opened, conn: conn, done: make(chan struct{})}
	s.sockets = append(s.sockets, sock)
	s.wg.Add(2) // reader (this goroutine) and pinger
	s.notifyLocked()
	s.mu.Unlock()
	defer s.wg.Done()

	go s.pinger(sock)

	s.mu.Lock()
	n := len(s.liveLocked()) + 1
	s.mu.Unlock()
	hello := map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info": map[string]any{
			"host": "slackfake", "build_number": 1, "approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": s.opts.AppID},
	}
	if err := sock.write(hello); err != nil {
		s.mu.Lock()
		s.removeSocketLocked(sock)
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	if !sock.closed {
		sock.hello = true
		s.notifyLocked()
	}
	s.mu.Unlock()
	s.kickDispatch()

	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			s.mu.Lock()
			s.removeSocketLocked(sock)
			s.mu.Unlock()
			return
		}
		s.handleAck(sock, data)
	}
}

func (s *Slack) pinger(sock *socket) {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-sock.done:
			return
		case <-tick.C:
			// WriteControl may run alongside the data writer.
			if err := sock.conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
				return
			}
		}
	}
}

// handleAck records one frame from the app and applies the ack's payload.
func (s *Slack) handleAck(sock *socket, data []byte) {
	now := time.Now()
	if len(data) >= maxAckBytes {
		s.fail("ack frame of %d bytes on socket %d is 20 KiB or more; Slack silently drops it", len(data), sock.id)
		return
	}
	var a struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		s.fail("socket %d: frame is not a JSON ack: %v", sock.id, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env := s.envs[a.EnvelopeID]
	switch {
	case env == nil || !env.delivered:
		s.fail("ack for unknown envelope_id %q on socket %d", a.EnvelopeID, sock.id)
		return
	case env.acked:
		s.fail("duplicate ack for envelope %s on socket %d", a.EnvelopeID, sock.id)
		return
	}
	env.acked = true
	if env.timer != nil {
		env.timer.Stop()
	}
	payload := a.Payload
	if string(payload) == "null" {
		payload = nil
	}
	s.acks = append(s.acks, Ack{
		EnvelopeID: env.id, Type: env.typ, Payload: payload,
		Sent: env.sent, Acked: now, Socket: sock.id, DeliveredOn: env.sentOn,
	})
	if late := now.Sub(env.sent); late > s.opts.AckDeadline {
		s.fail("envelope %s (%s %s) acked %v after delivery; the deadline is %v", env.id, env.typ, env.subtype, late, s.opts.AckDeadline)
	}
	switch {
	case len(payload) == 0 && env.subtype == "view_submission":
		s.applyViewResponseLocked(env, nil) // a plain ack closes the modal
	case len(payload) > 0:
		if !env.acceptsResponse {
			s.fail("envelope %s (%s %s) does not accept a response payload, but the ack carries one", env.id, env.typ, env.subtype)
		} else {
			s.applyAckPayloadLocked(env, payload)
		}
	}
	s.notifyLocked()
}

// applyAckPayloadLocked applies a slash command reply or a view_submission
// response_action carried by an ack.
func (s *Slack) applyAckPayloadLocked(env *envelope, payload json.RawMessage) {
	switch env.typ {
	case "slash_commands":
		var p struct {
			Text         string          `json:"text"`
			Blocks       json.RawMessage `json:"blocks"`
			ResponseType string          `json:"response_type"`
		}
		if err := json.Unmarshal(payload, &p); err != nil {
			s.fail("envelope %s: ack payload: %v", env.id, err)
			return
		}
		p.Blocks = normBlocks(p.Blocks)
		if code, probs := validateMessage(p.Text, p.Blocks); code != "" {
			s.fail("envelope %s: ack payload: %s: %s", env.id, code, joinProblems(probs))
			return
		}
		if p.Text == "" && p.Blocks == nil {
			return
		}
		if p.ResponseType == "in_channel" {
			s.appendMessageLocked(env.channel, p.Text, p.Blocks, "", false, "")
			return
		}
		env.surfaces = append(env.surfaces, &surface{ts: s.newTSLocked(), text: p.Text, blocks: p.Blocks})
	case "interactive":
		if env.subtype != "view_submission" {
			return
		}
		s.applyViewResponseLocked(env, payload)
	}
}

// Disconnect sends {"type":"disconnect","reason":reason} on every open
// socket (warning, refresh_requested, link_disabled, …). No further
// envelope goes to those sockets; they are queued for the next one.
func (s *Slack) Disconnect(reason string) {
	s.mu.Lock()
	var targets []*socket
	for _, sock := range s.sockets {
		if !sock.closed && !sock.draining {
			sock.draining = true
			targets = append(targets, sock)
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	for _, sock := range targets {
		_ = sock.write(map[string]any{
			"type": "disconnect", "reason": reason,
			"debug_info": map[string]any{"host": "slackfake"},
		})
	}
}

// DropSockets closes every socket at once without a close frame, as a
// network failure would.
func (s *Slack) DropSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sock := range slices.Clone(s.sockets) {
		s.removeSocketLocked(sock)
	}
}

// Connections is how many sockets can receive envelopes right now (hello
// sent, not told to disconnect, not closed).
func (s *Slack) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.liveLocked())
}

// AwaitConnections waits until Connections() == n.
func (s *Slack) AwaitConnections(ctx context.Context, n int) error {
	if err := s.Await(ctx, func() bool { return s.Connections() == n }); err != nil {
		return fmt.Errorf("await %d connections: %w", n, err)
	}
	return nil
}

// ConnectionsOpened is how many sockets were ever opened (upgraded with a
// valid ticket and under the socket limit).
func (s *Slack) ConnectionsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// RejectedDials is how many socket dials were refused for an unknown or
// reused ticket.
func (s *Slack) RejectedDials() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejectedDials
}

// TooManySockets is how many sockets were refused with too_many_websockets.
func (s *Slack) TooManySockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tooMany
}
