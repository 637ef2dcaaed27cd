package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-sec/warden/internal/crashtest"
	"github.com/warden-sec/warden/internal/slackfake"
)

const securityChannel = "C0SECURITY"

var runIDRe = regexp.MustCompile("Started (?:offboarding|revocation) `?([0-9a-f-]{36})")

// startedRun returns the run id a /sessions revoke or offboard reply names.
func startedRun(t *testing.T, r slackfake.Response) string {
	t.Helper()
	m := runIDRe.FindStringSubmatch(visible(t, r.Text, r.Blocks))
	if m == nil {
		t.Fatalf("reply names no started run:\n%s", visible(t, r.Text, r.Blocks))
	}
	return m[1]
}

// approvalRequest waits for the approval request in approver's DM.
func (w *warden) approvalRequest(t *testing.T, approver string) slackfake.Message {
	t.Helper()
	return w.awaitDM(t, approver, "asks for approval")
}

// click presses a button of a posted message as user and returns the
// ephemeral answer.
func (w *warden) click(t *testing.T, user string, m slackfake.Message, actionID string) slackfake.Response {
	t.Helper()
	value := firstButtonValue(t, m.Blocks, actionID)
	env, err := w.slack.Click(user, m.Channel, m.TS, actionID, value)
	if err != nil {
		t.Fatalf("click %s: %v", actionID, err)
	}
	return awaitNthResponse(t, w.slack, env, 1)
}

// clickStale presses a button on m as it was when captured, even if the
// message has since been updated.
func (w *warden) clickStale(t *testing.T, user string, m slackfake.Message, actionID string) slackfake.Response {
	t.Helper()
	env, err := w.slack.ClickStale(user, m, actionID, firstButtonValue(t, m.Blocks, actionID))
	if err != nil {
		t.Fatalf("click %s: %v", actionID, err)
	}
	return awaitNthResponse(t, w.slack, env, 1)
}

func sessionsOf(t *testing.T, w *warden, user string) string {
	t.Helper()
	r := w.command(t, user, "mine")
	return visible(t, r.Text, r.Blocks)
}

func TestOffboardingNeedsTheManagersApproval(t *testing.T) {
	w := startWarden(t, map[string]string{"WARDEN_SECURITY_CHANNEL": securityChannel})
	r := w.command(t, alice.ID, "offboard <@U0DAVE|dave> contract ended")
	runID := startedRun(t, r)

	// carol is dave's manager at the demo provider: she is asked.
	req := w.approvalRequest(t, carol.ID)
	if got := visible(t, req.Text, req.Blocks); !strings.Contains(got, "contract ended") || !strings.Contains(got, "<@U0DAVE>") {
		t.Errorf("approval request lacks the subject or reason:\n%s", got)
	}

	// Nobody else's click counts, and each refusal is explained.
	for _, tc := range []struct{ who, want string }{
		{bob.ID, "not one of the approvers"},
		{alice.ID, "cannot approve a request you made"},
		{dave.ID, "cannot approve a request you made or one about yourself"},
	} {
		if got := w.click(t, tc.who, req, "pb.approve"); !strings.Contains(got.Text, tc.want) {
			t.Errorf("approve by %s answered %q, want %q", tc.who, got.Text, tc.want)
		}
	}
	if !strings.Contains(sessionsOf(t, w, dave.ID), "unmanaged device") {
		t.Fatalf("dave's sessions were revoked before approval")
	}

	if got := w.click(t, carol.ID, req, "pb.approve"); !strings.Contains(got.Text, "Approved") {
		t.Errorf("carol's approval answered %q", got.Text)
	}
	// The request message is rebuilt in place: who decided, no buttons.
	updated := w.awaitDM(t, carol.ID, "Approved by")
	if updated.TS != req.TS {
		t.Errorf("decision posted as a new message (ts %s), want the request (ts %s) updated", updated.TS, req.TS)
	}
	if strings.Contains(string(updated.Blocks), "pb.approve") {
		t.Errorf("decided request still has buttons")
	}
	// A second click (on the request as her client still showed it)
	// changes nothing.
	if got := w.clickStale(t, carol.ID, req, "pb.approve"); !strings.Contains(got.Text, "already") {
		t.Errorf("second click answered %q", got.Text)
	}

	w.awaitDM(t, alice.ID, "succeeded")
	w.awaitDM(t, dave.ID, "offboarding")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := w.slack.AwaitMessage(ctx, securityChannel, func(m slackfake.Message) bool {
		return strings.Contains(visible(t, m.Text, m.Blocks), runID)
	}); err != nil {
		t.Errorf("security channel was not told: %v", err)
	}
	got := sessionsOf(t, w, dave.ID)
	if !strings.Contains(got, "0 records") {
		t.Errorf("after offboarding dave still has sessions or tokens:\n%s", got)
	}
	st := w.command(t, alice.ID, "status "+runID)
	if s := visible(t, st.Text, st.Blocks); !strings.Contains(s, "approved by <@U0CAROL>") || !strings.Contains(s, "succeeded") {
		t.Errorf("status does not show who approved and the result:\n%s", s)
	}
	if s := w.command(t, erin.ID, "status "+runID); !strings.Contains(s.Text, "no run with that id") {
		t.Errorf("an unrelated user saw the run: %q", s.Text)
	}
}

