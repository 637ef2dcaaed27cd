package bot

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/warden-sec/warden/commands"
)

// Log keys.
const (
	keyEnvelope = "envelope_id"
	keyUser     = "slack_user"
	keyChannel  = "channel"
	keyAction   = "action_id"
	keyCallback = "callback_id"
	keyErr      = "err"
)

const (
	noticeWorkers   = 2
	submitLaneSize  = 32
	restartMinWait  = time.Second
	restartMaxWait  = time.Minute
	maxErrorTextLen = 1000
)

type jobKind int

const (
	jobCommand jobKind = iota
	jobAction
	jobSubmit
)

// job is one accepted envelope, already acked (except submissions, whose ack
// carries the Handler's verdict), waiting for a worker.
type job struct {
	kind        jobKind
	envelope    string
	received    time.Time
	responseURL string
	triggerID   string
	firstInput  string // view_submission: block id that can carry an error
	req         commands.Request
	act         commands.Action
	sub         commands.Submission
}

// notice is a fixed text answered through a response_url.
type notice struct {
	responseURL string
	kind        noticeKind
}

// Run connects to Slack and serves until ctx ends or Slack refuses Warden for
// good. It may be called once.
//
// Design: one loop reads client.Events and never blocks on work. It acks
// every envelope at once (AckCtx with Config.AckTimeout) and hands a neutral
// request to a bounded queue drained by Config.Workers goroutines. When the
// queue is full it still acks, and answers "busy" through the response_url.
//
// view_submission is the exception: its ack carries field errors, so it
// cannot be sent before Handler.Submit has run. Submissions go to a small
// lane of their own (so a pool busy with slow commands never makes a modal
// late); a lane worker calls Submit with a deadline of 1.5 s after receipt
// and acks with response_action "errors" or a plain ack. If the lane is full,
// or Warden is stopping, the loop acks at once with the busy (or shutting
// down) text as an error on the modal's first input, so the modal stays open
// and nothing typed is lost.
//
// When ctx ends, Run stops taking work: new envelopes are acked and answered
// "shutting down". Queued and running work gets up to Config.ShutdownGrace
// (at most 8 s) to finish, after which its context is cancelled. Then the
// socket is closed and Run returns nil. On a fatal refusal Run does the same
// and returns an error wrapping ErrFatal.
func (a *App) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("bot run: already started")
	}
	defer a.setConnected(false)

	// The socket and the workers outlive ctx a little: the socket to ack
	// envelopes that arrive while work drains, the workers to finish.
	sockCtx, closeSocket := context.WithCancel(context.WithoutCancel(ctx))
	defer closeSocket()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()

	fatal := make(chan error, 1)
	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		a.supervise(sockCtx, fatal)
	}()

	s := &server{
		a:       a,
		jobs:    make(chan job, a.cfg.Queue),
		submits: make(chan job, submitLaneSize),
		notices: make(chan notice, a.cfg.Queue),
	}
	var workers, noticers sync.WaitGroup
	jobs, submits, notices := s.jobs, s.submits, s.notices // the workers' ends; s's fields change at shutdown
	for range a.cfg.Workers {
		workers.Go(func() {
			for j := range jobs {
				a.work(workCtx, j)
			}
		})
	}
	for range max(2, a.cfg.Workers/4) {
		workers.Go(func() {
			for j := range submits {
				a.work(workCtx, j)
			}
		})
	}
	for range noticeWorkers {
		noticers.Go(func() {
			for n := range notices {
				a.sendNotice(workCtx, n)
			}
		})
	}

	// Serve.
	var runErr error
	s.accepting = true
serve:
	for {
		select {
		case <-ctx.Done():
			a.log.InfoContext(ctx, "slack: stopping; finishing in-flight work", "grace", a.cfg.ShutdownGrace)
			break serve
		case err := <-fatal:
			runErr = err
			break serve
		case <-a.link.disabled:
			runErr = fmt.Errorf("bot run: socket mode link_disabled: %w", ErrFatal)
			a.log.Error("slack: Socket Mode was disabled for the app (link_disabled); not reconnecting")
			break serve
		case evt := <-a.sm.Events:
			s.handle(evt)
		}
	}

	// Drain: stop accepting, let queued and running work finish.
	s.accepting = false
	close(s.jobs)
	close(s.submits)
	drained := waitChan(&workers)
	grace := time.NewTimer(a.cfg.ShutdownGrace)
	defer grace.Stop()
	graceC := grace.C
