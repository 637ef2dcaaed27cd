package intake

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/okta"
)

// Okta Event Hooks (https://developer.okta.com/docs/concepts/event-hooks/).
//
// Okta first sends a one-time GET carrying X-Okta-Verification-Challenge and
// expects {"verification": "<that value>"}. Then it POSTs
// {"eventType":"com.okta.event_hook", …, "data":{"events":[LogEvent, …]}},
// each element a System Log LogEvent. Okta waits 3 s, retries at most once,
// and never retries a 4xx. Every request carries the Authorization header
// value configured on the hook.

// oktaTypes maps the Okta event types Warden tracks. Only events whose
// outcome.result is SUCCESS count; the rest are ignored.
var oktaTypes = map[string]sessions.EventType{
	"user.session.start":                  sessions.EventLogin,
	"user.mfa.factor.activate":            sessions.EventMFAAdded,
	"user.account.update_password":        sessions.EventPasswordChanged,
	"user.account.reset_password":         sessions.EventPasswordChanged,
	"user.account.update_primary_email":   sessions.EventRecoveryChanged, // password resets go to it
	"user.account.update_secondary_email": sessions.EventRecoveryChanged,
}

type oktaHookBody struct {
	Data *struct {
		Events *[]json.RawMessage `json:"events"`
	} `json:"data"`
}

// oktaKind is read first, so that an event Warden ignores is never decoded
// further and cannot fail the batch.
type oktaKind struct {
	EventType string `json:"eventType"`
	Outcome   struct {
		Result string `json:"result"`
	} `json:"outcome"`
}

type oktaActor struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId"`
}

// oktaLogEvent is the part of a System Log LogEvent Warden reads. The client
// and authentication context are the connector's types; published stays a
// string so that parseTime can refuse anything but RFC 3339.
type oktaLogEvent struct {
	UUID                  string              `json:"uuid"`
	Published             string              `json:"published"`
	Actor                 oktaActor           `json:"actor"`
	Target                []oktaActor         `json:"target"`
	Client                okta.LogClient      `json:"client"`
	AuthenticationContext okta.LogAuthContext `json:"authenticationContext"`
}

// decodeOkta decodes and validates an Event Hook delivery. Events of other
// types, or whose outcome is not SUCCESS, are counted as ignored. Every
// tracked event is validated before any is returned.
func decodeOkta(body []byte, now time.Time) (batch, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var hb oktaHookBody
	if err := dec.Decode(&hb); err != nil {
		return batch{}, jsonReason(err)
	}
	if err := expectEOF(dec); err != nil {
		return batch{}, err
	}
	if hb.Data == nil || hb.Data.Events == nil {
		return batch{}, invalid("missing data.events")
	}
	var b batch
	for i, raw := range *hb.Data.Events {
		var k oktaKind
		if err := json.Unmarshal(raw, &k); err != nil {
			return batch{}, at("data.events", i, jsonReason(err))
		}
		typ, ok := oktaTypes[k.EventType]
		if !ok || !strings.EqualFold(k.Outcome.Result, "SUCCESS") {
			b.ignored++
			continue
		}
		var e oktaLogEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			return batch{}, at("data.events", i, jsonReason(err))
		}
		ev, err := e.toEvent(typ, now)
		if err != nil {
			return batch{}, at("data.events", i, err)
		}
		b.events = append(b.events, ev)
	}
	return b, nil
}

func (e *oktaLogEvent) toEvent(typ sessions.EventType, now time.Time) (sessions.LoginEvent, error) {
	t, err := parseTime(e.Published)
	if err != nil {
		return sessions.LoginEvent{}, err
	}
	// The person the event is about: the actor signs in, but an admin may be
	// the actor of a password reset or factor enrolment, with the user as the
	// target.
	who := e.Actor
	if typ != sessions.EventLogin {
		for _, tg := range e.Target {
			if tg.Type == "User" {
				who = tg
				break
			}
		}
	}
	// Okta's own OS and browser names are capped like every Device field.
	c := e.Client
	c.UserAgent.OS, c.UserAgent.Browser = capField(c.UserAgent.OS), capField(c.UserAgent.Browser)
	ev := sessions.LoginEvent{
		ID:        e.UUID,
		Provider:  SourceOkta,
		Type:      typ,
		Email:     who.AlternateID,
		UserID:    who.ID,
		SessionID: e.AuthenticationContext.ExternalSessionID,
		Time:      t,
		IP:        c.IPAddress,
		UserAgent: c.UserAgent.RawUserAgent,
		Location:  c.Location(),
		Country:   countryCode(c.GeographicalContext.Country),
		Device:    c.Device(),
	}
	if err := normalize(&ev, now); err != nil {
		return sessions.LoginEvent{}, err
	}
	return ev, nil
}
