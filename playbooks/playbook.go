// Package playbooks runs Warden's incident-response playbooks durably.
//
// A Playbook is data: a name and ordered steps (StepSpec). The Engine turns a
// StartRequest into a Run, saves it after every step transition in the same
// storage transaction as its audit record, and drives it: approvals with
// quorum, escalation and expiry; session and token revocation at every
// identity provider with verification; notifications through a Notifier. On
// start it resumes every unfinished run from the store.
//
// playbooks never sees a Slack type: people are Slack ids as strings, and the
// Notifier (implemented by bot) renders notices from the run's state.
package playbooks

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Step kinds.
const (
	KindApproval       = "approval"          // wait for approvers (quorum, escalation, expiry)
	KindRevokeSessions = "revoke_sessions"   // end sessions at every provider, then verify
	KindRevokeTokens   = "revoke_tokens"     // revoke OAuth tokens and grants where possible
	KindConfirmUser    = "confirm_with_user" // ask the subject "was this you?"
	KindNotifyUser     = "notify_user"       // tell the subject
	KindNotifyChannel  = "notify_channel"    // post to a channel (default: the security channel)
	KindWait           = "wait"              // pause for StepSpec.Wait
)

// kinds lists every step kind, sorted, for error messages.
var kinds = []string{KindApproval, KindConfirmUser, KindNotifyChannel, KindNotifyUser,
	KindRevokeSessions, KindRevokeTokens, KindWait}

// Scopes of a revoke_sessions step.
const (
	// ScopeRequest (the empty scope) takes the scope from the request:
	// ScopeListed when it names target sessions, ScopeAll otherwise.
	ScopeRequest = ""
	ScopeAll     = "all"    // every session at every provider
	ScopeListed  = "listed" // the request's target sessions
	// ScopeDevice ends the request's targets too: the caller lists every
	// session the device holds, across providers.
	ScopeDevice = "device"
)

// ApproverManager is the approver form naming the subject's manager.
const ApproverManager = "manager"

// Playbook is an ordered list of steps. It is plain data: the Engine
// interprets it, so a playbook can come from YAML.
type Playbook struct {
	Name        string
	Description string
	Steps       []StepSpec
}

// StepSpec says what one step does. Which fields apply depends on Kind
// (see Validate).
type StepSpec struct {
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
	// Approvers: "manager", "group:S…" (a Slack user group), "user:U…". Empty:
	// the engine's fallback approvers.
	Approvers     []string `json:"approvers,omitempty"`
	Quorum        int      `json:"quorum,omitempty"`         // distinct approvals needed; 0 means 1
	EscalateAfter Duration `json:"escalate_after,omitempty"` // approval: post to the security channel
	ExpireAfter   Duration `json:"expire_after,omitempty"`   // approval, confirm: the run expires
	Timeout       Duration `json:"timeout,omitempty"`        // confirm: escalate; revoke: per-provider deadline
	Wait          Duration `json:"wait,omitempty"`           // wait: how long
	Scope         string   `json:"scope,omitempty"`          // revoke_sessions: ""|all|listed|device
	Message       string   `json:"message,omitempty"`        // notify_*, confirm, approval: text to show
	Channel       string   `json:"channel,omitempty"`        // notify_channel: channel id; default security channel
}

// Duration is a time.Duration written as "30m", "4h", "1h30m" or "3d" in
// YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes d compactly: "4h", "1h30m", "90s" rather than "4h0m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration written by MarshalText or ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration reads a non-negative duration: a Go duration ("90s", "30m",
// "1h30m") or a whole number of days ("3d").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && !strings.ContainsAny(days, "hmsuµn.") {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 30m, 4h, 3d)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	return Duration(v), nil
}

// Errors of playbook validation.
var (
	// ErrInvalidPlaybook wraps every validation and decoding error.
	ErrInvalidPlaybook = errors.New("invalid playbook")
)

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	userRE    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	groupRE   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	channelRE = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
)

// fields lists the StepSpec fields (by YAML key) each kind accepts, besides
// kind and name.
var fields = map[string][]string{
	KindApproval:       {"approvers", "quorum", "escalate_after", "expire_after", "message"},
	KindRevokeSessions: {"scope", "timeout"},
	KindRevokeTokens:   {"timeout"},
	KindConfirmUser:    {"message", "timeout", "expire_after"},
	KindNotifyUser:     {"message"},
	KindNotifyChannel:  {"message", "channel"},
	KindWait:           {"wait"},
}

// fieldError is one problem with one field of a step; the YAML decoder adds
// the line of the field.
type fieldError struct {
	field string // YAML key; "" for the step as a whole
	index int    // element of a list field, -1 for none
	msg   string
}