drain:
	for {
		select {
		case <-drained:
			break drain
		case <-graceC:
			a.log.Warn("slack: grace period over; cancelling in-flight work")
			stopWork()
			graceC = nil
		case err := <-fatal:
			if runErr == nil {
				runErr = err
			}
		case evt := <-a.sm.Events:
			s.handle(evt)
		}
	}
	close(s.notices)
	s.notices = nil // notify now drops: nobody would send it
	noticed := waitChan(&noticers)
drainNotices:
	for {
		select {
		case <-noticed:
			break drainNotices
		case <-graceC:
			stopWork()
			graceC = nil
		case evt := <-a.sm.Events:
			s.handle(evt)
		}
	}

	// Close the socket and wait for slack-go to return. Events is never
	// closed, and slack-go may block sending to it, so keep reading.
	closeSocket()
	for {
		select {
		case <-supDone:
			if runErr == nil {
				a.log.Info("slack: stopped")
			}
			return runErr
		case err := <-fatal:
			if runErr == nil {
				runErr = err
			}
		case <-a.sm.Events:
		}
	}
}

// waitChan closes the returned channel when wg is done.
func waitChan(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// supervise runs slack-go's connection loop. slack-go reconnects by itself
// after recoverable failures; when RunContext still returns a non-fatal
// error, it is restarted after a capped, jittered wait. A fatal refusal is
// sent on fatal and ends supervise.
func (a *App) supervise(ctx context.Context, fatal chan<- error) {
	wait := restartMinWait
	for {
		start := time.Now()
		err := a.sm.RunContext(ctx)
		a.setConnected(false)
		if ctx.Err() != nil {
			return
		}
		if code, ok := fatalCode(err); ok {
			a.log.Error("slack: credentials refused; not reconnecting", "reason", code)
			fatal <- fmt.Errorf("bot run: slack refused the connection (%s): %w", code, ErrFatal)
			return
		}
		if time.Since(start) > restartMaxWait {
			wait = restartMinWait
		}
		d := wait/2 + rand.N(wait/2+1)
		a.log.Warn("slack: connection loop ended; restarting", keyErr, err, "wait", d)
		if sleep(ctx, d) != nil {
			return
		}
		wait = min(2*wait, restartMaxWait)
	}
}

// fatalCode reports whether err is one of Slack's answers that no reconnect
// can fix, and which.
func fatalCode(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	if sc, ok := errors.AsType[slack.StatusCodeError](err); ok && sc.Code == 404 {
		return "invalid_auth", true // slack-go treats a 404 from apps.connections.open so
	}
	code := err.Error()
	if e, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		code = e.Err
	}
	switch code {
	case "invalid_auth", "token_revoked", "account_inactive", "not_authed", "link_disabled":
		return code, true
	}
	return "", false
}

// server is the event loop's state. Only the loop goroutine touches it.
type server struct {
	a         *App
	accepting bool
	jobs      chan job
	submits   chan job
	notices   chan notice
}

func (s *server) handle(evt socketmode.Event) {
	a := s.a
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		a.setConnected(false)
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		if !a.setConnected(true) {
			a.log.Debug("slack: connected")
		}
	case socketmode.EventTypeConnectionError:
		a.setConnected(false)
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			a.log.Warn("slack: connect failed; retrying", "attempt", e.Attempt, "wait", e.Backoff, keyErr, e.ErrorObj)
		}
	case socketmode.EventTypeIncomingError:
		// Normal while slack-go replaces a socket it has just closed.
		a.log.Debug("slack: read error", keyErr, evt.Data)
	case socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		a.log.Warn("slack: socket error", "type", string(evt.Type))
	case socketmode.EventTypeSlashCommand:
		s.command(evt)
	case socketmode.EventTypeInteractive:
		s.interactive(evt)
	case socketmode.EventTypeEventsAPI:
		if evt.Request != nil {
			received := time.Now()
			a.metrics.envelope(envEventsAPI)
			a.ack(evt.Request.EnvelopeID, envEventsAPI, received, nil)
		}
	}
}

func (s *server) command(evt socketmode.Event) {
	if evt.Request == nil {
		return
	}
	env, received := evt.Request.EnvelopeID, time.Now()
	s.a.metrics.envelope(envSlashCommand)
	s.a.ack(env, envSlashCommand, received, nil)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		return
	}
	if !s.accepting {
		s.notify(cmd.ResponseURL, noticeShuttingDown)
		return
	}
	j := job{
		kind: jobCommand, envelope: env, received: received,
		responseURL: cmd.ResponseURL, triggerID: cmd.TriggerID,
		req: commands.Request{Actor: cmd.UserID, Channel: cmd.ChannelID, Text: cmd.Text},
	}
	select {
	case s.jobs <- j:
	default:
		s.a.log.Warn("slack: queue full; answering busy", keyEnvelope, env, keyUser, cmd.UserID)
		s.notify(cmd.ResponseURL, noticeBusy)
	}
}

