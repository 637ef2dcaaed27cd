package intake

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/warden-sec/warden/sessions"
)

// genericEvent is one event in Warden's generic shape, documented in the
// package comment and README.md.
type genericEvent struct {
	ID        string `json:"id"`
	Provider  string `json:"provider"`
	Type      string `json:"type"`
	Email     string `json:"email"`
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Time      string `json:"time"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	Location  string `json:"location"`
	Country   string `json:"country"`
}

// genericBody is either {"events":[…]} or one event's fields at the top level.
type genericBody struct {
	Events *[]genericEvent `json:"events"`
	genericEvent
}

// decodeGeneric decodes and validates a generic-shape body. Every event is
// validated before any is returned; the first bad one fails the batch with a
// reason naming its index.
func decodeGeneric(body []byte, now time.Time) (batch, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var gb genericBody
	if err := dec.Decode(&gb); err != nil {
		return batch{}, jsonReason(err)
	}
	if err := expectEOF(dec); err != nil {
		return batch{}, err
	}
	var in []genericEvent
	switch {
	case gb.Events != nil && gb.genericEvent != (genericEvent{}):
		return batch{}, invalid("both events and top-level event fields")
	case gb.Events != nil:
		in = *gb.Events
	case gb.genericEvent == (genericEvent{}):
		return batch{}, invalid("no events")
	default:
		in = []genericEvent{gb.genericEvent}
	}
	out := make([]sessions.LoginEvent, 0, len(in))
	for i, g := range in {
		ev, err := g.toEvent(now)
		if err != nil {
			return batch{}, at("events", i, err)
		}
		out = append(out, ev)
	}
	return batch{events: out}, nil
}

func (g genericEvent) toEvent(now time.Time) (sessions.LoginEvent, error) {
	if g.Email == "" {
		return sessions.LoginEvent{}, invalid("missing email")
	}
	t, err := parseTime(g.Time)
	if err != nil {
		return sessions.LoginEvent{}, err
	}
	ev := sessions.LoginEvent{
		ID:        g.ID,
		Provider:  g.Provider,
		Type:      sessions.EventType(g.Type),
		Email:     g.Email,
		UserID:    g.UserID,
		SessionID: g.SessionID,
		Time:      t,
		IP:        g.IP,
		UserAgent: g.UserAgent,
		Location:  g.Location,
		Country:   g.Country,
	}
	if ev.Provider == "" {
		ev.Provider = SourceGeneric
	}
	if err := normalize(&ev, now); err != nil {
		return sessions.LoginEvent{}, err
	}
	return ev, nil
}