// set reports which fields of s are not their zero value, by YAML key.
func (s StepSpec) set() map[string]bool {
	return map[string]bool{
		"approvers":      len(s.Approvers) > 0,
		"quorum":         s.Quorum != 0,
		"escalate_after": s.EscalateAfter != 0,
		"expire_after":   s.ExpireAfter != 0,
		"timeout":        s.Timeout != 0,
		"wait":           s.Wait != 0,
		"scope":          s.Scope != "",
		"message":        s.Message != "",
		"channel":        s.Channel != "",
	}
}

// check validates one step. quorumSet says an explicit quorum was written
// (so 0 is an error, not "default").
func (s StepSpec) check(quorumSet bool) []fieldError {
	var errs []fieldError
	add := func(field string, index int, format string, args ...any) {
		errs = append(errs, fieldError{field: field, index: index, msg: fmt.Sprintf(format, args...)})
	}
	allowed, ok := fields[s.Kind]
	if !ok {
		if s.Kind == "" {
			add("kind", -1, "step has no kind (want one of %s)", strings.Join(kinds, ", "))
		} else {
			add("kind", -1, "unknown step kind %q (want one of %s)", s.Kind, strings.Join(kinds, ", "))
		}
		return errs
	}
	set := s.set()
	if quorumSet {
		set["quorum"] = true
	}
	for _, f := range []string{"approvers", "quorum", "escalate_after", "expire_after", "timeout", "wait", "scope", "message", "channel"} {
		if set[f] && !contains(allowed, f) {
			add(f, -1, "%s does not apply to a %s step", f, s.Kind)
		}
	}
	switch s.Kind {
	case KindApproval:
		for i, a := range s.Approvers {
			if msg := checkApprover(a); msg != "" {
				add("approvers", i, "%s", msg)
			}
		}
		if s.Quorum < 0 || (quorumSet && s.Quorum == 0) {
			add("quorum", -1, "quorum must be at least 1, got %d", s.Quorum)
		}
		if s.EscalateAfter > 0 && s.ExpireAfter > 0 && s.ExpireAfter <= s.EscalateAfter {
			add("expire_after", -1, "expire_after (%v) must be longer than escalate_after (%v)", s.ExpireAfter, s.EscalateAfter)
		}
	case KindConfirmUser:
		if s.Timeout > 0 && s.ExpireAfter > 0 && s.ExpireAfter <= s.Timeout {
			add("expire_after", -1, "expire_after (%v) must be longer than timeout (%v)", s.ExpireAfter, s.Timeout)
		}
	case KindRevokeSessions:
		switch s.Scope {
		case ScopeRequest, ScopeAll, ScopeListed, ScopeDevice:
		default:
			add("scope", -1, "unknown scope %q (want all, listed or device)", s.Scope)
		}
	case KindNotifyChannel:
		if s.Channel != "" && !channelRE.MatchString(s.Channel) {
			add("channel", -1, "channel %q is not a Slack channel id (C… or G…)", s.Channel)
		}
	case KindWait:
		if s.Wait <= 0 {
			add("wait", -1, "a wait step needs a positive wait")
		}
	}
	for _, f := range []struct {
		key string
		d   Duration
	}{{"escalate_after", s.EscalateAfter}, {"expire_after", s.ExpireAfter}, {"timeout", s.Timeout}, {"wait", s.Wait}} {
		if f.d < 0 {
			add(f.key, -1, "%s must not be negative", f.key)
		}
	}
	return errs
}

// checkApprover returns what is wrong with an approver form, or "".
func checkApprover(a string) string {
	switch {
	case a == ApproverManager:
		return ""
	case strings.HasPrefix(a, "group:"):
		if groupRE.MatchString(strings.TrimPrefix(a, "group:")) {
			return ""
		}
		return fmt.Sprintf("approver %q: a group is a Slack user group id (group:S…)", a)
	case strings.HasPrefix(a, "user:"):
		if userRE.MatchString(strings.TrimPrefix(a, "user:")) {
			return ""
		}
		return fmt.Sprintf("approver %q: a user is a Slack user id (user:U…)", a)
	}
	return fmt.Sprintf("unknown approver %q (want manager, group:S… or user:U…)", a)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Validate reports every problem with p, wrapped in ErrInvalidPlaybook.
func (p Playbook) Validate() error {
	var errs []error
	if !nameRE.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("playbook name %q: want lowercase letters, digits, - and _", p.Name))
	}
	if len(p.Steps) == 0 {
		errs = append(errs, fmt.Errorf("playbook %q has no steps", p.Name))
	}
	for i, s := range p.Steps {
		for _, fe := range s.check(false) {
			errs = append(errs, fmt.Errorf("playbook %q step %d: %s", p.Name, i+1, fe.msg))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidPlaybook, errors.Join(errs...))
	}
	return nil
}

// needsTargets reports whether p has a step that revokes the request's
// listed sessions and cannot run without them.
func (p Playbook) needsTargets() bool {
	for _, s := range p.Steps {
		if s.Kind == KindRevokeSessions && (s.Scope == ScopeListed || s.Scope == ScopeDevice) {
			return true
		}
	}
	return false
}

