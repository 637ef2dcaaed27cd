package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// maxPerProvider bounds how many records one provider contributes to a
// message, so one noisy provider cannot push the others out of it.
const maxPerProvider = 12

// mine shows the caller's own sessions.
func (s *Service) mine(ctx context.Context, actor string) Reply {
	p, err := s.resolve(ctx, UserRef{ID: actor})
	if err != nil {
		return s.resolveError(ctx, err)
	}
	return s.inventoryReply(ctx, p, true)
}

// list shows a person's sessions to a responder.
func (s *Service) list(ctx context.Context, actor string, u UserRef) Reply {
	if r, ok := s.requireResponder(ctx, actor, VerbList, u.String()); !ok {
		return r
	}
	p, err := s.resolve(ctx, u)
	if err != nil {
		return s.resolveError(ctx, err)
	}
	return s.inventoryReply(ctx, p, p.SlackID == actor)
}

func (s *Service) resolveError(ctx context.Context, err error) Reply {
	if errors.Is(err, errNoEmail) {
		return errorReply(kindNoEmail)
	}
	s.log.ErrorContext(ctx, "resolve user", "err", err)
	return errorReply(kindInternal)
}

func (s *Service) inventoryReply(ctx context.Context, p person, own bool) Reply {
	if s.cfg.Inventory == nil {
		return Reply{Text: "No identity providers are configured (WARDEN_PROVIDERS)."}
	}
	res := s.cfg.Inventory.Lookup(ctx, p.Email)
	now := s.cfg.Now()
	var r Reply
	who := T(P("Sessions of "), U(p.SlackID))
	if p.SlackID == "" {
		who = T(P("Sessions of "), B(p.Email))
	}
	if own {
		who = T(P("Your sessions"))
	}
	total, stale, unmanaged := 0, 0, 0
	for _, pr := range res.Providers {
		total += len(pr.Sessions)
		for _, ss := range pr.Sessions {
			if sessions.IsStale(ss, now, s.cfg.StaleAfter) {
				stale++
			}
			if sessions.IsUnmanaged(ss) {
				unmanaged++
			}
		}
	}
	counts := fmt.Sprintf("%d %s across %d %s", total, plural(total, "record", "records"), len(res.Providers), plural(len(res.Providers), "provider", "providers"))
	r.Text = counts
	summary := append(who, P(" — "+counts))
	if stale > 0 {
		summary = append(summary, P(fmt.Sprintf(" · %d stale", stale)))
	}
	if unmanaged > 0 {
		summary = append(summary, P(fmt.Sprintf(" · %d on unmanaged devices", unmanaged)))
	}
	r.Blocks = append(r.Blocks, Block{Kind: Section, Text: summary})
	subject := p.subject()
	for _, pr := range res.Providers {
		r.Blocks = append(r.Blocks, Block{Kind: Divider})
		r.Blocks = append(r.Blocks, providerBlocks(pr, subject, now, s.cfg.StaleAfter)...)
	}
	return r
}

