package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-sec/warden/sessions"
)

// Auth0 log streams, custom webhook
// (https://auth0.com/docs/customize/log-streams/custom-log-streams).
//
// Auth0 POSTs tenant log events, each {"log_id": "…", "data": {<log event>}},
// in the stream's content format: a JSON array (JSONARRAY, recommended),
// one object per line (JSONLINES) or a single object (JSONOBJECT); all three
// are accepted. The Authorization header carries the stream's "Authorization
// Token" verbatim. Event type codes:
// https://auth0.com/docs/deploy-monitor/logs/log-event-type-codes

// auth0Types maps the Auth0 log event type codes Warden tracks.
var auth0Types = map[string]sessions.EventType{
	"s":                      sessions.EventLogin,           // Success Login
	"scoa":                   sessions.EventLogin,           // Success cross-origin authentication
	"sens":                   sessions.EventLogin,           // Success native social login
	"gd_enrollment_complete": sessions.EventMFAAdded,        // MFA factor enrolled
	"scp":                    sessions.EventPasswordChanged, // Success Change Password
	"sce":                    sessions.EventRecoveryChanged, // Success Change Email
	"scpn":                   sessions.EventRecoveryChanged, // Success Change Phone Number
}

type auth0Item struct {
	LogID string          `json:"log_id"`
	Data  json.RawMessage `json:"data"`
}

// auth0Kind is read first, so that a record Warden ignores is never decoded
// further and cannot fail the batch.
type auth0Kind struct {
	Type string `json:"type"`
}

// auth0LogRecord is the part of an Auth0 tenant log event Warden reads.
type auth0LogRecord struct {
	LogID     string `json:"log_id"`
	Date      string `json:"date"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	UserID    string `json:"user_id"`
	UserName  string `json:"user_name"`
	// Details is an object per Auth0's schema; it is read leniently so one
	// odd record cannot stall the stream.
	Details      json.RawMessage `json:"details"`
	LocationInfo *struct {
		CityName    string `json:"city_name"`
		CountryCode string `json:"country_code"`
		CountryName string `json:"country_name"`
	} `json:"location_info"`
}

// decodeAuth0 decodes and validates a log stream delivery. Records of other
// types are counted as ignored. Every tracked record is validated before any
// is returned.
func decodeAuth0(body []byte, now time.Time) (batch, error) {
	items, err := auth0Items(body)
	if err != nil {
		return batch{}, err
	}
	var b batch
	for i, it := range items {
		if len(it.Data) == 0 || string(it.Data) == "null" {
			return batch{}, at("logs", i, invalid("missing data"))
		}
		var k auth0Kind
		if err := json.Unmarshal(it.Data, &k); err != nil {
			return batch{}, at("logs", i, jsonReason(err))
		}
		typ, ok := auth0Types[k.Type]
		if !ok {
			b.ignored++
			continue
		}
		var rec auth0LogRecord
		if err := json.Unmarshal(it.Data, &rec); err != nil {
			return batch{}, at("logs", i, jsonReason(err))
		}
		ev, err := rec.toEvent(it.LogID, typ, now)
		if err != nil {
			return batch{}, at("logs", i, err)
		}
		b.events = append(b.events, ev)
	}
	return b, nil
}

// auth0Items reads a JSON array of items, or a sequence of item objects.
func auth0Items(body []byte) ([]auth0Item, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, invalid("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if trimmed[0] == '[' {
		var items []auth0Item
		if err := dec.Decode(&items); err != nil {
			return nil, jsonReason(err)
		}
		if err := expectEOF(dec); err != nil {
			return nil, err
		}
		return items, nil
	}
	var items []auth0Item
	for {
		var it auth0Item
		err := dec.Decode(&it)
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return nil, jsonReason(err)
		}
		items = append(items, it)
	}
}

func (d *auth0LogRecord) toEvent(logID string, typ sessions.EventType, now time.Time) (sessions.LoginEvent, error) {
	t, err := parseTime(d.Date)
	if err != nil {
		return sessions.LoginEvent{}, err
	}
	var details struct {
		SessionID string `json:"session_id"`
	}
	if len(d.Details) > 0 && d.Details[0] == '{' {
		_ = json.Unmarshal(d.Details, &details) // best effort: only the session id is read
	}
	ev := sessions.LoginEvent{
		ID:        logID,
		Provider:  SourceAuth0,
		Type:      typ,
		Email:     d.UserName,
		UserID:    d.UserID,
		SessionID: details.SessionID,
		Time:      t,
		IP:        d.IP,
		UserAgent: d.UserAgent,
	}
	if ev.ID == "" {
		ev.ID = d.LogID
	}
	if li := d.LocationInfo; li != nil {
		ev.Country = countryCode(li.CountryCode)
		ev.Location = joinNonEmpty(", ", li.CityName, ev.Country)
		if ev.Country == "" {
			ev.Location = joinNonEmpty(", ", li.CityName, li.CountryName)
		}
	}
	ev.Device = sessions.ParseUserAgent(ev.UserAgent)
	if ev.Device == (sessions.Device{}) || ev.Device.OS == "" && ev.Device.Browser == "" {
		if dev, ok := parseAuth0UA(ev.UserAgent); ok {
			ev.Device = dev
		}
	}
	if err := normalize(&ev, now); err != nil {
		return sessions.LoginEvent{}, err
	}
	return ev, nil
}

// parseAuth0UA reads the summarised user agent Auth0 writes into its logs,
// "Chrome 120.0.0 / Mac OS X 10.15.7", into a browser and an OS with their
// major versions.
func parseAuth0UA(ua string) (sessions.Device, bool) {
	browser, os, ok := strings.Cut(ua, " / ")
	if !ok || strings.ContainsAny(ua, "()") {
		return sessions.Device{}, false
	}
	var d sessions.Device
	d.Browser = capField(majorOnly(browser))
	name, ver := splitVersion(os)
	switch {
	case name == "Mac OS X" || name == "macOS":
		d.OS = "macOS"
	case name == "Windows" && (ver == "0" || ver == ""):
		d.OS = "Windows"
	case name == "iOS" || name == "Android":
		d.Mobile = true
		d.OS = majorOnly(os)
	default:
		d.OS = majorOnly(os)
	}
	d.OS = capField(d.OS)
	return d, d.Browser != "" || d.OS != ""
}

// splitVersion splits "Mac OS X 10.15.7" into "Mac OS X" and "10".
func splitVersion(s string) (name, major string) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, ' ')
	if i < 0 || s[i+1:] == "" || s[i+1] < '0' || s[i+1] > '9' {
		return s, ""
	}
	major, _, _ = strings.Cut(s[i+1:], ".")
	return s[:i], major
}

// majorOnly turns "Chrome 120.0.0" into "Chrome 120", and drops a 0 version.
func majorOnly(s string) string {
	name, major := splitVersion(s)
	if major == "" || major == "0" {
		return name
	}
	return name + " " + major
}

// capField keeps a Device field printable and at most 64 characters, like
// sessions.ParseUserAgent does.
func capField(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64])
	}
	return s
}
