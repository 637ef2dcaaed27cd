// Package commands turns what people type and click into Warden's actions:
// it parses /sessions, decides who may do what, calls the core, and describes
// the answer in the neutral message model of reply.go. It never sees a Slack
// type; bot transports its requests and replies.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// Directory maps Slack users to people. bot implements it with users.info,
// users.lookupByEmail and usergroups.users.list, cached briefly.
type Directory interface {
	UserEmail(ctx context.Context, userID string) (string, error)
	UserByEmail(ctx context.Context, email string) (string, error)
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// AuditLog is the part of storage that commands writes and reads.
type AuditLog interface {
	Append(ctx context.Context, recs ...storage.Record) ([]storage.Record, error)
	AuditBySubject(ctx context.Context, subject string, n int) ([]storage.Record, error)
	AuditSince(ctx context.Context, since time.Time, n int) ([]storage.Record, error)
}

// Config configures a Service. Directory and Audit are required.
type Config struct {
	Directory  Directory
	Audit      AuditLog
	Inventory  *sessions.Inventory // nil: no providers
	Engine     *playbooks.Engine   // nil: no playbooks (revoke, offboard, status answer "internal error")
	Devices    Devices             // nil: no new-device detection (the report has no inventory)
	Responders []string            // Slack user ids (U…, W…) and user-group ids (S…)
	StaleAfter time.Duration       // default 30 days
	Now        func() time.Time
	Logger     *slog.Logger
	Metrics    *Metrics // nil: no metrics
}

func (c *Config) validate() error {
	if c.Directory == nil {
		return errors.New("directory is required")
	}
	if c.Audit == nil {
		return errors.New("audit log is required")
	}
	for _, id := range c.Responders {
		if !responderRe.MatchString(id) {
			return fmt.Errorf("responder %q is not a Slack user or user-group id", shorten(id, 24))
		}
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 30 * 24 * time.Hour
	}
	if c.StaleAfter < 0 {
		return errors.New("stale-after must be positive")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

var responderRe = regexp.MustCompile(`^[UWS][A-Z0-9]{2,20}$`)

// Service handles commands, clicks and modal submissions.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("commands config: %w", err)
	}
	return &Service{cfg: cfg, log: cfg.Logger}, nil
}

// Timeouts for one interaction.
const (
	commandTimeout = 30 * time.Second
)

// Command answers one /sessions command. It always returns a reply; errors
// become short, fixed texts (errors.go) and details go to the log.
func (s *Service) Command(ctx context.Context, r Request) (reply Reply) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd, perr := Parse(r.Text)
	verb := cmd.Verb
	if perr != nil {
		verb = "invalid"
	}
	defer func() { s.cfg.Metrics.command(verb, perr, reply) }()
	rec := storage.Record{
		Actor:   r.Actor,
		Action:  "command." + verb,
		Outcome: "received",
		Details: map[string]string{"text": redact(shorten(r.Text, 300))},
	}
	if len(cmd.Users) > 0 {
		rec.Subject = cmd.Users[0].String()
	}
	if _, err := s.cfg.Audit.Append(ctx, rec); err != nil {
		// Nothing happens that the audit trail cannot show.
		s.log.ErrorContext(ctx, "audit command", "err", err, logUser, r.Actor)
		return errorReply(kindInternal)
	}
	if perr != nil {
		return Reply{Text: perr.Error()}
	}
	switch cmd.Verb {
	case VerbHelp:
		return helpReply()
	case VerbMine:
		return s.mine(ctx, r.Actor)
	case VerbList:
		return s.list(ctx, r.Actor, cmd.Users[0])
	case VerbAudit:
		return s.auditTrail(ctx, r.Actor, cmd.Users[0])
	case VerbRevoke:
		return s.revoke(ctx, r.Actor, r.Channel, cmd)
	case VerbOffboard:
		return s.offboard(ctx, r.Actor, cmd)
	case VerbStatus:
		return s.status(ctx, r.Actor, cmd.RunID)
	case VerbReport:
		return s.report(ctx, r.Actor)
	default:
		return Reply{Text: fmt.Sprintf("/sessions %s is not available yet.", cmd.Verb)}
	}
}