// providerBlocks describes one provider's answer.
func providerBlocks(pr sessions.ProviderResult, subject string, now time.Time, staleAfter time.Duration) []Block {
	name := displayName(pr.Provider)
	var head Text
	switch {
	case pr.Err != nil:
		return []Block{{Kind: Section, Text: T(B(name), P(": "+providerErrorText(pr.Err)))}}
	case !pr.Found:
		return []Block{{Kind: Section, Text: T(B(name), P(": no account there"))}}
	case len(pr.Sessions) == 0:
		head = T(B(name), P(": signed in nowhere"))
	default:
		head = T(B(name), P(fmt.Sprintf(": %d %s", len(pr.Sessions), plural(len(pr.Sessions), "record", "records"))))
	}
	blocks := []Block{{Kind: Section, Text: head}, {Kind: Context, Text: T(P(capabilityText(pr.Caps)))}}
	for i, ss := range pr.Sessions {
		if i == maxPerProvider {
			blocks = append(blocks, Block{Kind: Context, Text: T(P(fmt.Sprintf("…and %d more at %s", len(pr.Sessions)-i, name)))})
			break
		}
		b := Block{Kind: Section, Text: sessionText(ss, now, staleAfter)}
		if pr.Caps.RevokeOne && ss.Kind == sessions.KindSession && ss.Active {
			b.Accessory = &Button{
				Label:    "Revoke",
				ActionID: ActRevokeSession,
				Value:    revokeValue(subject, ss.Provider, ss.ID),
				Style:    Danger,
				Confirm: &Confirm{
					Title:  "Revoke this session?",
					Text:   fmt.Sprintf("This signs the device out of %s %s.", name, effectText(pr.Caps)),
					OK:     "Revoke",
					Cancel: "Keep it",
				},
			}
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// sessionText is one record: device, where, when, and flags.
func sessionText(ss sessions.Session, now time.Time, staleAfter time.Duration) Text {
	t := T(B(deviceLabel(ss)), P("  "), C(ss.Provider+":"+ss.ID))
	var parts []string
	if ss.Kind != sessions.KindSession {
		parts = append(parts, kindLabel[ss.Kind])
	}
	if ss.IP != "" {
		parts = append(parts, "IP "+ss.IP)
	}
	if ss.Location != "" {
		parts = append(parts, ss.Location)
	}
	switch {
	case !ss.LastActive.IsZero():
		parts = append(parts, "last active "+ago(now, ss.LastActive))
	case !ss.Created.IsZero():
		parts = append(parts, "started "+ago(now, ss.Created))
	}
	if ss.Managed == sessions.ManagedYes {
		parts = append(parts, "managed")
	}
	if !ss.Active && ss.Kind == sessions.KindSession {
		parts = append(parts, "revoked")
	}
	t = append(t, P("\n"+strings.Join(parts, " · ")))
	if sessions.IsUnmanaged(ss) {
		t = append(t, P(" · "), B("unmanaged device"))
	}
	if sessions.IsStale(ss, now, staleAfter) {
		t = append(t, P(" · "), B(fmt.Sprintf("stale (no activity for %d days)", int(staleAfter.Hours()/24))))
	}
	return t
}

var kindLabel = map[sessions.Kind]string{
	sessions.KindSession: "live session",
	sessions.KindSignIn:  "sign-in",
	sessions.KindDevice:  "registered device",
	sessions.KindToken:   "token or grant",
}

func deviceLabel(ss sessions.Session) string {
	var parts []string
	for _, p := range []string{ss.Device.Client, ss.Device.Browser, ss.Device.OS} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if ss.Client != "" && ss.Device.Client == "" {
		parts = append([]string{ss.Client}, parts...)
	}
	if len(parts) == 0 {
		if ss.UserAgent != "" {
			return shorten(ss.UserAgent, 60)
		}
		return "Unknown device"
	}
	return strings.Join(parts, " · ")
}

// capabilityText says honestly what a revoke does at a provider.
func capabilityText(c sessions.Capabilities) string {
	var parts []string
	switch {
	case c.ListSessions:
		parts = append(parts, "Lists live sessions.")
	case c.ListSignIns:
		parts = append(parts, "Cannot list live sessions; shows sign-in history.")
	default:
		parts = append(parts, "Cannot list live sessions.")
	}
	if !c.RevokeOne {
		parts = append(parts, "Cannot end a single session.")
	}
	if c.RevokeAll {
		parts = append(parts, "Revoke all takes effect "+strings.TrimPrefix(effectText(c), "taking effect ")+".")
		if c.Ends != "" {
			parts = append(parts, "It ends: "+c.Ends)
		}
		if c.Leaves != "" {
			parts = append(parts, "It does not end: "+c.Leaves)
		}
	}
	return strings.Join(parts, " ")
}

func effectText(c sessions.Capabilities) string {
	if c.EffectWithin <= 0 {
		return "immediately"
	}
	return "taking effect within " + roundDuration(c.EffectWithin)
}

func providerErrorText(err error) string {
	if te, ok := errors.AsType[*sessions.TimeoutError](err); ok {
		return te.Error()
	}
	switch {
	case errors.Is(err, sessions.ErrTimeout):
		return "timed out"
	case errors.Is(err, sessions.ErrUnauthorized):
		return "Warden's credentials were refused; ask an admin to check them"
	default:
		return "could not be reached; try again shortly"
	}
}

var providerNames = map[string]string{
	"demo": "Demo", "okta": "Okta", "google": "Google Workspace", "entra": "Microsoft Entra",
	"slack": "Slack", "auth0": "Auth0", "kratos": "Ory Kratos", "keycloak": "Keycloak",
}

func displayName(p string) string {
	if n, ok := providerNames[p]; ok {
		return n
	}
	return p
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	case d >= time.Minute:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	default:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

// revokeValue is a Revoke button's value: identifiers only.
func revokeValue(subject, provider, id string) string {
	return subject + "|" + provider + "|" + id
}

func parseRevokeValue(v string) (subject, provider, id string, ok bool) {
	parts := strings.SplitN(v, "|", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" || len(v) > 1000 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// revokeOne handles a Revoke button. Everything in the value is re-checked:
// the subject must be the clicker (or the clicker a responder), and the
// session must still belong to the subject at that provider.
func (s *Service) revokeOne(ctx context.Context, a Action) Reply {
	subject, provider, id, ok := parseRevokeValue(a.Value)
	if !ok || s.cfg.Inventory == nil {
		return errorReply(kindUnknownAction)
	}
	if subject != a.Actor {
		ok, err := s.isResponder(ctx, a.Actor)
		if err != nil {
			s.log.ErrorContext(ctx, "check responder", "err", err, logUser, a.Actor)
			return errorReply(kindInternal)
		}
		if !ok {
			s.audit(ctx, storage.Record{Actor: a.Actor, Action: "session.revoke", Subject: subject, Provider: provider,
				Outcome: "refused", Details: map[string]string{"reason": "not the session's owner nor a responder"}})
			return errorReply(kindNotYours)
		}
	}
	prov, found := s.cfg.Inventory.Provider(provider)
	if !found {
		return errorReply(kindUnknownAction)
	}
	var p person
	var err error
	if strings.Contains(subject, "@") {
		p, err = s.resolve(ctx, UserRef{Email: strings.ToLower(subject)})
	} else {
		p, err = s.resolve(ctx, UserRef{ID: subject})
	}
	if err != nil {
		return s.resolveError(ctx, err)
	}
	user, err := prov.FindUser(ctx, p.Email)
	if err != nil {
		if errors.Is(err, sessions.ErrNoAccount) {
			return errorReply(kindNoSuchSession)
		}
		s.log.ErrorContext(ctx, "find user", "err", err, logProvider, provider)
		return errorReply(kindInternal)
	}
	list, err := prov.ListSessions(ctx, user)
	if err != nil {
		s.log.ErrorContext(ctx, "list sessions", "err", err, logProvider, provider)
		return errorReply(kindInternal)
	}
	if !containsActive(list, id) {
		return errorReply(kindNoSuchSession)
	}
	if s.cfg.Engine == nil {
		return errorReply(kindInternal)
	}
	run, err := s.cfg.Engine.Start(ctx, playbooks.StartRequest{Playbook: playbooks.PlaybookRevoke, Requester: a.Actor,
		Subject: playbooks.Subject{SlackID: p.SlackID, Email: p.Email}, Reason: "Revoke button",
		Targets: []playbooks.Target{{Provider: provider, SessionID: id}}})
	if err != nil {
		return s.runError(ctx, err)
	}
	return Reply{Text: "Revoking that session.", Blocks: []Block{{Kind: Section, Text: T(P("Revoking "), C(provider+":"+id),
		P(" at "+displayName(provider)+". Run "), C(run.ID), P(" shows the result in your messages from Warden."))}}}
}

func containsActive(list []sessions.Session, id string) bool {
	for _, ss := range list {
		if ss.ID == id && (ss.Active || ss.Kind != sessions.KindSession) {
			return true
		}
	}
	return false
}

// audit appends a record; a failure is logged (the action already happened).
func (s *Service) audit(ctx context.Context, rec storage.Record) {
	if _, err := s.cfg.Audit.Append(ctx, rec); err != nil {
		s.log.ErrorContext(ctx, "audit", "err", err, "action", rec.Action)
	}
}

// auditTrail shows the latest records about a person to a responder.
func (s *Service) auditTrail(ctx context.Context, actor string, u UserRef) Reply {
	if r, ok := s.requireResponder(ctx, actor, VerbAudit, u.String()); !ok {
		return r
	}
	p, err := s.resolve(ctx, u)
	if err != nil && !errors.Is(err, errNoEmail) {
		return s.resolveError(ctx, err)
	}
	subject := u.String()
	if p.SlackID != "" {
		subject = p.SlackID
	}
	recs, err := s.cfg.Audit.AuditBySubject(ctx, subject, 20)
	if err != nil {
		s.log.ErrorContext(ctx, "audit by subject", "err", err)
		return errorReply(kindInternal)
	}
	r := Reply{Text: fmt.Sprintf("%d audit records", len(recs))}
	r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(P("Latest audit records about "), subjectSpan(subject))})
	if len(recs) == 0 {
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("No records yet."))})
	}
	for _, rec := range recs {
		line := T(C(fmt.Sprintf("#%d", rec.Seq)), P(" "+rec.Time.UTC().Format("2006-01-02 15:04:05Z")+" "), subjectSpan(rec.Actor), P(" "), B(rec.Action))
		if rec.Provider != "" {
			line = append(line, P(" at "+displayName(rec.Provider)))
		}
		if rec.Outcome != "" {
			line = append(line, P(" → "+rec.Outcome))
		}
		if rec.RunID != "" {
			line = append(line, P(" run "), C(rec.RunID))
		}
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: line})
	}
	return r
}

func subjectSpan(id string) Span {
	if responderRe.MatchString(id) && !strings.HasPrefix(id, "S") {
		return U(id)
	}
	return C(id)
}
