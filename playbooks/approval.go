package playbooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// Approvals, confirmations and waits: the steps where a run waits for a
// person or a timer. Their deadlines are saved in the run, so timers fire
// from the persisted values after a restart.

// resolveApprovers turns a step's approver forms into Slack user ids:
// "manager" → the subject's manager (the first ManagerEmail any provider
// knows, in provider order, looked up in the Directory); "group:S…" → its
// members; "user:U…" → that user. When that yields nobody, the fallback
// approvers are used. The requester and the subject are always removed.
// Directory errors leave that form unresolved; they are returned joined,
// for the step's error message when nobody resolved.
func (e *Engine) resolveApprovers(ctx context.Context, r Run, spec StepSpec) ([]string, error) {
	var ids []string
	var errs []error
	for _, a := range spec.Approvers {
		switch {
		case a == ApproverManager:
			id, err := e.managerOf(ctx, r)
			if err != nil {
				errs = append(errs, err)
			}
			if id != "" {
				ids = append(ids, id)
			}
		case strings.HasPrefix(a, "group:"):
			members, err := e.groupMembers(ctx, strings.TrimPrefix(a, "group:"))
			if err != nil {
				errs = append(errs, err)
			}
			ids = append(ids, members...)
		case strings.HasPrefix(a, "user:"):
			ids = append(ids, strings.TrimPrefix(a, "user:"))
		}
	}
	out := eligible(r, ids, nil)
	if len(out) == 0 {
		fallback, err := e.fallbackApprovers(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		out = eligible(r, fallback, nil)
	}
	if err := errors.Join(errs...); err != nil {
		e.log.WarnContext(ctx, "resolving approvers", logRunID, r.ID, "error", err)
		return out, err
	}
	return out, nil
}

// eligible returns ids without duplicates, the requester, the subject and
// anyone in except.
func eligible(r Run, ids, except []string) []string {
	var out []string
	for _, id := range ids {
		if id == "" || id == r.Requester || id == r.Subject.SlackID || slices.Contains(out, id) || slices.Contains(except, id) {
			continue
		}
		out = append(out, id)
	}
	return out
}

// managerOf returns the Slack id of the subject's manager, or "" when no
// provider knows one.
func (e *Engine) managerOf(ctx context.Context, r Run) (string, error) {
	if r.Subject.Email == "" || e.dir == nil {
		return "", nil
	}
	for _, p := range e.inv.Providers() {
		pctx, cancel := context.WithTimeout(ctx, e.provTimeout)
		u, err := p.FindUser(pctx, r.Subject.Email)
		cancel()
		if err != nil {
			if !errors.Is(err, sessions.ErrNoAccount) {
				e.log.WarnContext(ctx, "manager lookup failed", logRunID, r.ID, logProvider, p.Name(), "error", err)
			}
			continue
		}
		if u.ManagerEmail == "" {
			continue
		}
		id, err := e.dir.UserByEmail(ctx, u.ManagerEmail)
		if err != nil {
			return "", fmt.Errorf("find manager in slack: %w", err)
		}
		return id, nil
	}
	return "", nil
}

func (e *Engine) groupMembers(ctx context.Context, group string) ([]string, error) {
	if e.dir == nil {
		return nil, nil
	}
	members, err := e.dir.GroupMembers(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("group %s members: %w", group, err)
	}
	return members, nil
}

// fallbackApprovers expands Config.Approvers (user ids and groups).
func (e *Engine) fallbackApprovers(ctx context.Context) ([]string, error) {
	var ids []string
	var errs []error
	for _, a := range e.approvers {
		if groupRE.MatchString(a) {
			members, err := e.groupMembers(ctx, a)
			if err != nil {
				errs = append(errs, err)
			}
			ids = append(ids, members...)
			continue
		}
		ids = append(ids, a)
	}
	return ids, errors.Join(errs...)
}

// beginApproval resolves the approvers, saves the step awaiting approval
// with its deadlines and asks each approver.
func (e *Engine) beginApproval(ctx context.Context, r Run, i int) error {
	ids, resolveErr := e.resolveApprovers(ctx, r, r.Steps[i].Spec)
	now := e.now().UTC()
	nr, changed, err := e.transition(ctx, r.ID, func(r *Run) ([]storage.Record, error) {
		s := &r.Steps[i]
		if r.State.Finished() || s.Status != StepPending {
			return nil, errNoChange
		}
		if len(ids) == 0 {
			s.Status = StepFailed
			s.Error = "no one can approve: no approver resolved (manager unknown, groups empty) and no fallback approvers are configured"
			if resolveErr != nil {
				s.Error = short(fmt.Errorf("no one can approve: %w", resolveErr))
			}
			r.State = RunFailed
			skipRest(r, i)
			return []storage.Record{
				{Action: "approval.no_approvers", Outcome: string(StepFailed), Details: stepDetails(r, i)},
				{Action: "run.failed", Outcome: string(RunFailed)},
			}, nil
		}
		s.Status = StepAwaitingApproval
		s.Approvers = ids
		if d := s.Spec.EscalateAfter.D(); d > 0 {
			s.EscalateAt = now.Add(d)
		}
		if d := s.Spec.ExpireAfter.D(); d > 0 {
			s.ExpireAt = now.Add(d)
		}
		r.State = RunWaiting
		return []storage.Record{{Action: "approval.request", Outcome: string(StepAwaitingApproval),
			Details: stepDetails(r, i, "approvers", strings.Join(ids, ","), "quorum", strconv.Itoa(s.Quorum()))}}, nil
	})
	if err != nil || !changed {
		return err
	}
	for _, id := range nr.Steps[i].Approvers {
		e.notify(ctx, r.ID, Notice{Kind: NoticeApprovalRequest, Step: i, To: id, Key: keyApproval(i, id), Text: nr.Steps[i].Spec.Message})
	}
	return nil
}

// renotify sends the requests a crash may have kept from being sent: those
// with no stored message.
func (e *Engine) renotify(ctx context.Context, r Run, i int) {
	if e.notifier == nil {
		return
	}
	s := r.Steps[i]
	switch s.Status {
	case StepAwaitingApproval:
		for _, id := range s.Approvers {
			if _, ok := r.Messages[keyApproval(i, id)]; !ok {
				e.notify(ctx, r.ID, Notice{Kind: NoticeApprovalRequest, Step: i, To: id, Key: keyApproval(i, id), Text: s.Spec.Message})
			}
		}
	case StepAwaitingUser:
		if _, ok := r.Messages[keyStep(i)]; !ok {
			e.notify(ctx, r.ID, Notice{Kind: NoticeConfirmRequest, Step: i, To: r.Subject.SlackID, Key: keyStep(i), Text: s.Spec.Message})
		}
	}
}

// refreshDecided rebuilds, on a run's first look after a restart, the
// messages of steps already decided and the progress message: a crash
// between saving a decision and editing its messages would otherwise leave
// live Approve/Deny buttons on a decided request.
func (e *Engine) refreshDecided(ctx context.Context, r Run) {
	if e.notifier == nil {
		return
	}
	for i, s := range r.Steps {
		if len(s.Decisions) == 0 {
			continue
		}
		switch s.Spec.Kind {
		case KindApproval:
			for _, id := range s.Approvers {
				if _, ok := r.Messages[keyApproval(i, id)]; ok {
					e.notify(ctx, r.ID, Notice{Kind: NoticeApprovalUpdate, Step: i, To: id, Key: keyApproval(i, id)})
				}
			}
		case KindConfirmUser:
			if _, ok := r.Messages[keyStep(i)]; ok {
				e.notify(ctx, r.ID, Notice{Kind: NoticeConfirmRequest, Step: i, To: r.Subject.SlackID, Key: keyStep(i)})
			}
		}
	}
	if _, ok := r.Messages[keyProgress]; ok {
		e.progress(ctx, r.ID)
	}
}

// timers fires the step's persisted deadlines that have passed: expiry
// first, then escalation (once). Otherwise it returns the next deadline.
func (e *Engine) timers(ctx context.Context, r Run, i int) (next time.Time, acted bool, err error) {
	s := r.Steps[i]
	now := e.now()
	if !s.ExpireAt.IsZero() && !now.Before(s.ExpireAt) {
		return time.Time{}, true, e.expire(ctx, r.ID, i)
	}
	if !s.Escalated && !s.EscalateAt.IsZero() && !now.Before(s.EscalateAt) {
		return time.Time{}, true, e.escalate(ctx, r, i)
	}
	if !s.Escalated && !s.EscalateAt.IsZero() {
		next = s.EscalateAt
	}
	if !s.ExpireAt.IsZero() && (next.IsZero() || s.ExpireAt.Before(next)) {
		next = s.ExpireAt
	}
	return next, false, nil
}

func awaiting(s StepStatus) bool { return s == StepAwaitingApproval || s == StepAwaitingUser }

// escalate posts the overdue request to the security channel, once. An
// approval also gains the fallback approvers.
func (e *Engine) escalate(ctx context.Context, r Run, i int) error {
	var extra []string
	if r.Steps[i].Spec.Kind == KindApproval {
		fallback, err := e.fallbackApprovers(ctx)
		if err != nil {
			e.log.WarnContext(ctx, "expanding fallback approvers", logRunID, r.ID, "error", err)
		}
		extra = eligible(r, fallback, r.Steps[i].Approvers)
	}
	action := "approval.escalated"
	if r.Steps[i].Spec.Kind == KindConfirmUser {
		action = "confirm.escalated"
	}
	_, changed, err := e.transition(ctx, r.ID, func(r *Run) ([]storage.Record, error) {
		s := &r.Steps[i]
		if r.State.Finished() || s.Escalated || !awaiting(s.Status) {
			return nil, errNoChange
		}
		s.Escalated = true
		s.Approvers = append(s.Approvers, eligible(*r, extra, s.Approvers)...)
		return []storage.Record{{Action: action, Outcome: "escalated",
			Details: stepDetails(r, i, "channel", e.channel)}}, nil
	})
	if err != nil || !changed {
		return err
	}
	if e.channel == "" {
		e.log.WarnContext(ctx, "escalation has no security channel to go to", logRunID, r.ID, logStep, i)
	} else {
		e.notify(ctx, r.ID, Notice{Kind: NoticeEscalation, Step: i, To: e.channel, Key: fmt.Sprintf("escalation/%d", i)})
	}
	for _, id := range extra {
		e.notify(ctx, r.ID, Notice{Kind: NoticeApprovalRequest, Step: i, To: id, Key: keyApproval(i, id), Text: r.Steps[i].Spec.Message})
	}
	return nil
}

// expire ends a run whose approval or confirmation was not answered in time.
func (e *Engine) expire(ctx context.Context, id string, i int) error {
	r, changed, err := e.transition(ctx, id, func(r *Run) ([]storage.Record, error) {
		s := &r.Steps[i]
		if r.State.Finished() || !awaiting(s.Status) {
			return nil, errNoChange
		}
		s.Status = StepFailed
		s.Error = "expired: no answer by " + s.ExpireAt.UTC().Format(time.RFC3339)
		r.State = RunExpired
		skipRest(r, i)
		return []storage.Record{{Action: "run.expired", Outcome: string(RunExpired), Details: stepDetails(r, i)}}, nil
	})
	if err != nil || !changed {
		return err
	}
	e.notify(ctx, id, Notice{Kind: NoticeExpired, Step: i})
	e.updateRequests(ctx, r, i)
	return nil
}

// updateRequests rebuilds every approval message of step i in place.
func (e *Engine) updateRequests(ctx context.Context, r Run, i int) {
	// No check for a stored message here: a request still being posted holds
	// its message's lock, and notify reads the stored reference after it.
	for _, id := range r.Steps[i].Approvers {
		e.notify(ctx, r.ID, Notice{Kind: NoticeApprovalUpdate, Step: i, To: id, Key: keyApproval(i, id)})
	}
}

// Decide records actor's decision on approval step step. Quorum counts
// distinct approvers; one denial denies the step and fails the run (nothing
// is revoked). It returns ErrNotFound, ErrAlreadyDecided (a second click by
// the same person changes nothing), ErrFinished (the run finished or
// expired, or the step no longer awaits approval), ErrSelfApproval (the
// requester or the subject, even if listed) and ErrNotApprover.
func (e *Engine) Decide(ctx context.Context, runID string, step int, actor string, approve bool, reason string) (Run, error) {
	var before RunState
	r, _, err := e.transition(ctx, runID, func(r *Run) ([]storage.Record, error) {
		if step < 0 || step >= len(r.Steps) || r.Steps[step].Spec.Kind != KindApproval {
			return nil, fmt.Errorf("approval step %d: %w", step, ErrNotFound)
		}
		s := &r.Steps[step]
		before = r.State
		if slices.ContainsFunc(s.Decisions, func(d Decision) bool { return d.Actor == actor }) {
			return nil, ErrAlreadyDecided
		}
		if r.State.Finished() || s.Status != StepAwaitingApproval {
			return nil, ErrFinished
		}
		if actor == "" || actor == r.Requester || actor == r.Subject.SlackID {
			return nil, ErrSelfApproval
		}
		if !slices.Contains(s.Approvers, actor) {
			return nil, ErrNotApprover
		}
		s.Decisions = append(s.Decisions, Decision{Actor: actor, Approve: approve, Reason: reason, At: e.now().UTC()})
		details := stepDetails(r, step, "approvals", strconv.Itoa(s.Approvals()), "quorum", strconv.Itoa(s.Quorum()))
		if reason != "" {
			details["reason"] = reason
		}
		if !approve {
			s.Status = StepDenied
			r.State = RunFailed
			skipRest(r, step)
			return []storage.Record{
				{Actor: actor, Action: "approval.deny", Outcome: string(StepDenied), Details: details},
				{Action: "run.failed", Outcome: "denied"},
			}, nil
		}
		recs := []storage.Record{{Actor: actor, Action: "approval.approve", Outcome: "approved", Details: details}}
		if s.Approvals() >= s.Quorum() {
			s.Status = StepApproved
			r.State = RunRunning
			recs = append(recs, storage.Record{Action: "step.approved", Outcome: string(StepApproved), Details: stepDetails(r, step)})
		}
		return recs, nil
	})
	if err != nil {
		if errors.Is(err, ErrNotApprover) || errors.Is(err, ErrSelfApproval) {
			e.refused(ctx, runID, step, actor, "approval.refused", err)
		}
		return Run{}, fmt.Errorf("decide run %s: %w", runID, err)
	}
	e.log.InfoContext(ctx, "approval decision", logRunID, runID, logStep, step, logUserID, actor, "approve", approve)
	e.updateRequests(ctx, r, step)
	if r.State != before {
		e.kick(runID)
	}
	if latest, err := e.Get(ctx, runID); err == nil {
		r = latest
	}
	return r.clone(), nil
}

// refused audits a refused attempt to act on a run.
func (e *Engine) refused(ctx context.Context, runID string, step int, actor, action string, why error) {
	r, err := e.Get(ctx, runID)
	if err != nil {
		return
	}
	rec := storage.Record{Time: e.now().UTC(), Actor: actor, Action: action, Subject: r.auditSubject(), RunID: runID,
		Outcome: "refused", Details: map[string]string{"step": strconv.Itoa(step), "reason": why.Error()}}
	if _, err := e.store.Append(ctx, rec); err != nil {
		e.log.ErrorContext(ctx, "audit refused attempt", logRunID, runID, "error", err)
	}
}

// beginConfirm asks the subject whether the activity was theirs.
func (e *Engine) beginConfirm(ctx context.Context, r Run, i int) error {
	now := e.now().UTC()
	nr, changed, err := e.transition(ctx, r.ID, func(r *Run) ([]storage.Record, error) {
		s := &r.Steps[i]
		if r.State.Finished() || s.Status != StepPending {
			return nil, errNoChange
		}
		if r.Subject.SlackID == "" {
			s.Status = StepFailed
			s.Error = "cannot ask the user: no Slack id for the subject"
			r.State = RunFailed
			skipRest(r, i)
			return []storage.Record{
				{Action: "step.failed", Outcome: string(StepFailed), Details: stepDetails(r, i, "error", s.Error)},
				{Action: "run.failed", Outcome: string(RunFailed)},
			}, nil
		}
		s.Status = StepAwaitingUser
		if d := s.Spec.Timeout.D(); d > 0 {
			s.EscalateAt = now.Add(d)
		}
		if d := s.Spec.ExpireAfter.D(); d > 0 {
			s.ExpireAt = now.Add(d)
		}
		r.State = RunWaiting
		return []storage.Record{{Action: "confirm.request", Outcome: string(StepAwaitingUser), Details: stepDetails(r, i)}}, nil
	})
	if err != nil || !changed || nr.Steps[i].Status != StepAwaitingUser {
		return err
	}
	e.notify(ctx, r.ID, Notice{Kind: NoticeConfirmRequest, Step: i, To: nr.Subject.SlackID, Key: keyStep(i), Text: nr.Steps[i].Spec.Message})
	return nil
}

// Confirm records the subject's answer to a confirm_with_user step. yes
// ("it was me") completes the run with the remaining steps skipped; no
// ("not me") lets the run go on to its next steps. It returns ErrNotFound,
// ErrNotSubject when actor is not the subject, and ErrFinished for a late
// or repeated answer.
func (e *Engine) Confirm(ctx context.Context, runID string, step int, actor string, yes bool) (Run, error) {
	r, _, err := e.transition(ctx, runID, func(r *Run) ([]storage.Record, error) {
		if step < 0 || step >= len(r.Steps) || r.Steps[step].Spec.Kind != KindConfirmUser {
			return nil, fmt.Errorf("confirm step %d: %w", step, ErrNotFound)
		}
		if actor == "" || actor != r.Subject.SlackID {
			return nil, ErrNotSubject
		}
		s := &r.Steps[step]
		if r.State.Finished() || s.Status != StepAwaitingUser {
			return nil, ErrFinished
		}
		s.Decisions = append(s.Decisions, Decision{Actor: actor, Approve: yes, At: e.now().UTC()})
		s.Status = StepDone
		if yes {
			skipRest(r, step)
			r.State = RunSucceeded
			return []storage.Record{
				{Actor: actor, Action: "confirm.yes", Outcome: "it was me", Details: stepDetails(r, step)},
				{Action: "run.succeeded", Outcome: string(RunSucceeded)},
			}, nil
		}
		r.State = RunRunning
		return []storage.Record{{Actor: actor, Action: "confirm.no", Outcome: "not me", Details: stepDetails(r, step)}}, nil
	})
	if err != nil {
		if errors.Is(err, ErrNotSubject) {
			e.refused(ctx, runID, step, actor, "confirm.refused", err)
		}
		return Run{}, fmt.Errorf("confirm run %s: %w", runID, err)
	}
	e.notify(ctx, runID, Notice{Kind: NoticeConfirmRequest, Step: step, To: r.Subject.SlackID, Key: keyStep(step)})
	e.kick(runID)
	return r.clone(), nil
}

// beginWait starts a wait step; its deadline is saved with it.
func (e *Engine) beginWait(ctx context.Context, r Run, i int) error {
	now := e.now().UTC()
	_, _, err := e.transition(ctx, r.ID, func(r *Run) ([]storage.Record, error) {
		s := &r.Steps[i]
		if r.State.Finished() || s.Status != StepPending {
			return nil, errNoChange
		}
		s.Status = StepRunning
		s.Attempts++
		s.Deadline = now.Add(s.Spec.Wait.D())
		r.State = RunWaiting
		return []storage.Record{{Action: "step.running", Outcome: string(StepRunning),
			Details: stepDetails(r, i, "until", s.Deadline.Format(time.RFC3339))}}, nil
	})
	return err
}

func (e *Engine) endWait(ctx context.Context, id string, i int) error {
	_, _, err := e.transition(ctx, id, func(r *Run) ([]storage.Record, error) {
		s := &r.Steps[i]
		if r.State.Finished() || s.Status != StepRunning {
			return nil, errNoChange
		}
		s.Status = StepDone
		r.State = RunRunning
		return []storage.Record{{Action: "step.done", Outcome: string(StepDone), Details: stepDetails(r, i)}}, nil
	})
	return err
}