func (s *server) interactive(evt socketmode.Event) {
	if evt.Request == nil {
		return
	}
	env, received := evt.Request.EnvelopeID, time.Now()
	cb, ok := evt.Data.(slack.InteractionCallback)
	typ := interactionType(cb.Type)
	s.a.metrics.envelope(typ)
	if !ok {
		s.a.ack(env, typ, received, nil)
		return
	}
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		s.a.ack(env, typ, received, nil)
		if len(cb.ActionCallback.BlockActions) == 0 {
			return
		}
		if !s.accepting {
			s.notify(cb.ResponseURL, noticeShuttingDown)
			return
		}
		ba := cb.ActionCallback.BlockActions[0]
		channel := cb.Container.ChannelID
		if channel == "" {
			channel = cb.Channel.ID
		}
		msgTS := cb.Container.MessageTs
		if msgTS == "" {
			msgTS = cb.Message.Timestamp
		}
		j := job{
			kind: jobAction, envelope: env, received: received,
			responseURL: cb.ResponseURL, triggerID: cb.TriggerID,
			act: commands.Action{
				Actor: cb.User.ID, ActionID: baseActionID(ba.ActionID), Value: ba.Value,
				Channel: channel, MessageTS: msgTS,
			},
		}
		select {
		case s.jobs <- j:
		default:
			s.a.log.Warn("slack: queue full; answering busy", keyEnvelope, env, keyUser, cb.User.ID)
			s.notify(cb.ResponseURL, noticeBusy)
		}
	case slack.InteractionTypeViewSubmission:
		first := firstInput(cb.View)
		if !s.accepting {
			s.a.ack(env, typ, received, viewError(first, noticeShuttingDown))
			return
		}
		j := job{
			kind: jobSubmit, envelope: env, received: received, firstInput: first,
			sub: commands.Submission{
				Actor: cb.User.ID, CallbackID: cb.View.CallbackID,
				PrivateMetadata: cb.View.PrivateMetadata, Values: viewValues(cb.View),
			},
		}
		select {
		case s.submits <- j:
		default:
			s.a.log.Warn("slack: submission lane full; answering busy", keyEnvelope, env, keyUser, cb.User.ID)
			s.a.ack(env, typ, received, viewError(first, noticeBusy))
		}
	default:
		s.a.ack(env, typ, received, nil)
	}
}

// notify queues a fixed answer for a response_url without blocking the loop.
// If even that queue is full the person gets no text; the envelope is acked
// regardless, and the log says so.
func (s *server) notify(responseURL string, k noticeKind) {
	if responseURL == "" {
		return
	}
	select {
	case s.notices <- notice{responseURL: responseURL, kind: k}:
	default:
		s.a.log.Warn("slack: notice queue full; dropping notice", "notice", noticeText[k])
	}
}

func (a *App) sendNotice(ctx context.Context, n notice) {
	ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
	defer cancel()
	if err := a.respond(ctx, n.responseURL, commands.Reply{Text: noticeText[n.kind]}); err != nil {
		a.log.WarnContext(ctx, "slack: send notice", keyErr, err)
	}
}

// ack acknowledges an envelope of type typ received at received, waiting
// at most AckTimeout for room in slack-go's send queue.
func (a *App) ack(envelope, typ string, received time.Time, payload any) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.AckTimeout)
	defer cancel()
	if err := a.sm.AckCtx(ctx, envelope, payload); err != nil {
		a.log.Warn("slack: ack", keyEnvelope, envelope, keyErr, err)
		return
	}
	a.metrics.acked(typ, time.Since(received))
}

// work runs one job on a worker.
func (a *App) work(ctx context.Context, j job) {
	switch j.kind {
	case jobCommand:
		ctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		r, ok := safeCall(func() commands.Reply { return a.h.Command(ctx, j.req) })
		if !ok {
			a.log.ErrorContext(ctx, "slack: command handler panicked", keyEnvelope, j.envelope, keyUser, j.req.Actor)
			r = commands.Reply{Text: noticeText[noticeInternal]}
		}
		a.deliver(ctx, j, r)
	case jobAction:
		ctx, cancel := context.WithTimeout(ctx, actionTimeout)
		defer cancel()
		r, ok := safeCall(func() commands.Reply { return a.h.Action(ctx, j.act) })
		if !ok {
			a.log.ErrorContext(ctx, "slack: action handler panicked", keyEnvelope, j.envelope, keyAction, j.act.ActionID)
			r = commands.Reply{Text: noticeText[noticeInternal]}
		}
		a.deliver(ctx, j, r)
	case jobSubmit:
		a.submit(ctx, j)
	}
}

