package slackfake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"
)

// Start runs a fake Slack outside a test, for `warden playground`: it
// listens on 127.0.0.1 (a free port) until Close. report receives every
// broken Slack rule the fake would fail a test for (nil: they are dropped).
func Start(opts Options, report func(problem string)) (*Slack, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slackfake: listen: %w", err)
	}
	s := newSlack(opts, report)
	s.srv = &httptest.Server{
		Listener: ln,
		Config:   &http.Server{Handler: s.mux(), ReadHeaderTimeout: 5 * time.Second},
	}
	s.srv.Start()
	s.start()
	return s, nil
}

// Close closes every socket and stops the server. It is safe to call more
// than once; New's cleanup calls it too.
func (s *Slack) Close() { s.close() }

// Changed returns a channel that is closed at the fake's next state change
// (a message, a reply, an ack, a view, a Web API call…). Take it before
// reading the state, then wait on it: no change can slip between the two.
func (s *Slack) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Ephemeral is one reply shown only to the person who typed a command or
// clicked a button: a response_url post or a slash command's ack payload,
// as last replaced. Ephemeral messages posted with chat.postEphemeral are
// in Messages instead.
type Ephemeral struct {
	// EnvelopeID is the interaction whose reply this is.
	EnvelopeID string
	// Channel is where the person was when they typed or clicked.
	Channel, TS, Text string
	Blocks            json.RawMessage
}

// Ephemerals returns the ephemeral replies user can still see (not
// deleted), oldest first.
func (s *Slack) Ephemerals(user string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[*surface]bool{}
	var out []Ephemeral
	for _, env := range s.envOrder {
		if env.user != user {
			continue
		}
		for _, sf := range env.surfaces {
			if seen[sf] {
				continue
			}
			seen[sf] = true
			if !sf.deleted {
				out = append(out, Ephemeral{EnvelopeID: env.id, Channel: env.channel, TS: sf.ts, Text: sf.text, Blocks: sf.blocks})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Ephemeral) int { return cmp.Compare(tsKey(a.TS), tsKey(b.TS)) })
	return out
}

// tsKey orders the fake's timestamps, which all share one width-fixed
// fractional part but not always the same integer width.
func tsKey(ts string) string { return fmt.Sprintf("%024s", ts) }

// ClickEphemeralAt is ClickEphemeral for the ephemeral reply with timestamp
// ts (see Ephemerals), when several of user's replies carry the same
// action_id. It returns an error wrapping ErrNotFound if user has no such
// reply or it has no such element.
func (s *Slack) ClickEphemeralAt(user, ts, actionID, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.envOrder {
		if src.user != user {
			continue
		}
		for _, sf := range src.surfaces {
			if sf.ts != ts || sf.deleted {
				continue
			}
			blockID, el, ok := findAction(sf.blocks, actionID)
			if !ok {
				return "", fmt.Errorf("click %s: ephemeral reply %s has no element with that action_id: %w", actionID, ts, ErrNotFound)
			}
			return s.clickSurfaceLocked(user, src, sf, blockID, el, actionID, value), nil
		}
	}
	return "", fmt.Errorf("click %s: %s sees no ephemeral reply %s: %w", actionID, user, ts, ErrNotFound)
}

// CloseView is user closing an open modal with its close button (or the
// X): the modal and every view stacked with it close. Slack tells the app
// nothing unless the view asked for notify_on_close, which Warden's never do.
func (s *Slack) CloseView(user, viewID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.viewByID[viewID]
	if v == nil || !v.open || v.user != user {
		return fmt.Errorf("close view %s: %w", viewID, ErrNotFound)
	}
	for _, c := range s.views {
		if c.user == user && c.typ == "modal" && c.rootID == v.rootID {
			c.open = false
		}
	}
	s.notifyLocked()
	return nil
}
