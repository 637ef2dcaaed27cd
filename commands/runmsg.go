package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/warden-sec/warden/playbooks"
)

// NoticeReply builds the message for one notice about a run. It is a pure
// function of the run: every message can be rebuilt and edited in place.
func NoticeReply(run playbooks.Run, n playbooks.Notice, now time.Time) Reply {
	switch n.Kind {
	case playbooks.NoticeApprovalRequest, playbooks.NoticeApprovalUpdate:
		return approvalReply(run, n.Step, n.To, n.Text)
	case playbooks.NoticeRisk:
		r := Reply{Text: "High risk: a risky account change followed a new device.", Blocks: []Block{
			{Kind: Section, Text: T(B("High risk"), P(" — "), subjectOf(run), P(": "+run.RiskWhy))},
		}}
		r.Blocks = append(r.Blocks, evidenceBlocks(run)...)
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("Run "), C(run.ID), P(" is "+string(run.State)+"."))})
		return r
	case playbooks.NoticeEscalation:
		if stepAt(run, n.Step).Spec.Kind == playbooks.KindConfirmUser {
			r := Reply{Text: "A user has not answered \"was this you?\".", Blocks: []Block{
				{Kind: Section, Text: T(B("No answer"), P(": "), subjectOf(run), P(" has not said whether this new sign-in was theirs, since "+stamp(run.Created)+"."))},
			}}
			r.Blocks = append(r.Blocks, evidenceBlocks(run)...)
			r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("Run "), C(run.ID), P(". To end it now: "), C("/sessions revoke <@"+run.Subject.SlackID+"> all"))})
			return r
		}
		return Reply{Text: "An approval is overdue.", Blocks: []Block{
			{Kind: Section, Text: T(B("Overdue approval"), P(": "), B(run.Playbook), P(" for "), subjectOf(run), P(", asked by "), U(run.Requester),
				P(fmt.Sprintf(", has waited since %s.", stamp(run.Created))))},
			{Kind: Context, Text: append(T(P("Run "), C(run.ID), P(" · approvers: ")), mentions(stepAt(run, n.Step).Approvers)...)},
		}}
	case playbooks.NoticeExpired:
		return Reply{Text: "A run expired.", Blocks: []Block{{Kind: Section, Text: T(B(run.Playbook), P(" for "), subjectOf(run),
			P(" expired: nobody answered in time. Nothing was revoked. Run "), C(run.ID), P("."))}}}
	case playbooks.NoticeConfirmRequest:
		return confirmReply(run, n.Step, n.Text)
	case playbooks.NoticeNotifyUser:
		text := n.Text
		if text == "" {
			text = defaultUserText(run)
		}
		return Reply{Text: text, Blocks: []Block{{Kind: Section, Text: T(P(text))},
			{Kind: Context, Text: T(P("From Warden, your security team's session tool. Run "), C(run.ID), P("."))}}}
	case playbooks.NoticeNotifyChannel:
		text := n.Text
		if text == "" {
			text = fmt.Sprintf("%s finished.", run.Playbook)
		}
		r := progressReply(run, now)
		r.Text = text
		r.Blocks = append([]Block{{Kind: Section, Text: T(B(text))}}, r.Blocks...)
		return r
	default:
		return progressReply(run, now)
	}
}

func defaultUserText(run playbooks.Run) string {
	switch run.Playbook {
	case playbooks.PlaybookOffboarding:
		return "Your access has been ended as part of offboarding: every session and token was revoked."
	default:
		return "Your security team ended some of your sessions. You may need to sign in again on your devices."
	}
}

func stepAt(run playbooks.Run, i int) playbooks.Step {
	if i >= 0 && i < len(run.Steps) {
		return run.Steps[i]
	}
	return playbooks.Step{}
}

func subjectOf(run playbooks.Run) Span {
	return personSpan(person{SlackID: run.Subject.SlackID, Email: run.Subject.Email})
}