// deliver shows a Handler's reply: the modal first (its trigger expires in
// about 3 s), then the message through the response_url.
func (a *App) deliver(ctx context.Context, j job, r commands.Reply) {
	if r.Modal != nil {
		if j.triggerID == "" {
			a.log.WarnContext(ctx, "slack: reply has a modal but the interaction has no trigger", keyEnvelope, j.envelope)
		} else if _, err := a.api.OpenViewContext(ctx, j.triggerID, RenderModal(*r.Modal)); err != nil {
			a.log.WarnContext(ctx, "slack: open modal", keyEnvelope, j.envelope, keyErr, err)
		}
	}
	if RenderText(r) == "" && len(r.Blocks) == 0 {
		return
	}
	if err := a.respond(ctx, j.responseURL, r); err != nil {
		a.log.WarnContext(ctx, "slack: reply", keyEnvelope, j.envelope, keyErr, err)
	}
}

// submit runs Handler.Submit within the ack budget and acks with its verdict.
func (a *App) submit(ctx context.Context, j job) {
	deadline := j.received.Add(submitBudget)
	if !time.Now().Before(deadline) {
		a.log.WarnContext(ctx, "slack: submission waited too long for a worker", keyEnvelope, j.envelope, keyCallback, j.sub.CallbackID)
		a.ack(j.envelope, envViewSubmission, j.received, viewError(j.firstInput, noticeBusy))
		return
	}
	sctx, cancel := context.WithDeadline(ctx, deadline)
	res, ok := safeCall(func() commands.SubmitResult { return a.h.Submit(sctx, j.sub) })
	cancel()
	switch {
	case !ok:
		a.log.ErrorContext(ctx, "slack: submit handler panicked", keyEnvelope, j.envelope, keyCallback, j.sub.CallbackID)
		a.ack(j.envelope, envViewSubmission, j.received, viewError(j.firstInput, noticeInternal))
		return
	case len(res.Errors) > 0:
		a.ack(j.envelope, envViewSubmission, j.received, viewErrors(res.Errors))
		return
	case sctx.Err() != nil && time.Now().After(deadline):
		// The Handler gave no verdict in time; keep the modal open.
		a.log.WarnContext(ctx, "slack: submit handler missed its deadline", keyEnvelope, j.envelope, keyCallback, j.sub.CallbackID)
		a.ack(j.envelope, envViewSubmission, j.received, viewError(j.firstInput, noticeTooSlow))
		return
	}
	a.ack(j.envelope, envViewSubmission, j.received, nil) // closes the modal
	if res.Reply != nil {
		ctx, cancel := context.WithTimeout(ctx, actionTimeout)
		defer cancel()
		if _, _, err := a.DM(ctx, j.sub.Actor, *res.Reply); err != nil {
			a.log.WarnContext(ctx, "slack: submit reply", keyEnvelope, j.envelope, keyErr, err)
		}
	}
}

// safeCall runs f, turning a panic into ok == false.
func safeCall[T any](f func() T) (v T, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return f(), true
}

// firstInput is the block id of the first input block of a view, where a
// view-wide error can be shown.
func firstInput(v slack.View) string {
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.BlockID != "" {
			return in.BlockID
		}
	}
	if v.State != nil {
		keys := make([]string, 0, len(v.State.Values))
		for k := range v.State.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			return keys[0]
		}
	}
	return ""
}

// viewValues flattens a view's state to input id → value. RenderModal uses
// the input id as both block id and action id.
func viewValues(v slack.View) map[string]string {
	out := make(map[string]string)
	if v.State == nil {
		return out
	}
	for blockID, actions := range v.State.Values {
		for actionID, act := range actions {
			val := act.Value
			if val == "" && act.SelectedOption.Value != "" {
				val = act.SelectedOption.Value
			}
			if actionID == blockID || len(actions) == 1 {
				out[blockID] = val
			} else {
				out[actionID] = val
			}
		}
	}
	return out
}

// viewError is an ack payload showing a fixed text on the modal's first
// input, or a plain ack (closing the modal) when it has none.
func viewError(firstInput string, k noticeKind) any {
	if firstInput == "" {
		return nil
	}
	return slack.NewErrorsViewSubmissionResponse(map[string]string{firstInput: noticeText[k]})
}

func viewErrors(errs map[string]string) any {
	m := make(map[string]string, len(errs))
	for k, v := range errs {
		if utf8.RuneCountInString(v) > maxErrorTextLen {
			v = truncRunes(v, maxErrorTextLen)
		}
		m[k] = v
	}
	return slack.NewErrorsViewSubmissionResponse(m)
}
