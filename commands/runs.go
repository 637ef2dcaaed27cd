package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
)

// Messenger posts and edits Slack messages; bot implements it, paced per
// channel. Replies are neutral: bot renders them.
type Messenger interface {
	Post(ctx context.Context, channel string, r Reply) (ts string, err error)
	Update(ctx context.Context, channel, ts string, r Reply) error
	DM(ctx context.Context, userID string, r Reply) (channel, ts string, err error)
	// Find returns the message posted with meta in a channel or in the DM
	// with a user; "" when there is none.
	Find(ctx context.Context, to string, meta Meta) (channel, ts string, err error)
}

// Notifier tells people about playbook runs: it rebuilds each message from
// the run and posts it, or edits the message it posted before.
type Notifier struct {
	Messenger Messenger
	Now       func() time.Time
}

var _ playbooks.Notifier = (*Notifier)(nil)

// Notify implements playbooks.Notifier.
func (n *Notifier) Notify(ctx context.Context, run playbooks.Run, nt playbooks.Notice) (playbooks.MessageRef, error) {
	now := time.Now()
	if n.Now != nil {
		now = n.Now()
	}
	reply := NoticeReply(run, nt, now)
	if nt.Key != "" {
		reply.Meta = &Meta{RunID: run.ID, Key: nt.Key}
	}
	to := nt.To
	if to == "" {
		to = run.Channel
	}
	if to == "" {
		to = run.Requester
	}
	if nt.Ref.TS == "" && nt.Recover && reply.Meta != nil && to != "" && to != "system" {
		// A post of this message may have reached Slack just before a
		// crash: edit that one rather than post it twice.
		ch, ts, err := n.Messenger.Find(ctx, to, *reply.Meta)
		if err != nil {
			return playbooks.MessageRef{}, fmt.Errorf("find message: %w", err)
		}
		nt.Ref = playbooks.MessageRef{Channel: ch, TS: ts}
	}
	if nt.Ref.TS != "" {
		if err := n.Messenger.Update(ctx, nt.Ref.Channel, nt.Ref.TS, reply); err != nil {
			return nt.Ref, fmt.Errorf("update message: %w", err)
		}
		return nt.Ref, nil
	}
	if to == "" || to == "system" {
		return playbooks.MessageRef{}, nil
	}
	if isUserID(to) {
		ch, ts, err := n.Messenger.DM(ctx, to, reply)
		if err != nil {
			return playbooks.MessageRef{}, fmt.Errorf("direct message: %w", err)
		}
		return playbooks.MessageRef{Channel: ch, TS: ts}, nil
	}
	ts, err := n.Messenger.Post(ctx, to, reply)
	if err != nil {
		return playbooks.MessageRef{}, fmt.Errorf("post message: %w", err)
	}
	return playbooks.MessageRef{Channel: to, TS: ts}, nil
}

func isUserID(s string) bool {
	return responderRe.MatchString(s) && (s[0] == 'U' || s[0] == 'W')
}

// runValue is a button value naming one step of one run: identifiers only.
func runValue(runID string, step int) string { return runID + "/" + strconv.Itoa(step) }

func parseRunValue(v string) (runID string, step int, ok bool) {
	id, s, found := strings.Cut(v, "/")
	if !found || !runIDRe.MatchString(id) || len(s) > 3 {
		return "", 0, false
	}
	step, err := strconv.Atoi(s)
	if err != nil || step < 0 {
		return "", 0, false
	}
	return id, step, true
}

// revoke starts the revoke playbook for each person named, or shows what it
// would do with --dry-run.
func (s *Service) revoke(ctx context.Context, actor, channel string, cmd Command) Reply {
	if r, ok := s.requireResponder(ctx, actor, VerbRevoke, cmd.Users[0].String()); !ok {
		return r
	}
	if s.cfg.Engine == nil {
		return errorReply(kindInternal)
	}
	var targets []playbooks.Target
	if cmd.Targets[0] != "all" {
		for _, t := range cmd.Targets {
			p, id, _ := strings.Cut(t, ":")
			if _, ok := s.cfg.Inventory.Provider(p); !ok {
				return Reply{Text: fmt.Sprintf("Warden is not connected to a provider called %q. Nothing was changed.", shorten(p, 20))}
			}
			targets = append(targets, playbooks.Target{Provider: p, SessionID: id})
		}
	}
	var out Reply
	for _, u := range cmd.Users {
		p, err := s.resolve(ctx, u)
		if err != nil {
			return s.resolveError(ctx, err)
		}
		req := playbooks.StartRequest{Playbook: playbooks.PlaybookRevoke, Requester: actor,
			Subject: playbooks.Subject{SlackID: p.SlackID, Email: p.Email}, Reason: cmd.Reason, Targets: targets}
		if cmd.DryRun {
			plan, err := s.cfg.Engine.Plan(ctx, req)
			if err != nil {
				return s.runError(ctx, err)
			}
			out.Blocks = append(out.Blocks, planBlocks(plan, p)...)
			continue
		}
		run, err := s.cfg.Engine.Start(ctx, req)
		if err != nil {
			return s.runError(ctx, err)
		}
		out.Blocks = append(out.Blocks, Block{Kind: Section, Text: T(P("Started revocation "), C(run.ID), P(" for "), personSpan(p),
			P(". Live progress is in your messages from Warden; "), C("/sessions status "+run.ID), P(" shows it any time."))})
	}
	if cmd.DryRun {
		out.Text = "Dry run: nothing was changed."
		out.Blocks = append([]Block{{Kind: Section, Text: T(B("Dry run"), P(" — nothing was changed. This is what "), C("/sessions revoke"), P(" would do:"))}}, out.Blocks...)
	} else {
		out.Text = "Revocation started."
	}
	return out
}