// needsEmail reports whether p asks identity providers about the subject.
func (p Playbook) needsEmail() bool {
	for _, s := range p.Steps {
		switch s.Kind {
		case KindRevokeSessions, KindRevokeTokens:
			return true
		case KindApproval:
			if len(s.Approvers) == 0 || contains(s.Approvers, ApproverManager) {
				return true
			}
		}
	}
	return false
}

// Built-in playbook names.
const (
	PlaybookRevoke        = "revoke"
	PlaybookUnknownDevice = "unknown-device"
	PlaybookOffboarding   = "contractor-offboarding"
	PlaybookLostDevice    = "lost-device"
	// PlaybookNewDevice asks the person about a device Warden has not seen
	// ("was this you?") and, on "not me", does what unknown-device does.
	PlaybookNewDevice = "new-device"
	// PlaybookSlackSession alerts security about a new Slack session without
	// asking over Slack, which the intruder may be reading.
	PlaybookSlackSession = "new-slack-session"
)

// Builtins returns the playbooks compiled into Warden. The caller owns the
// map. A YAML file may add to them or replace one by name (LoadFile).
func Builtins() map[string]Playbook {
	list := []Playbook{
		{
			Name:        PlaybookRevoke,
			Description: "A responder ends a person's sessions: the listed ones, or all of them.",
			Steps: []StepSpec{
				{Kind: KindRevokeSessions, Name: "revoke sessions", Scope: ScopeRequest},
				{Kind: KindNotifyUser, Name: "tell the user"},
			},
		},
		{
			Name:        PlaybookUnknownDevice,
			Description: "The user said a session was not theirs: end it, then everything, and alert security.",
			Steps: []StepSpec{
				{Kind: KindRevokeSessions, Name: "end the suspicious session", Scope: ScopeListed},
				{Kind: KindRevokeSessions, Name: "end every session", Scope: ScopeAll},
				{Kind: KindNotifyChannel, Name: "alert security",
					Message: "A user reported a session that was not theirs. Every session was ended; the evidence is in the run."},
				{Kind: KindNotifyUser, Name: "tell the user what to do next",
					Message: "We ended the session you did not recognise and signed you out everywhere. Change your password and review your MFA devices now."},
			},
		},
		{
			Name:        PlaybookOffboarding,
			Description: "A contractor leaves: their manager approves, then every session and token is revoked.",
			Steps: []StepSpec{
				{Kind: KindApproval, Name: "manager approval", Approvers: []string{ApproverManager}, Quorum: 1,
					EscalateAfter: Duration(4 * time.Hour), ExpireAfter: Duration(72 * time.Hour)},
				{Kind: KindRevokeSessions, Name: "end every session", Scope: ScopeAll},
				{Kind: KindRevokeTokens, Name: "revoke tokens and grants"},
				{Kind: KindNotifyUser, Name: "tell the user"},
				{Kind: KindNotifyChannel, Name: "tell security"},
			},
		},
		{
			Name:        PlaybookNewDevice,
			Description: "A new device signed in: ask the person, and act at once on \"not me\".",
			Steps: []StepSpec{
				{Kind: KindConfirmUser, Name: "ask the user", Timeout: Duration(30 * time.Minute), ExpireAfter: Duration(24 * time.Hour)},
				{Kind: KindRevokeSessions, Name: "end the suspicious session", Scope: ScopeListed},
				{Kind: KindRevokeSessions, Name: "end every session", Scope: ScopeAll},
				{Kind: KindNotifyChannel, Name: "alert security",
					Message: "A user said a new sign-in was not theirs. Warden ended it and every other session; the evidence is below."},
				{Kind: KindNotifyUser, Name: "tell the user what to do next",
					Message: "We ended the session you did not recognise and signed you out everywhere. Change your password now, and check your MFA devices and recovery email for anything you did not add."},
			},
		},
		{
			Name:        PlaybookSlackSession,
			Description: "A new device that cannot be confirmed over Slack: alert security instead of asking.",
			Steps: []StepSpec{
				{Kind: KindNotifyChannel, Name: "alert security",
					Message: "New device for this person, and Warden will not ask them about it over Slack: they have no Slack account Warden can find, or the new session is a Slack session (whoever holds it could answer), or it is at a provider Warden is not connected to. Check with them another way; /sessions revoke @user all ends what Warden can end."},
			},
		},
		{
			Name:        PlaybookLostDevice,
			Description: "A device was lost: end every session it holds.",
			Steps: []StepSpec{
				{Kind: KindRevokeSessions, Name: "end the device's sessions", Scope: ScopeDevice},
				{Kind: KindNotifyUser, Name: "tell the user"},
			},
		},
	}
	out := make(map[string]Playbook, len(list))
	for _, p := range list {
		out[p.Name] = p
	}
	return out
}