// Action answers a button click. The value is untrusted: state is re-read
// and authorization re-checked here.
func (s *Service) Action(ctx context.Context, a Action) Reply {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	switch a.ActionID {
	case ActRevokeSession:
		return s.revokeOne(ctx, a)
	case ActApprove:
		return s.decide(ctx, a, true)
	case ActDeny:
		return s.decide(ctx, a, false)
	case ActRetry:
		return s.retry(ctx, a)
	case ActDeviceYes:
		return s.confirm(ctx, a, true)
	case ActDeviceNo:
		return s.confirm(ctx, a, false)
	default:
		s.log.WarnContext(ctx, "unknown action", "action_id", shorten(a.ActionID, 40), logUser, a.Actor)
		return errorReply(kindUnknownAction)
	}
}

// Submit answers a modal submission.
func (s *Service) Submit(ctx context.Context, sub Submission) SubmitResult {
	if sub.CallbackID == CallbackDeny {
		return s.denySubmitted(ctx, sub)
	}
	s.log.WarnContext(ctx, "unknown modal", "callback_id", shorten(sub.CallbackID, 40), logUser, sub.Actor)
	r := errorReply(kindUnknownAction)
	return SubmitResult{Reply: &r}
}

// Log keys.
const (
	logUser     = "slack_user"
	logProvider = "provider"
	logRunID    = "run_id"
)

// isResponder reports whether userID may act on other people: listed
// directly, or a member of a listed user group.
func (s *Service) isResponder(ctx context.Context, userID string) (bool, error) {
	var groups []string
	for _, id := range s.cfg.Responders {
		if id == userID {
			return true, nil
		}
		if strings.HasPrefix(id, "S") {
			groups = append(groups, id)
		}
	}
	for _, g := range groups {
		members, err := s.cfg.Directory.GroupMembers(ctx, g)
		if err != nil {
			return false, fmt.Errorf("group members: %w", err)
		}
		for _, m := range members {
			if m == userID {
				return true, nil
			}
		}
	}
	return false, nil
}

// requireResponder audits and answers a refusal when actor is not a responder.
// It returns ok=false with the reply to send in that case.
func (s *Service) requireResponder(ctx context.Context, actor, verb, subject string) (Reply, bool) {
	ok, err := s.isResponder(ctx, actor)
	if err != nil {
		s.log.ErrorContext(ctx, "check responder", "err", err, logUser, actor)
		return errorReply(kindInternal), false
	}
	if ok {
		return Reply{}, true
	}
	if _, err := s.cfg.Audit.Append(ctx, storage.Record{
		Actor: actor, Action: "command." + verb, Subject: subject, Outcome: "refused",
		Details: map[string]string{"reason": "not a responder"},
	}); err != nil {
		s.log.ErrorContext(ctx, "audit refusal", "err", err, logUser, actor)
	}
	return errorReply(kindNotResponder), false
}

// person is a resolved subject: a Slack id when known and an email.
type person struct {
	SlackID string
	Email   string
}

func (p person) subject() string {
	if p.SlackID != "" {
		return p.SlackID
	}
	return p.Email
}

// resolve maps a typed reference to a person.
func (s *Service) resolve(ctx context.Context, u UserRef) (person, error) {
	if u.ID != "" {
		email, err := s.cfg.Directory.UserEmail(ctx, u.ID)
		if err != nil {
			return person{}, fmt.Errorf("user email: %w", err)
		}
		if email == "" {
			return person{}, errNoEmail
		}
		return person{SlackID: u.ID, Email: strings.ToLower(email)}, nil
	}
	id, err := s.cfg.Directory.UserByEmail(ctx, u.Email)
	if err != nil {
		// An email with no Slack account can still have sessions elsewhere.
		s.log.DebugContext(ctx, "no slack user for email", "err", err)
		id = ""
	}
	return person{SlackID: id, Email: u.Email}, nil
}

var errNoEmail = errors.New("slack profile has no email")

// redact removes anything that looks like a credential from text that will
// be stored or logged.
var secretRe = regexp.MustCompile(`(?i)(xox[a-z]-|xapp-|ory_st_|ory_at_|ory_ht_|ssws\s+|bearer\s+|eyJ)[A-Za-z0-9._~+/=-]{4,}`)

func redact(s string) string {
	return secretRe.ReplaceAllString(s, "[redacted]")
}