// offboard starts contractor offboarding, which waits for approval.
func (s *Service) offboard(ctx context.Context, actor string, cmd Command) Reply {
	if r, ok := s.requireResponder(ctx, actor, VerbOffboard, cmd.Users[0].String()); !ok {
		return r
	}
	if s.cfg.Engine == nil {
		return errorReply(kindInternal)
	}
	p, err := s.resolve(ctx, cmd.Users[0])
	if err != nil {
		return s.resolveError(ctx, err)
	}
	run, err := s.cfg.Engine.Start(ctx, playbooks.StartRequest{Playbook: playbooks.PlaybookOffboarding, Requester: actor,
		Subject: playbooks.Subject{SlackID: p.SlackID, Email: p.Email}, Reason: cmd.Reason})
	if err != nil {
		return s.runError(ctx, err)
	}
	return Reply{Text: "Offboarding started.", Blocks: []Block{{Kind: Section, Text: T(P("Started offboarding "), C(run.ID),
		P(" for "), personSpan(p), P(". It needs approval first; you will see each step in your messages from Warden."))}}}
}

// status shows a run to the people it concerns and to responders.
func (s *Service) status(ctx context.Context, actor, runID string) Reply {
	if s.cfg.Engine == nil {
		return errorReply(kindInternal)
	}
	run, err := s.cfg.Engine.Get(ctx, runID)
	if err != nil {
		return s.runError(ctx, err)
	}
	if actor != run.Requester && actor != run.Subject.SlackID && !isApproverOf(run, actor) {
		ok, err := s.isResponder(ctx, actor)
		if err != nil {
			s.log.ErrorContext(ctx, "check responder", "err", err, logUser, actor)
			return errorReply(kindInternal)
		}
		if !ok {
			// Same answer as an unknown run: run ids are not a way to probe.
			return errorReply(kindNoSuchRun)
		}
	}
	return progressReply(run, s.cfg.Now())
}

func isApproverOf(run playbooks.Run, actor string) bool {
	for _, st := range run.Steps {
		for _, a := range st.Approvers {
			if a == actor {
				return true
			}
		}
	}
	return false
}

// decide handles Approve, and Deny (which first asks for a reason).
func (s *Service) decide(ctx context.Context, a Action, approve bool) Reply {
	runID, step, ok := parseRunValue(a.Value)
	if !ok || s.cfg.Engine == nil {
		return errorReply(kindUnknownAction)
	}
	if !approve {
		run, err := s.cfg.Engine.Get(ctx, runID)
		if err != nil {
			return s.runError(ctx, err)
		}
		if step >= len(run.Steps) || run.Steps[step].Status != playbooks.StepAwaitingApproval || run.State.Finished() {
			return errorReply(kindRunFinished)
		}
		if !isApproverOf(run, a.Actor) || a.Actor == run.Requester || a.Actor == run.Subject.SlackID {
			return errorReply(kindNotApprover)
		}
		return Reply{Modal: &Modal{
			CallbackID: CallbackDeny, Title: "Deny request", Submit: "Deny", PrivateMetadata: runValue(runID, step),
			Blocks: []Block{{Kind: Section, Text: T(P("You are denying "), B(run.Playbook), P(" for "), personSpan(person{SlackID: run.Subject.SlackID, Email: run.Subject.Email}), P(". Nothing will be revoked."))}},
			Inputs: []Input{{ID: "reason", Label: "Why?", Placeholder: "The requester sees this.", Multiline: true, MaxLength: maxReasonLen}},
		}}
	}
	if _, err := s.cfg.Engine.Decide(ctx, runID, step, a.Actor, true, ""); err != nil {
		return s.runError(ctx, err)
	}
	return Reply{Text: "Approved. Thank you — Warden is carrying on and the request message shows who decided."}
}

// denySubmitted finishes a denial with the reason from the modal.
func (s *Service) denySubmitted(ctx context.Context, sub Submission) SubmitResult {
	runID, step, ok := parseRunValue(sub.PrivateMetadata)
	if !ok || s.cfg.Engine == nil {
		r := errorReply(kindUnknownAction)
		return SubmitResult{Reply: &r}
	}
	reason, err := takeReason(VerbOffboard, []token{{text: sub.Values["reason"]}})
	if err != nil || reason == "" {
		return SubmitResult{Errors: map[string]string{"reason": fmt.Sprintf("Give a reason of at most %d characters.", maxReasonLen)}}
	}
	if _, err := s.cfg.Engine.Decide(ctx, runID, step, sub.Actor, false, reason); err != nil {
		r := s.runError(ctx, err)
		return SubmitResult{Reply: &r}
	}
	r := Reply{Text: "Denied. Nothing was revoked; the requester has been told why."}
	return SubmitResult{Reply: &r}
}

