package playbooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
	"github.com/warden-sec/warden/storage"
)

// The executors: revoke_sessions, revoke_tokens, notify_user and
// notify_channel. Each is idempotent: a revoke step saves every provider's
// result as it completes and skips providers already finished, so running
// it again after a crash or a Retry never revokes twice where it is done.

// scopeOf is the effective scope of a revoke_sessions step.
func scopeOf(r *Run, spec StepSpec) string {
	if spec.Scope == ScopeRequest {
		if len(r.Targets) > 0 {
			return ScopeListed
		}
		return ScopeAll
	}
	return spec.Scope
}

// initResults adds a pending result for every provider a revoke step will
// act at, keeping results already saved.
func (e *Engine) initResults(r *Run, i int) {
	s := &r.Steps[i]
	var names []string
	switch s.Spec.Kind {
	case KindRevokeSessions:
		if scope := scopeOf(r, s.Spec); scope == ScopeListed || scope == ScopeDevice {
			for _, t := range r.Targets {
				if !slices.Contains(names, t.Provider) {
					names = append(names, t.Provider)
				}
			}
			break
		}
		fallthrough
	case KindRevokeTokens:
		for _, p := range e.inv.Providers() {
			names = append(names, p.Name())
		}
	default:
		return
	}
	for _, n := range names {
		if !slices.ContainsFunc(s.Results, func(pr ProviderResult) bool { return pr.Provider == n }) {
			s.Results = append(s.Results, ProviderResult{Provider: n, Status: ResultPending})
		}
	}
}

// finished reports whether a provider result needs no more work.
func finished(kind string, st ResultStatus) bool {
	switch st {
	case ResultNoAccount, ResultNotSupported:
		return true
	case ResultVerified, ResultRequested:
		return kind == KindRevokeSessions
	case ResultRevoked:
		return kind == KindRevokeTokens
	}
	return false
}

// recoverable says whether trying again may help: not for refused
// credentials, a missing capability or a plain client error.
func recoverable(err error) bool {
	switch {
	case errors.Is(err, sessions.ErrUnauthorized), errors.Is(err, sessions.ErrNotSupported),
		errors.Is(err, sessions.ErrInvalidEmail), errors.Is(err, sessions.ErrProviderPanic),
		errors.Is(err, errNotConfigured):
		return false
	}
	if se, ok := errors.AsType[*httpclient.StatusError](err); ok {
		s := se.Status
		return s >= 500 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s == http.StatusConflict
	}
	return true
}

var errNotConfigured = errors.New("provider not configured")

// outcome is one provider's part of a step attempt.
type outcome struct {
	provider string
	status   ResultStatus
	err      error
}

// byProvider runs fn for every result of step i that is not finished,
// concurrently, and sums up: the step fails when any provider is not
// finished, and is worth retrying when any failure is recoverable.
func (e *Engine) byProvider(ctx context.Context, r *Run, i int, fn func(ctx context.Context, p sessions.Provider, g gate, prev ProviderResult) outcome) (bool, error) {
	kind := r.Steps[i].Spec.Kind
	results := r.Steps[i].Results
	outs := make([]outcome, len(results))
	var wg sync.WaitGroup
	for j, prev := range results {
		if finished(kind, prev.Status) {
			outs[j] = outcome{provider: prev.Provider, status: prev.Status}
			continue
		}
		wg.Go(func() {
			p, ok := e.inv.Provider(prev.Provider)
			if !ok {
				outs[j] = e.saveResult(ctx, r, i, prev, ResultFailed, "provider not configured", errNotConfigured)
				return
			}
			g := gate{sem: e.sems[prev.Provider], timeout: e.provTimeout}
			if t := r.Steps[i].Spec.Timeout.D(); t > 0 {
				g.timeout = t
			}
			outs[j] = fn(ctx, p, g, prev)
		})
	}
	wg.Wait()
	var msgs []string
	retry := false
	for _, o := range outs {
		if finished(kind, o.status) {
			continue
		}
		switch {
		case o.status == ResultStillPresent:
			msgs = append(msgs, o.provider+": a session is still present")
		case o.err != nil:
			msgs = append(msgs, o.provider+": "+o.err.Error())
			retry = retry || recoverable(o.err)
		default:
			msgs = append(msgs, o.provider+": not finished")
		}
	}
	if len(msgs) > 0 {
		return retry, errors.New(strings.Join(msgs, "; "))
	}
	return false, nil
}

// gate bounds the calls in flight at one provider (a slot each) and puts
// each call under a deadline. Saving results happens outside the slots, so
// a busy data file never idles a provider's pace.
type gate struct {
	sem     chan struct{}
	timeout time.Duration
}

// do runs fn in a slot under the timeout; waiting for the slot is bounded
// only by ctx.
func (g gate) do(ctx context.Context, fn func(ctx context.Context) error) error {
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.sem }()
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return fn(cctx)
}