func TestDenyAsksForAReasonAndRevokesNothing(t *testing.T) {
	w := startWarden(t, nil)
	w.command(t, alice.ID, "offboard <@U0DAVE|dave>")
	req := w.approvalRequest(t, carol.ID)
	value := firstButtonValue(t, req.Blocks, "pb.deny")
	env, err := w.slack.Click(carol.ID, req.Channel, req.TS, "pb.deny", value)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var viewID string
	if err := w.slack.Await(ctx, func() bool {
		for _, v := range w.slack.Views() {
			if v.Open && v.User == carol.ID {
				viewID = v.ID
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no modal opened for the denial (click %s): %v", env, err)
	}
	// An empty reason keeps the modal open with an error.
	sub, err := w.slack.Submit(carol.ID, viewID, map[string]string{"reason": "  "})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := w.slack.WaitAck(ctx, sub)
	if err != nil || !strings.Contains(string(ack.Payload), "errors") {
		t.Errorf("empty reason: ack %s, %v; want field errors", ack.Payload, err)
	}
	if _, err := w.slack.Submit(carol.ID, viewID, map[string]string{"reason": "dave is staying on"}); err != nil {
		t.Fatal(err)
	}
	denied := w.awaitDM(t, carol.ID, "Denied by")
	if got := visible(t, denied.Text, denied.Blocks); !strings.Contains(got, "dave is staying on") {
		t.Errorf("denied request does not show why:\n%s", got)
	}
	w.awaitDM(t, alice.ID, "failed")
	if !strings.Contains(sessionsOf(t, w, dave.ID), "unmanaged device") {
		t.Errorf("a denied offboarding revoked sessions")
	}
}

func TestRevokeDryRunChangesNothing(t *testing.T) {
	w := startWarden(t, nil)
	before := sessionsOf(t, w, bob.ID)
	r := w.command(t, alice.ID, "revoke <@U0BOB|bob> all --dry-run checking")
	got := visible(t, r.Text, r.Blocks)
	for _, want := range []string{"Dry run", "nothing was changed", "would sign out everywhere", "demo:ds-bob-linux-firefox"} {
		if !strings.Contains(got, want) {
			t.Errorf("dry run does not say %q:\n%s", want, got)
		}
	}
	if after := sessionsOf(t, w, bob.ID); after != before {
		t.Errorf("dry run changed bob's sessions:\nbefore %s\nafter %s", before, after)
	}
	if r := w.command(t, bob.ID, "revoke <@U0ERIN|erin> all"); !strings.Contains(r.Text, "Only incident responders") {
		t.Errorf("a non-responder's revoke answered %q", r.Text)
	}
}

func TestRevokeAllIsVerified(t *testing.T) {
	w := startWarden(t, nil)
	r := w.command(t, alice.ID, "revoke <@U0BOB|bob> all phished")
	runID := startedRun(t, r)
	done := w.awaitDM(t, alice.ID, "succeeded")
	if got := visible(t, done.Text, done.Blocks); !strings.Contains(got, "verified gone") || !strings.Contains(got, runID) {
		t.Errorf("progress message:\n%s", got)
	}
	if got := sessionsOf(t, w, bob.ID); !strings.Contains(got, "python-requests") || strings.Contains(got, "Firefox") {
		t.Errorf("revoke all should end browser sessions and leave tokens at the demo provider:\n%s", got)
	}
	w.awaitDM(t, bob.ID, "ended some of your sessions")
}

func TestRestartWhileAwaitingApprovalRevokesOnce(t *testing.T) {
	data := filepath.Join(t.TempDir(), "warden.db")
	s := newSlack(t)
	env := map[string]string{"WARDEN_DATA": data, "WARDEN_SECURITY_CHANNEL": securityChannel}
	w := startWardenOn(t, s, env)
	w.command(t, alice.ID, "offboard <@U0DAVE|dave>")
	req := w.approvalRequest(t, carol.ID)
	if code := w.shutdown(t); code != exitOK {
		t.Fatalf("shutdown exit %d", code)
	}

	// A new process on the same data file and the same Slack: carol's click
	// on the request she already has reaches it.
	w2 := startWardenOn(t, s, env)
	if got := w2.click(t, carol.ID, req, "pb.approve"); !strings.Contains(got.Text, "Approved") {
		t.Fatalf("approval after restart answered %q", got.Text)
	}
	w2.awaitDM(t, alice.ID, "succeeded")
	w2.shutdown(t)
	revokes := map[string]int{}
	for _, rec := range auditOf(t, data, dave.ID) {
		if rec.Action == "session.revoke" || rec.Action == "token.revoke" {
			revokes[rec.Action+"/"+rec.Provider+"/"+rec.Outcome]++
		}
	}
	if len(revokes) == 0 {
		t.Errorf("nothing was revoked after the restart")
	}
	for k, n := range revokes {
		if n != 1 {
			t.Errorf("%s recorded %d times, want once", k, n)
		}
	}
}

func TestApprovalEscalatesThenExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(path, []byte(`playbooks:
  - name: contractor-offboarding
    description: fast timers for the test
    steps:
      - kind: approval
        name: manager approval
        approvers: [manager]
        escalate_after: 1s
        expire_after: 2s
      - kind: revoke_sessions
        name: end every session
        scope: all
`), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWarden(t, map[string]string{"WARDEN_SECURITY_CHANNEL": securityChannel, "WARDEN_PLAYBOOKS": path})
	runID := startedRun(t, w.command(t, alice.ID, "offboard <@U0DAVE|dave>"))
	req := w.approvalRequest(t, carol.ID)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if _, err := w.slack.AwaitMessage(ctx, securityChannel, func(m slackfake.Message) bool {
		return strings.Contains(visible(t, m.Text, m.Blocks), "Overdue") && strings.Contains(visible(t, m.Text, m.Blocks), runID)
	}); err != nil {
		t.Fatalf("no escalation in the security channel: %v", err)
	}
	expired := w.awaitDM(t, carol.ID, "Expired")
	if expired.TS != req.TS || strings.Contains(string(expired.Blocks), "pb.approve") {
		t.Errorf("the request was not updated in place without buttons")
	}
	if got := w.clickStale(t, carol.ID, req, "pb.approve"); !strings.Contains(got.Text, "already finished or expired") {
		t.Errorf("click after expiry answered %q", got.Text)
	}
	if !strings.Contains(sessionsOf(t, w, dave.ID), "unmanaged device") {
		t.Errorf("an expired offboarding revoked sessions")
	}
	var escalations int
	for _, m := range w.slack.Messages(securityChannel) {
		if strings.Contains(visible(t, m.Text, m.Blocks), "Overdue") {
			escalations++
		}
	}
	if escalations != 1 {
		t.Errorf("%d escalations posted, want 1", escalations)
	}
}

func TestOffboardingWithoutSecurityChannelSkipsTheNotice(t *testing.T) {
	w := startWarden(t, nil)
	w.command(t, alice.ID, "offboard <@U0DAVE|dave>")
	w.click(t, carol.ID, w.approvalRequest(t, carol.ID), "pb.approve")
	done := w.awaitDM(t, alice.ID, "succeeded")
	if got := visible(t, done.Text, done.Blocks); !strings.Contains(got, "tell security* — skipped: no channel to tell") {
		t.Errorf("progress should show the security notice skipped, with why:\n%s", got)
	}
}

func TestSurvivingSessionOffersRetry(t *testing.T) {
	idp := crashtest.NewKratos(t)
	bobID := idp.AddIdentity(bob.Email)
	idp.AddSession(bobID, winChrome, "203.0.113.40")
	idp.AddSession(bobID, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148", "203.0.113.41")
	idp.Sticky(bobID, true) // the provider says yes, but the sessions stay
	w := startWarden(t, map[string]string{"WARDEN_PROVIDERS": "kratos", "KRATOS_ADMIN_URL": idp.URL()})

	startedRun(t, w.command(t, alice.ID, "revoke <@U0BOB|bob> all"))
	failed := w.awaitDM(t, alice.ID, "failed")
	if got := visible(t, failed.Text, failed.Blocks); !strings.Contains(got, "still present") {
		t.Errorf("progress does not say a session survived:\n%s", got)
	}
	// Only the requester or a responder may retry.
	if r := w.click(t, erin.ID, failed, "pb.retry"); !strings.Contains(r.Text, "Only incident responders") {
		t.Errorf("erin's retry answered %q", r.Text)
	}
	idp.Sticky(bobID, false)
	if r := w.click(t, alice.ID, failed, "pb.retry"); !strings.Contains(r.Text, "Retrying") {
		t.Errorf("retry answered %q", r.Text)
	}
	done := w.awaitDM(t, alice.ID, "succeeded")
	if got := visible(t, done.Text, done.Blocks); !strings.Contains(got, "verified gone") || strings.Contains(string(done.Blocks), "pb.retry") {
		t.Errorf("after the retry the run should be verified with no Retry button:\n%s", got)
	}
	if live := idp.Live(bobID); len(live) != 0 {
		t.Errorf("bob still has live sessions at the provider: %v", live)
	}
}
