package playbooks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/warden-sec/warden/sessions"
)

// Plan is what a run would do, for --dry-run: who would be asked, and per
// provider exactly what would be revoked. Computing it changes nothing.
type Plan struct {
	Playbook string
	Subject  Subject
	Steps    []PlannedStep
}

// PlannedStep is one step of a Plan.
type PlannedStep struct {
	Index     int
	Spec      StepSpec
	Scope     string         // revoke_sessions: the effective scope
	Approvers []string       // approval: the Slack ids who would be asked
	Providers []ProviderPlan // revoke steps: one per provider acted at
}

// PlanAction is what a revoke step would do at one provider.
type PlanAction string

const (
	PlanEndSessions  PlanAction = "end_sessions"        // end the listed Sessions one by one
	PlanSignOutAll   PlanAction = "sign_out_everywhere" // one "sign out everywhere" call
	PlanRevokeTokens PlanAction = "revoke_tokens"
	PlanNoAccount    PlanAction = "no_account"
	PlanNotSupported PlanAction = "not_supported" // Cannot says what
	PlanUnavailable  PlanAction = "unavailable"   // the lookup failed: Err
)

// ProviderPlan is what would happen at one provider.
type ProviderPlan struct {
	Provider string
	Action   PlanAction
	// Sessions that would end: listed live sessions (all), or the targets
	// (listed, device). Empty for a provider that cannot list.
	Sessions     []sessions.Session
	EffectWithin time.Duration // how long until the revoke takes effect
	Ends, Leaves string        // the provider's own words (Capabilities)
	Cannot       string        // what it cannot do, when anything
	Err          error         // why the provider could not be asked
}

// Plan works out what a run of req would do, without saving or revoking
// anything: it looks the subject up at every provider and resolves the
// approvers. It returns the errors Start returns for a bad request.
func (e *Engine) Plan(ctx context.Context, req StartRequest) (Plan, error) {
	pb, ok := e.playbooks[req.Playbook]
	if !ok {
		return Plan{}, fmt.Errorf("plan %q: %w", req.Playbook, ErrUnknownPlaybook)
	}
	if err := e.checkRequest(pb, &req); err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", pb.Name, err)
	}
	r := Run{Playbook: pb.Name, Requester: req.Requester, Subject: req.Subject, Targets: req.Targets}
	plan := Plan{Playbook: pb.Name, Subject: req.Subject}
	var look sessions.Result
	looked := false
	for i, spec := range pb.Steps {
		ps := PlannedStep{Index: i, Spec: spec}
		switch spec.Kind {
		case KindApproval:
			ps.Approvers, _ = e.resolveApprovers(ctx, r, spec)
		case KindRevokeSessions, KindRevokeTokens:
			if !looked {
				look, looked = e.inv.Lookup(ctx, req.Subject.Email), true
			}
			if spec.Kind == KindRevokeTokens {
				ps.Providers = e.planTokens(look)
				break
			}
			ps.Scope = scopeOf(&r, spec)
			ps.Providers = e.planSessions(look, ps.Scope, req.Targets)
		}
		plan.Steps = append(plan.Steps, ps)
	}
	return plan, nil
}

func basePlan(pr sessions.ProviderResult) (ProviderPlan, bool) {
	pp := ProviderPlan{Provider: pr.Provider, EffectWithin: pr.Caps.EffectWithin, Ends: pr.Caps.Ends, Leaves: pr.Caps.Leaves}
	switch {
	case pr.Err != nil && !pr.Found:
		pp.Action, pp.Err = PlanUnavailable, pr.Err
		return pp, false
	case !pr.Found:
		pp.Action = PlanNoAccount
		return pp, false
	}
	return pp, true
}

func (e *Engine) planSessions(look sessions.Result, scope string, targets []Target) []ProviderPlan {
	var out []ProviderPlan
	for _, pr := range look.Providers {
		var ids []string
		for _, t := range targets {
			if t.Provider == pr.Provider {
				ids = append(ids, t.SessionID)
			}
		}
		if scope != ScopeAll && len(ids) == 0 {
			continue
		}
		pp, ok := basePlan(pr)
		if !ok {
			out = append(out, pp)
			continue
		}
		caps := pr.Caps
		if scope != ScopeAll {
			if !caps.RevokeOne {
				pp.Action, pp.Cannot = PlanNotSupported, "cannot end one session; only sign out everywhere"
				out = append(out, pp)
				continue
			}
			pp.Action = PlanEndSessions
			for _, id := range ids {
				s := sessions.Session{Provider: pr.Provider, ID: id}
				if k := slices.IndexFunc(pr.Sessions, func(s sessions.Session) bool { return s.ID == id }); k >= 0 {
					s = pr.Sessions[k]
				}
				pp.Sessions = append(pp.Sessions, s)
			}
			out = append(out, pp)
			continue
		}
		var liveSessions []sessions.Session
		for _, s := range pr.Sessions {
			if live(s) {
				liveSessions = append(liveSessions, s)
			}
		}
		switch {
		case caps.RevokeAll:
			pp.Action = PlanSignOutAll
			if caps.ListSessions {
				pp.Sessions = liveSessions
			} else {
				pp.Cannot = "cannot list live sessions: signs out everywhere without showing what ends"
			}
		case caps.RevokeOne && caps.ListSessions:
			pp.Action, pp.Sessions = PlanEndSessions, liveSessions
		default:
			pp.Action, pp.Cannot = PlanNotSupported, "cannot end sessions"
		}
		if pr.Err != nil {
			pp.Err = pr.Err // found, but listing failed: what ends is unknown
		}
		out = append(out, pp)
	}
	return out
}

func (e *Engine) planTokens(look sessions.Result) []ProviderPlan {
	var out []ProviderPlan
	for _, pr := range look.Providers {
		pp, ok := basePlan(pr)
		if ok {
			p, _ := e.inv.Provider(pr.Provider)
			if _, can := p.(sessions.TokenRevoker); can {
				pp.Action = PlanRevokeTokens
			} else {
				pp.Action, pp.Cannot = PlanNotSupported, "cannot revoke tokens"
			}
		}
		out = append(out, pp)
	}
	return out
}