// saveResult stores one provider's result with its audit record, even when
// ctx has ended: what happened at the provider must not be lost.
func (e *Engine) saveResult(ctx context.Context, r *Run, i int, res ProviderResult, st ResultStatus, detail string, cause error) outcome {
	res.Status = st
	res.Detail = detail
	action := "session.revoke"
	switch {
	case r.Steps[i].Spec.Kind == KindRevokeTokens:
		action = "token.revoke"
	case st == ResultVerified || st == ResultRequested || st == ResultStillPresent:
		action = "session.verify"
	}
	details := map[string]string{"step": strconv.Itoa(i), "attempt": strconv.Itoa(res.Attempts)}
	if detail != "" {
		details["detail"] = detail
	}
	if res.Sessions > 0 {
		details["sessions"] = strconv.Itoa(res.Sessions)
	}
	_, _, err := e.transition(context.WithoutCancel(ctx), r.ID, func(r *Run) ([]storage.Record, error) {
		s := &r.Steps[i]
		k := slices.IndexFunc(s.Results, func(pr ProviderResult) bool { return pr.Provider == res.Provider })
		if k < 0 {
			s.Results = append(s.Results, res)
		} else {
			s.Results[k] = res
		}
		return []storage.Record{{Action: action, Provider: res.Provider, Outcome: string(st), Details: details}}, nil
	})
	if err != nil {
		e.log.ErrorContext(ctx, "saving provider result", logRunID, r.ID, logProvider, res.Provider, "error", err)
		if cause == nil {
			cause = err
		}
	}
	return outcome{provider: res.Provider, status: st, err: cause}
}

// fail records a failed provider attempt. A provider already revoked keeps
// that status, so the next attempt only verifies.
func (e *Engine) fail(ctx context.Context, r *Run, i int, res ProviderResult, op string, err error) outcome {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// The engine is stopping: nothing is known, the attempt runs again
		// on resume.
		return outcome{provider: res.Provider, status: res.Status, err: err}
	}
	st := ResultFailed
	if res.Status == ResultRevoked && r.Steps[i].Spec.Kind == KindRevokeSessions {
		st = ResultRevoked
	}
	err = fmt.Errorf("%s: %w", op, err)
	return e.saveResult(ctx, r, i, res, st, short(err), err)
}

// lookUp finds the run's subject at p. When it cannot, done is true and out
// is the provider's saved result: no account there, or a failure.
func (e *Engine) lookUp(ctx context.Context, r *Run, i int, p sessions.Provider, g gate, res ProviderResult) (u sessions.User, out outcome, done bool) {
	err := g.do(ctx, func(ctx context.Context) (err error) {
		u, err = p.FindUser(ctx, r.Subject.Email)
		return err
	})
	switch {
	case errors.Is(err, sessions.ErrNoAccount):
		return u, e.saveResult(ctx, r, i, res, ResultNoAccount, "", nil), true
	case err != nil:
		return u, e.fail(ctx, r, i, res, "find user", err), true
	}
	return u, outcome{}, false
}

// revokeSessions ends sessions at every provider of the step and verifies.
func (e *Engine) revokeSessions(ctx context.Context, r *Run, i int) (bool, error) {
	scope := scopeOf(r, r.Steps[i].Spec)
	return e.byProvider(ctx, r, i, func(ctx context.Context, p sessions.Provider, g gate, prev ProviderResult) outcome {
		return e.revokeAt(ctx, r, i, p, g, prev, scope)
	})
}

// revokeAt does one provider's part: find the user, revoke (unless an
// earlier attempt did), then verify by listing again where the provider
// can list live sessions.
func (e *Engine) revokeAt(ctx context.Context, r *Run, i int, p sessions.Provider, g gate, prev ProviderResult, scope string) outcome {
	res := prev
	res.Attempts++
	res.Detail = ""
	caps := p.Capabilities()
	u, out, done := e.lookUp(ctx, r, i, p, g, res)
	if done {
		return out
	}
	var targets []string
	for _, t := range r.Targets {
		if t.Provider == p.Name() {
			targets = append(targets, t.SessionID)
		}
	}
	if prev.Status != ResultRevoked {
		var n int
		err := g.do(ctx, func(ctx context.Context) (err error) {
			n, err = revokeWith(ctx, p, caps, u, scope, targets)
			return err
		})
		if errors.Is(err, sessions.ErrNotSupported) {
			detail := "cannot end sessions here"
			if scope != ScopeAll {
				detail = "cannot end one session here; revoke all instead"
			}
			return e.saveResult(ctx, r, i, res, ResultNotSupported, detail, nil)
		}
		if err != nil {
			return e.fail(ctx, r, i, res, "revoke", err)
		}
		res.Sessions = n
		if o := e.saveResult(ctx, r, i, res, ResultRevoked, "", nil); o.err != nil {
			return o
		}
		res.Status = ResultRevoked
	}
	if !caps.ListSessions {
		res.EffectWithin = caps.EffectWithin
		detail := "signed out; takes effect at once"
		if caps.EffectWithin > 0 {
			detail = "requested; takes effect within " + caps.EffectWithin.String()
		}
		return e.saveResult(ctx, r, i, res, ResultRequested, detail, nil)
	}
	var ss []sessions.Session
	err := g.do(ctx, func(ctx context.Context) (err error) {
		ss, err = p.ListSessions(ctx, u)
		return err
	})
	if err != nil {
		return e.fail(ctx, r, i, res, "verify", err)
	}
	left := 0
	for _, s := range ss {
		if !live(s) {
			continue
		}
		if scope == ScopeAll || slices.Contains(targets, s.ID) {
			left++
		}
	}
	if left > 0 {
		return e.saveResult(ctx, r, i, res, ResultStillPresent, fmt.Sprintf("%d session(s) still live after revoke", left), nil)
	}
	return e.saveResult(ctx, r, i, res, ResultVerified, "", nil)
}

