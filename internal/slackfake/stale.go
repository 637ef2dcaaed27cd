package slackfake

import (
	"fmt"

	"github.com/google/uuid"
)

// ClickStale pushes a block_actions envelope for user clicking actionID on
// the message as snapshot shows it: a client that has not yet received an
// update (or a double click racing one). The message must still exist; its
// current blocks need not contain the button any more.
func (s *Slack) ClickStale(user string, snapshot Message, actionID, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findMessageLocked(snapshot.Channel, snapshot.TS)
	if m == nil {
		return "", fmt.Errorf("click %s: message %s/%s: %w", actionID, snapshot.Channel, snapshot.TS, ErrNotFound)
	}
	if m.Ephemeral && m.User != user {
		return "", fmt.Errorf("click %s: ephemeral message is shown only to %s: %w", actionID, m.User, ErrNotFound)
	}
	blockID, el, ok := findAction(snapshot.Blocks, actionID)
	if !ok {
		return "", fmt.Errorf("click %s: no element with that action_id in the snapshot: %w", actionID, ErrNotFound)
	}
	env := &envelope{
		id: uuid.NewString(), typ: "interactive", subtype: "block_actions",
		user: user, channel: snapshot.Channel, responseURL: true,
		originChannel: snapshot.Channel, originTS: snapshot.TS,
	}
	p := s.blockActionsLocked(env, user, snapshot.Channel, snapshot.TS, m.Ephemeral, blockID, el, actionID, value)
	if !m.Ephemeral {
		p["message"] = wireMessage(snapshot)
	}
	env.payload = mustJSON(p)
	s.enqueueLocked(env)
	return env.id, nil
}