func mentions(ids []string) Text {
	var t Text
	for i, id := range ids {
		if i > 0 {
			t = append(t, P(", "))
		}
		t = append(t, U(id))
	}
	if len(t) == 0 {
		t = T(P("nobody"))
	}
	return t
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// approvalReply is the request one approver sees; once the step is decided
// it shows who decided, when and why, and no buttons.
func approvalReply(run playbooks.Run, step int, approver, text string) Reply {
	st := stepAt(run, step)
	r := Reply{Text: fmt.Sprintf("Approval needed: %s", run.Playbook)}
	head := T(U(run.Requester), P(" asks for approval to run "), B(run.Playbook), P(" for "), subjectOf(run), P("."))
	r.Blocks = append(r.Blocks, Block{Kind: Section, Text: head})
	if run.Reason != "" {
		r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(B("Reason: "), P(run.Reason))})
	}
	if text != "" {
		r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(P(text))})
	}
	r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("If approved: " + stepsSummary(run, step+1)))})
	for _, d := range st.Decisions {
		verb := "Approved"
		if !d.Approve {
			verb = "Denied"
		}
		line := T(B(verb+" by"), P(" "), U(d.Actor), P(" at "+stamp(d.At)))
		if d.Reason != "" {
			line = append(line, P(" — "), I(d.Reason))
		}
		r.Blocks = append(r.Blocks, Block{Kind: Section, Text: line})
	}
	switch {
	case st.Status == playbooks.StepAwaitingApproval && !run.State.Finished():
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P(fmt.Sprintf("%d of %d approvals. ", st.Approvals(), st.Quorum())),
			P("Expires "+stamp(st.ExpireAt)+". Run "), C(run.ID))})
		r.Blocks = append(r.Blocks, Block{Kind: Actions, Buttons: []Button{
			{Label: "Approve", ActionID: ActApprove, Value: runValue(run.ID, step), Style: Primary},
			{Label: "Deny", ActionID: ActDeny, Value: runValue(run.ID, step), Style: Danger},
		}})
	case run.State == playbooks.RunExpired:
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(B("Expired"), P(": nobody decided in time. Nothing was revoked. Run "), C(run.ID))})
	default:
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("Decided: "+string(st.Status)+". Run "), C(run.ID), P(" is "+string(run.State)+"."))})
	}
	return r
}

// stepsSummary lists the steps from i on, in words.
func stepsSummary(run playbooks.Run, from int) string {
	var parts []string
	for i := from; i < len(run.Steps); i++ {
		parts = append(parts, run.Steps[i].Spec.Name)
	}
	if len(parts) == 0 {
		return "nothing further."
	}
	return strings.Join(parts, ", then ") + "."
}

// confirmReply is the "was this you?" message to the subject.
func confirmReply(run playbooks.Run, step int, text string) Reply {
	st := stepAt(run, step)
	r := Reply{Text: "Was this you? A new sign-in to your account."}
	r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(B("Was this you?"), P(" Warden saw a sign-in to your account from a device it does not know."))})
	if text != "" {
		r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(P(text))})
	}
	r.Blocks = append(r.Blocks, evidenceBlocks(run)...)
	if run.Risk == playbooks.RiskHigh {
		r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(B("Also: "+run.RiskWhy+"."), P(" If that was not you either, say so now."))})
	}
	switch {
	case st.Status == playbooks.StepAwaitingUser && !run.State.Finished():
		r.Blocks = append(r.Blocks, Block{Kind: Actions, Buttons: []Button{
			{Label: "Yes, it was me", ActionID: ActDeviceYes, Value: runValue(run.ID, step), Style: Primary},
			{Label: "No, not me", ActionID: ActDeviceNo, Value: runValue(run.ID, step), Style: Danger},
		}})
	case len(st.Decisions) > 0 && st.Decisions[0].Approve:
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("You said it was you, at " + stamp(st.Decisions[0].At) + ". Thanks."))})
	case len(st.Decisions) > 0:
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("You said it was not you, at " + stamp(st.Decisions[0].At) + ". Warden ended the session and alerted security."))})
	default:
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("This question is closed. Run "), C(run.ID))})
	}
	return r
}

var stepIcon = map[playbooks.StepStatus]string{
	playbooks.StepPending: "○", playbooks.StepAwaitingApproval: "◔", playbooks.StepAwaitingUser: "◔",
	playbooks.StepApproved: "✓", playbooks.StepDenied: "✗", playbooks.StepRunning: "◑", playbooks.StepDone: "✓",
	playbooks.StepFailed: "✗", playbooks.StepSkipped: "–",
}

var resultText = map[playbooks.ResultStatus]string{
	playbooks.ResultPending:      "pending",
	playbooks.ResultRevoked:      "revoked, verifying",
	playbooks.ResultVerified:     "verified gone",
	playbooks.ResultRequested:    "requested",
	playbooks.ResultStillPresent: "still present",
	playbooks.ResultFailed:       "failed",
	playbooks.ResultNoAccount:    "no account there",
	playbooks.ResultNotSupported: "not supported",
}