// live reports whether a listed session is still a working session.
func live(s sessions.Session) bool {
	return (s.Kind == sessions.KindSession || s.Kind == "") && s.Active
}

// revokeWith ends the sessions scope names at p: for all, RevokeAll where
// the provider can, else each live session one by one; for listed and
// device, each target. It returns how many sessions it ended one by one.
func revokeWith(ctx context.Context, p sessions.Provider, caps sessions.Capabilities, u sessions.User, scope string, targets []string) (int, error) {
	if scope == ScopeAll {
		switch {
		case caps.RevokeAll:
			return 0, p.RevokeAll(ctx, u)
		case caps.RevokeOne && caps.ListSessions:
			ss, err := p.ListSessions(ctx, u)
			if err != nil {
				return 0, fmt.Errorf("list sessions: %w", err)
			}
			n := 0
			for _, s := range ss {
				if !live(s) {
					continue
				}
				if err := p.RevokeSession(ctx, u, s.ID); err != nil && !errors.Is(err, sessions.ErrNotFound) {
					return n, err
				}
				n++
			}
			return n, nil
		}
		return 0, sessions.ErrNotSupported
	}
	n := 0
	for _, id := range targets {
		if err := p.RevokeSession(ctx, u, id); err != nil && !errors.Is(err, sessions.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// revokeTokens revokes OAuth tokens and grants where the provider can.
func (e *Engine) revokeTokens(ctx context.Context, r *Run, i int) (bool, error) {
	return e.byProvider(ctx, r, i, func(ctx context.Context, p sessions.Provider, g gate, prev ProviderResult) outcome {
		res := prev
		tr, ok := p.(sessions.TokenRevoker)
		if !ok {
			return e.saveResult(ctx, r, i, res, ResultNotSupported, "cannot revoke tokens here", nil)
		}
		res.Attempts++
		u, out, done := e.lookUp(ctx, r, i, p, g, res)
		if done {
			return out
		}
		err := g.do(ctx, func(ctx context.Context) error { return tr.RevokeTokens(ctx, u) })
		if errors.Is(err, sessions.ErrNotSupported) {
			return e.saveResult(ctx, r, i, res, ResultNotSupported, "cannot revoke tokens here", nil)
		}
		if err != nil {
			return e.fail(ctx, r, i, res, "revoke tokens", err)
		}
		return e.saveResult(ctx, r, i, res, ResultRevoked, "", nil)
	})
}

// notifyUser tells the subject, once: a message already posted for this
// step (saved in the run) is not posted again.
func (e *Engine) notifyUser(ctx context.Context, r *Run, i int) (bool, error) {
	if r.Subject.SlackID == "" {
		return false, &skipError{"the person has no Slack account to tell"}
	}
	return e.notifyStep(ctx, r, i, Notice{Kind: NoticeNotifyUser, To: r.Subject.SlackID})
}

// notifyChannel posts to the step's channel, else the security channel.
func (e *Engine) notifyChannel(ctx context.Context, r *Run, i int) (bool, error) {
	to := r.Steps[i].Spec.Channel
	if to == "" {
		to = e.channel
	}
	if to == "" {
		return false, &skipError{"no channel to tell: the step names none and WARDEN_SECURITY_CHANNEL is not set"}
	}
	return e.notifyStep(ctx, r, i, Notice{Kind: NoticeNotifyChannel, To: to})
}

func (e *Engine) notifyStep(ctx context.Context, r *Run, i int, n Notice) (bool, error) {
	if _, done := r.Messages[keyStep(i)]; done {
		return false, nil
	}
	n.Step, n.Key, n.Text = i, keyStep(i), r.Steps[i].Spec.Message
	if err := e.notify(ctx, r.ID, n); err != nil {
		return true, err
	}
	return false, nil
}