// retry re-runs a failed revoke step for the providers that failed.
func (s *Service) retry(ctx context.Context, a Action) Reply {
	runID, step, ok := parseRunValue(a.Value)
	if !ok || s.cfg.Engine == nil {
		return errorReply(kindUnknownAction)
	}
	run, err := s.cfg.Engine.Get(ctx, runID)
	if err != nil {
		return s.runError(ctx, err)
	}
	if a.Actor != run.Requester {
		if r, ok := s.requireResponder(ctx, a.Actor, "retry", run.Subject.SlackID); !ok {
			return r
		}
	}
	if _, err := s.cfg.Engine.Retry(ctx, runID, step, a.Actor); err != nil {
		return s.runError(ctx, err)
	}
	return Reply{Text: "Retrying the providers that failed. The progress message will update."}
}

// confirm handles "Yes, it was me" and "No, not me".
func (s *Service) confirm(ctx context.Context, a Action, yes bool) Reply {
	runID, step, ok := parseRunValue(a.Value)
	if !ok || s.cfg.Engine == nil {
		return errorReply(kindUnknownAction)
	}
	if _, err := s.cfg.Engine.Confirm(ctx, runID, step, a.Actor, yes); err != nil {
		return s.runError(ctx, err)
	}
	if s.cfg.Devices != nil {
		if err := s.cfg.Devices.Answered(ctx, runID, a.Actor, yes); err != nil {
			s.log.ErrorContext(ctx, "record device answer", "err", err, logRunID, runID)
		}
	}
	if yes {
		return Reply{Text: "Thanks — Warden will remember this device."}
	}
	return Reply{Text: "Thanks for telling us. Warden is ending that session and signing you out everywhere now; the security team has been alerted."}
}

// runError maps an engine error to a fixed text.
func (s *Service) runError(ctx context.Context, err error) Reply {
	switch {
	case errors.Is(err, playbooks.ErrNotFound):
		return errorReply(kindNoSuchRun)
	case errors.Is(err, playbooks.ErrFinished):
		return errorReply(kindRunFinished)
	case errors.Is(err, playbooks.ErrAlreadyDecided):
		return errorReply(kindAlreadyDecided)
	case errors.Is(err, playbooks.ErrSelfApproval):
		return errorReply(kindSelfApproval)
	case errors.Is(err, playbooks.ErrNotApprover):
		return errorReply(kindNotApprover)
	case errors.Is(err, playbooks.ErrNotSubject):
		return errorReply(kindNotSubject)
	case errors.Is(err, playbooks.ErrNotRetryable):
		return errorReply(kindNotRetryable)
	case errors.Is(err, playbooks.ErrInvalidRequest):
		return errorReply(kindBadRequest)
	}
	s.log.ErrorContext(ctx, "run", "err", err)
	return errorReply(kindInternal)
}

func personSpan(p person) Span {
	if p.SlackID != "" {
		return U(p.SlackID)
	}
	return B(p.Email)
}

// planBlocks shows a dry run for one person.
func planBlocks(plan playbooks.Plan, p person) []Block {
	blocks := []Block{{Kind: Section, Text: T(B("For "), personSpan(p), P(":"))}}
	for _, st := range plan.Steps {
		for _, pp := range st.Providers {
			blocks = append(blocks, Block{Kind: Section, Text: T(B(displayName(pp.Provider)), P(": "+planText(pp)))})
		}
	}
	return blocks
}

func planText(pp playbooks.ProviderPlan) string {
	switch pp.Action {
	case playbooks.PlanEndSessions, playbooks.PlanSignOutAll:
		var refs []string
		for i, ss := range pp.Sessions {
			if i == 10 {
				refs = append(refs, fmt.Sprintf("and %d more", len(pp.Sessions)-i))
				break
			}
			refs = append(refs, ss.Provider+":"+ss.ID+" ("+deviceLabel(ss)+")")
		}
		effect := effectText(sessions.Capabilities{EffectWithin: pp.EffectWithin})
		what := "would end"
		if pp.Action == playbooks.PlanSignOutAll {
			what = "would sign out everywhere, " + effect + ", ending"
		}
		switch {
		case len(refs) > 0:
			return fmt.Sprintf("%s %d %s: %s", what, len(pp.Sessions), plural(len(pp.Sessions), "session", "sessions"), strings.Join(refs, ", "))
		case pp.Action == playbooks.PlanSignOutAll:
			return "would sign out everywhere, " + effect + ". It ends: " + pp.Ends
		default:
			return "nothing to end"
		}
	case playbooks.PlanRevokeTokens:
		return "would revoke tokens and grants"
	case playbooks.PlanNoAccount:
		return "no account there; nothing to do"
	case playbooks.PlanNotSupported:
		return "cannot do this: " + pp.Cannot
	case playbooks.PlanUnavailable:
		return providerErrorText(pp.Err)
	}
	return string(pp.Action)
}