// progressReply is a run's live progress: every step, and per provider what
// happened, with a Retry button when a provider failed.
func progressReply(run playbooks.Run, now time.Time) Reply {
	r := Reply{Text: fmt.Sprintf("%s for %s: %s", run.Playbook, subjectText(run), run.State)}
	head := T(B(run.Playbook), P(" for "), subjectOf(run), P(" — "), B(string(run.State)))
	r.Blocks = append(r.Blocks, Block{Kind: Section, Text: head})
	ctx := T(P("Run "), C(run.ID), P(" · asked by "), U(run.Requester), P(" · "+stamp(run.Created)))
	if run.Requester == "system" {
		ctx = T(P("Run "), C(run.ID), P(" · started by Warden · "+stamp(run.Created)))
	}
	if run.Reason != "" {
		ctx = append(ctx, P(" · reason: "), I(run.Reason))
	}
	r.Blocks = append(r.Blocks, Block{Kind: Context, Text: ctx})
	if run.Risk == playbooks.RiskHigh {
		r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(B("High risk"), P(": "+run.RiskWhy))})
	}
	r.Blocks = append(r.Blocks, evidenceBlocks(run)...)
	var retry []Button
	for i, st := range run.Steps {
		line := T(P(stepIcon[st.Status]+" "), B(st.Spec.Name), P(" — "+strings.ReplaceAll(string(st.Status), "_", " ")))
		if st.Attempts > 1 {
			line = append(line, P(fmt.Sprintf(" (attempt %d)", st.Attempts)))
		}
		if st.Status == playbooks.StepAwaitingApproval {
			line = append(line, P(fmt.Sprintf(": %d of %d from ", st.Approvals(), st.Quorum())))
			line = append(line, mentions(st.Approvers)...)
		}
		for _, d := range st.Decisions {
			verb := " · approved by "
			if !d.Approve {
				verb = " · denied by "
			}
			if st.Spec.Kind == playbooks.KindConfirmUser {
				verb = " · answered by "
			}
			line = append(line, P(verb), U(d.Actor), P(" at "+stamp(d.At)))
			if d.Reason != "" {
				line = append(line, P(": "), I(d.Reason))
			}
		}
		if st.Error != "" {
			line = append(line, P(": "+st.Error))
		}
		var fields []Text
		failed := false
		for _, res := range st.Results {
			txt := resultText[res.Status]
			if res.Status == playbooks.ResultRevoked && st.Spec.Kind == playbooks.KindRevokeTokens {
				txt = "revoked" // tokens cannot be listed again to verify
			}
			if res.Status == playbooks.ResultRequested && res.EffectWithin > 0 {
				txt = "requested, takes effect within " + roundDuration(res.EffectWithin)
			}
			if res.Sessions > 0 {
				txt += fmt.Sprintf(" (%d %s)", res.Sessions, plural(res.Sessions, "session", "sessions"))
			}
			if res.Detail != "" && (res.Status == playbooks.ResultFailed || res.Status == playbooks.ResultStillPresent || res.Status == playbooks.ResultNotSupported) {
				txt += ": " + res.Detail
			}
			fields = append(fields, T(B(displayName(res.Provider)), P("\n"+txt)))
			if res.Status == playbooks.ResultFailed || res.Status == playbooks.ResultStillPresent {
				failed = true
			}
		}
		r.Blocks = append(r.Blocks, Block{Kind: Section, Text: line, Fields: fields})
		if failed && st.Status == playbooks.StepFailed {
			retry = append(retry, Button{Label: "Retry " + st.Spec.Name, ActionID: ActRetry, Value: runValue(run.ID, i), Style: Primary})
		}
	}
	if len(retry) > 0 {
		r.Blocks = append(r.Blocks, Block{Kind: Actions, Buttons: retry})
	}
	r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("Updated " + stamp(run.Updated)))})
	return r
}

func subjectText(run playbooks.Run) string {
	if run.Subject.SlackID != "" {
		return run.Subject.SlackID
	}
	return run.Subject.Email
}

// evidenceBlocks shows the sign-in that started a run: device, IP,
// location and time, all untrusted text.
func evidenceBlocks(run playbooks.Run) []Block {
	ev := run.Evidence
	if ev == nil {
		var out []Block
		for _, t := range run.Targets {
			out = append(out, Block{Kind: Section, Text: T(B(displayName(t.Provider)), P(" "), C(t.Provider+":"+t.SessionID))})
		}
		return out
	}
	device := ev.Device
	if device == "" {
		device = "Unknown device"
	}
	fields := []Text{T(B("Device"), P("\n"+device)), T(B("Where"), P("\n"+displayName(ev.Provider)))}
	if ev.IP != "" {
		fields = append(fields, T(B("IP"), P("\n"+ev.IP)))
	}
	if ev.Location != "" {
		fields = append(fields, T(B("Location"), P("\n"+ev.Location)))
	}
	if !ev.At.IsZero() {
		fields = append(fields, T(B("When"), P("\n"+stamp(ev.At))))
	}
	out := []Block{{Kind: Section, Fields: fields}}
	if ev.SessionID != "" || ev.UserAgent != "" {
		ctx := T()
		if ev.SessionID != "" {
			ctx = append(ctx, C(ev.Provider+":"+ev.SessionID), P(" "))
		}
		if ev.UserAgent != "" {
			ctx = append(ctx, P(shorten(ev.UserAgent, 200)))
		}
		out = append(out, Block{Kind: Context, Text: ctx})
	}
	return out
}
