package playbooks

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// quorumBook needs two approvals from the security group (which holds the
// requester) or the subject, then revokes everything.
var quorumBook = Playbook{Name: "quorum2", Steps: []StepSpec{
	{Kind: KindApproval, Approvers: []string{"group:S0SEC", "user:" + subjectID}, Quorum: 2,
		EscalateAfter: Duration(4 * time.Hour), ExpireAfter: Duration(72 * time.Hour)},
	{Kind: KindRevokeSessions, Scope: ScopeAll},
	{Kind: KindNotifyUser},
}}

func withPlaybooks(v *env, extra ...Playbook) {
	prev := v.mod
	v.mod = func(c *Config) {
		c.Playbooks = Builtins()
		for _, p := range extra {
			c.Playbooks[p.Name] = p
		}
		if prev != nil {
			prev(c)
		}
	}
}

func results(r Run, step int) map[string]ResultStatus {
	out := map[string]ResultStatus{}
	for _, pr := range r.Steps[step].Results {
		out[pr.Provider] = pr.Status
	}
	return out
}

func TestRevokeAllVerifiesAtEveryProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos, entra, single, other := newIdP("kratos", listing), newIdP("entra", blind), newIdP("grid", oneByOne), newIdP("okta", blind)
		delete(other.users, subjectEmail)
		v := newEnv(t, kratos, entra, single, other)
		defer v.close()
		eng := v.start()

		run, err := eng.Start(t.Context(), startReq(PlaybookRevoke))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		r := v.get(run.ID)
		if r.State != RunSucceeded {
			t.Fatalf("state = %s, want succeeded; steps %+v", r.State, r.Steps)
		}
		want := map[string]ResultStatus{"kratos": ResultVerified, "entra": ResultRequested, "grid": ResultVerified, "okta": ResultNoAccount}
		if diff := cmp.Diff(want, results(r, 0)); diff != "" {
			t.Errorf("provider results (-want +got):\n%s", diff)
		}
		for _, pr := range r.Steps[0].Results {
			if pr.Provider == "entra" && pr.EffectWithin != 5*time.Minute {
				t.Errorf("entra effect within %v, want 5m", pr.EffectWithin)
			}
			if pr.Provider == "grid" && pr.Sessions != 2 {
				t.Errorf("grid ended %d sessions one by one, want 2", pr.Sessions)
			}
		}
		for _, p := range []*idp{kratos, entra, single} {
			if left := p.liveSessions(subjectEmail); len(left) != 0 {
				t.Errorf("%s: sessions left %v", p.name, left)
			}
		}
		if n := kratos.count("revoke_all") + single.count("revoke:s1") + single.count("revoke:s2"); n != 3 {
			t.Errorf("revoke calls = %d, want 3", n)
		}
		if got := v.note.of(NoticeNotifyUser); len(got) != 1 || got[0].To != subjectID {
			t.Errorf("notify_user notices = %+v, want one to the subject", got)
		}
		// The progress message is posted once, then edited in place.
		prog := v.note.of(NoticeProgress)
		if len(prog) < 3 || prog[0].Ref != (MessageRef{}) {
			t.Fatalf("progress notices = %+v", prog)
		}
		for _, p := range prog[1:] {
			if p.Ref != r.Messages[keyProgress] || p.To != requesterID {
				t.Errorf("progress notice %+v does not edit %+v", p, r.Messages[keyProgress])
			}
		}
		if last := prog[len(prog)-1]; last.State != RunSucceeded {
			t.Errorf("last progress shows %s", last.State)
		}
		// Every transition is audited in order; the chain verifies.
		got := v.actions()
		wantActions := []string{"run.start", "step.running",
			"session.revoke@entra:revoked", "session.revoke@grid:revoked", "session.revoke@kratos:revoked", "session.revoke@okta:no_account",
			"session.verify@entra:requested", "session.verify@grid:verified", "session.verify@kratos:verified",
			"step.done", "step.running", "step.done", "run.succeeded"}
		if diff := cmp.Diff(wantActions, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("audit actions (-want +got):\n%s", diff)
		}
		if got[0] != "run.start" || got[len(got)-1] != "run.succeeded" {
			t.Errorf("audit order: %v", got)
		}
		if _, err := v.db.Verify(t.Context()); err != nil {
			t.Errorf("audit chain: %v", err)
		}
	})
}

func TestApprovalQuorumAndWhoMayApprove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos := newIdP("kratos", listing)
		v := newEnv(t, kratos)
		withPlaybooks(v, quorumBook)
		defer v.close()
		eng := v.start()
		ctx := t.Context()

		run, err := eng.Start(ctx, startReq("quorum2"))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunWaiting || r.Steps[0].Status != StepAwaitingApproval {
			t.Fatalf("state %s / %s, want waiting / awaiting_approval", r.State, r.Steps[0].Status)
		}
		// The requester (in the group) and the subject (listed) were removed.
		if diff := cmp.Diff([]string{"U1", "U2", "U3"}, r.Steps[0].Approvers); diff != "" {
			t.Errorf("approvers (-want +got):\n%s", diff)
		}
		if n := len(v.note.of(NoticeApprovalRequest)); n != 3 {
			t.Errorf("%d approval requests, want 3", n)
		}

		for _, tc := range []struct {
			actor string
			want  error
		}{
			{"U9", ErrNotApprover},
			{requesterID, ErrSelfApproval},
			{subjectID, ErrSelfApproval},
		} {
			if _, err := eng.Decide(ctx, run.ID, 0, tc.actor, true, ""); !errors.Is(err, tc.want) {
				t.Errorf("Decide by %s: %v, want %v", tc.actor, err, tc.want)
			}
		}
		if _, err := eng.Decide(ctx, run.ID, 0, "U1", true, "ok"); err != nil {
			t.Fatalf("first approval: %v", err)
		}
		before := v.get(run.ID)
		if _, err := eng.Decide(ctx, run.ID, 0, "U1", true, "again"); !errors.Is(err, ErrAlreadyDecided) {
			t.Errorf("duplicate click: %v, want ErrAlreadyDecided", err)
		}
		if _, err := eng.Decide(ctx, run.ID, 0, "U1", false, "changed my mind"); !errors.Is(err, ErrAlreadyDecided) {
			t.Errorf("second click denying: %v, want ErrAlreadyDecided", err)
		}
		synctest.Wait()
		after := v.get(run.ID)
		if after.Version != before.Version || after.Steps[0].Approvals() != 1 || after.State != RunWaiting {
			t.Errorf("duplicate click changed the run: version %d -> %d, approvals %d, state %s",
				before.Version, after.Version, after.Steps[0].Approvals(), after.State)
		}
		if kratos.count("revoke_all") != 0 {
			t.Fatalf("revoked before quorum")
		}

		if _, err := eng.Decide(ctx, run.ID, 0, "U2", true, ""); err != nil {
			t.Fatalf("second approval: %v", err)
		}
		synctest.Wait()
		r = v.get(run.ID)
		if r.State != RunSucceeded || r.Steps[0].Status != StepApproved {
			t.Fatalf("after quorum: %s / %s", r.State, r.Steps[0].Status)
		}
		if kratos.count("revoke_all") != 1 {
			t.Errorf("revoke_all calls = %d, want 1", kratos.count("revoke_all"))
		}
		if _, err := eng.Decide(ctx, run.ID, 0, "U3", true, ""); !errors.Is(err, ErrFinished) {
			t.Errorf("late approval: %v, want ErrFinished", err)
		}
		// Each approver's message was rebuilt in place after the decisions.
		for _, u := range []string{"U1", "U2", "U3"} {
			ref := r.Messages[keyApproval(0, u)]
			n := 0
			for _, up := range v.note.of(NoticeApprovalUpdate) {
				if up.To == u {
					n++
					if up.Ref != ref {
						t.Errorf("update to %s edits %+v, want %+v", u, up.Ref, ref)
					}
				}
			}
			if n != 2 {
				t.Errorf("%d updates to %s, want 2 (one per decision)", n, u)
			}
		}
		refused := 0
		recs, _ := v.db.AuditBySubject(ctx, subjectID, 0)
		for _, rec := range recs {
			if rec.Action == "approval.refused" {
				refused++
			}
		}
		if refused != 3 {
			t.Errorf("%d refused attempts audited, want 3", refused)
		}
	})
}

func TestDenyFailsRunWithoutRevoking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos := newIdP("kratos", listing)
		v := newEnv(t, kratos)
		withPlaybooks(v, quorumBook)
		defer v.close()
		eng := v.start()
		run, err := eng.Start(t.Context(), startReq("quorum2"))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := eng.Decide(t.Context(), run.ID, 0, "U1", true, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Decide(t.Context(), run.ID, 0, "U2", false, "not yet"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunFailed || r.Steps[0].Status != StepDenied || r.Steps[1].Status != StepSkipped || r.Steps[2].Status != StepSkipped {
			t.Errorf("after deny: %s, steps %s %s %s", r.State, r.Steps[0].Status, r.Steps[1].Status, r.Steps[2].Status)
		}
		if kratos.count("revoke_all") != 0 || kratos.count("find") != 0 {
			t.Errorf("a denied run reached the provider: %v", kratos.calls)
		}
		if _, err := eng.Decide(t.Context(), run.ID, 0, "U3", true, ""); !errors.Is(err, ErrFinished) {
			t.Errorf("approval after deny: %v, want ErrFinished", err)
		}
	})
}

// Offboarding: the manager approves after a restart; each session is
// revoked exactly once, and the first engine revoked nothing.
func TestRestartWhileAwaitingApprovalRevokesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos := tokenIdP{newIdP("kratos", listing)}
		single := newIdP("grid", oneByOne)
		v := newEnv(t, kratos, single)
		defer v.close()
		eng := v.start()

		run, err := eng.Start(t.Context(), startReq(PlaybookOffboarding))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r := v.get(run.ID)
		if r.Steps[0].Status != StepAwaitingApproval || !slicesEqual(r.Steps[0].Approvers, []string{managerID}) {
			t.Fatalf("approval step: %s, approvers %v; want awaiting the manager", r.Steps[0].Status, r.Steps[0].Approvers)
		}
		time.Sleep(time.Hour)
		eng = v.restart()
		synctest.Wait()
		if n := len(v.note.of(NoticeApprovalRequest)); n != 1 {
			t.Errorf("%d approval requests after restart, want 1 (no re-post)", n)
		}
		if _, err := eng.Decide(t.Context(), run.ID, 0, managerID, true, "contract ended"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		v.restart()
		synctest.Wait()

		r = v.get(run.ID)
		if r.State != RunSucceeded {
			t.Fatalf("state %s, steps %+v", r.State, r.Steps)
		}
		if got := kratos.count("revoke_all"); got != 1 {
			t.Errorf("kratos revoke_all calls = %d, want 1", got)
		}
		for _, id := range []string{"s1", "s2"} {
			if got := single.count("revoke:" + id); got != 1 {
				t.Errorf("grid revoke %s calls = %d, want 1", id, got)
			}
		}
		if diff := cmp.Diff(map[string]ResultStatus{"kratos": ResultRevoked, "grid": ResultNotSupported}, results(r, 2)); diff != "" {
			t.Errorf("token results (-want +got):\n%s", diff)
		}
		if kratos.count("tokens") != 1 {
			t.Errorf("tokens revoked %d times, want 1", kratos.count("tokens"))
		}
		if n := len(v.note.of(NoticeNotifyChannel)); n != 1 {
			t.Errorf("%d notify_channel notices, want 1", n)
		}
		// Across both restarts the progress message was posted once and
		// then always edited in place.
		prog := v.note.of(NoticeProgress)
		for i, p := range prog {
			if (i == 0) != (p.Ref == MessageRef{}) {
				t.Errorf("progress notice %d has ref %+v", i, p.Ref)
			}
		}
	})
}

func TestApprovalExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos := newIdP("kratos", listing)
		v := newEnv(t, kratos)
		defer v.close()
		eng := v.start()
		run, err := eng.Start(t.Context(), startReq(PlaybookOffboarding))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		start := time.Now()
		time.Sleep(72*time.Hour - time.Second)
		synctest.Wait()
		if s := v.get(run.ID).State; s != RunWaiting {
			t.Fatalf("state just before expiry = %s", s)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunExpired || r.Steps[1].Status != StepSkipped {
			t.Fatalf("after 72h: %s, revoke step %s", r.State, r.Steps[1].Status)
		}
		exp := v.note.of(NoticeExpired)
		if len(exp) != 1 || exp[0].To != requesterID || exp[0].At.Sub(start) != 72*time.Hour {
			t.Errorf("expired notices = %+v", exp)
		}
		if _, err := eng.Decide(t.Context(), run.ID, 0, managerID, true, ""); !errors.Is(err, ErrFinished) {
			t.Errorf("approval after expiry: %v, want ErrFinished", err)
		}
		if kratos.count("revoke_all") != 0 {
			t.Errorf("an expired run revoked")
		}
		if a := v.actions(); a[len(a)-1] != "run.expired" {
			t.Errorf("last audit action %q, want run.expired", a[len(a)-1])
		}
	})
}

// The escalation deadline is saved with the step: an engine started later
// fires it at the saved time, once, and never again after a restart.
func TestEscalationFiresOnceFromPersistedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, newIdP("kratos", listing))
		v.mod = func(c *Config) { c.Approvers = []string{"S0SEC"} }
		defer v.close()
		eng := v.start()
		start := time.Now()
		run, err := eng.Start(t.Context(), startReq(PlaybookOffboarding))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		v.stop()
		time.Sleep(3 * time.Hour) // the engine is down for a while
		v.restart()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		esc := v.note.of(NoticeEscalation)
		if len(esc) != 1 || esc[0].To != secChannel || esc[0].At.Sub(start) != 4*time.Hour {
			t.Fatalf("escalations = %+v, want one to %s at +4h", esc, secChannel)
		}
		r := v.get(run.ID)
		if !r.Steps[0].Escalated {
			t.Errorf("escalation not saved")
		}
		// Escalation adds the fallback approvers (minus the requester).
		if diff := cmp.Diff([]string{managerID, "U1", "U2", "U3"}, r.Steps[0].Approvers); diff != "" {
			t.Errorf("approvers after escalation (-want +got):\n%s", diff)
		}
		v.restart()
		time.Sleep(10 * time.Hour)
		synctest.Wait()
		if n := len(v.note.of(NoticeEscalation)); n != 1 {
			t.Errorf("%d escalations after restart, want 1", n)
		}
	})
}

// A crash while a revoke step runs leaves it running; the next engine runs
// it again, and the provider sees one effective revoke.
func TestRunningStepIsResumed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		crashOn    string // the call during which the process "dies"
		revokeAlls int    // RevokeAll calls in total
	}{
		{"after the provider revoked, before the answer was saved", "revoke_all", 2},
		{"while verifying", "list", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				kratos := newIdP("kratos", listing)
				crashed := make(chan struct{})
				kratos.after = func(ctx context.Context, op string, n int) error {
					if op == tc.crashOn && n == 1 {
						close(crashed)
						<-ctx.Done() // hangs until the process stops
						return ctx.Err()
					}
					return nil
				}
				v := newEnv(t, kratos)
				defer v.close()
				eng := v.start()
				run, err := eng.Start(t.Context(), startReq(PlaybookRevoke))
				if err != nil {
					t.Fatal(err)
				}
				<-crashed
				v.stop()
				r := v.get(run.ID)
				if r.State != RunRunning || r.Steps[0].Status != StepRunning {
					t.Fatalf("after crash: %s / %s, want running / running", r.State, r.Steps[0].Status)
				}
				v.restart()
				synctest.Wait()
				r = v.get(run.ID)
				if r.State != RunSucceeded || results(r, 0)["kratos"] != ResultVerified {
					t.Fatalf("after resume: %s, results %v", r.State, results(r, 0))
				}
				if r.Steps[0].Attempts != 2 {
					t.Errorf("step attempts = %d, want 2", r.Steps[0].Attempts)
				}
				if got := kratos.count("revoke_all"); got != tc.revokeAlls {
					t.Errorf("revoke_all calls = %d, want %d", got, tc.revokeAlls)
				}
				if got := kratos.effectiveRevokes(); got != 1 {
					t.Errorf("effective revokes = %d, want 1", got)
				}
			})
		})
	}
}

func TestRecoverableErrorRetriedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos := newIdP("kratos", listing)
		var at []time.Time
		kratos.hook = func(ctx context.Context, op string, n int) error {
			if op == "revoke_all" {
				at = append(at, time.Now())
				if n <= 2 {
					return errors.New("kratos DELETE /admin/identities/x/sessions: status 503")
				}
			}
			return nil
		}
		v := newEnv(t, kratos)
		defer v.close()
		eng := v.start()
		run, err := eng.Start(t.Context(), startReq(PlaybookRevoke))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunSucceeded {
			t.Fatalf("state %s, steps %+v", r.State, r.Steps)
		}
		if len(at) != 3 || at[1].Sub(at[0]) != time.Second || at[2].Sub(at[1]) != 2*time.Second {
			t.Errorf("attempts at %v, want 3 with waits 1s then 2s", at)
		}
		if r.Steps[0].Attempts != 3 || r.Steps[0].Results[0].Attempts != 3 {
			t.Errorf("attempts: step %d, provider %d; want 3 and 3", r.Steps[0].Attempts, r.Steps[0].Results[0].Attempts)
		}
		if kratos.effectiveRevokes() != 1 {
			t.Errorf("effective revokes %d", kratos.effectiveRevokes())
		}
	})
}

func TestMaxAttemptsThenFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos := newIdP("kratos", listing)
		kratos.hook = func(ctx context.Context, op string, n int) error {
			if op == "revoke_all" {
				return errors.New("status 502")
			}
			return nil
		}
		v := newEnv(t, kratos)
		v.mod = func(c *Config) { c.MaxAttempts = 3 }
		defer v.close()
		eng := v.start()
		run, _ := eng.Start(t.Context(), startReq(PlaybookRevoke))
		time.Sleep(time.Hour)
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunFailed || r.Steps[0].Status != StepFailed || r.Steps[0].Attempts != 3 || kratos.count("revoke_all") != 3 {
			t.Errorf("after 3 failures: %s / %s, attempts %d, calls %d", r.State, r.Steps[0].Status, r.Steps[0].Attempts, kratos.count("revoke_all"))
		}
		if r.Steps[0].Error != "kratos: revoke: status 502" {
			t.Errorf("step error %q", r.Steps[0].Error)
		}
	})
}

// Refused credentials are not retried; Retry runs the step again at the
// failed provider only.
func TestRetryRerunsFailedProvidersOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		good, bad := newIdP("kratos", listing), newIdP("okta", blind)
		refuse := true
		bad.hook = func(ctx context.Context, op string, n int) error {
			if op == "find" && refuse {
				return fmt.Errorf("okta GET /api/v1/users: status 401: %w", sessions.ErrUnauthorized)
			}
			return nil
		}
		v := newEnv(t, good, bad)
		defer v.close()
		eng := v.start()
		run, _ := eng.Start(t.Context(), startReq(PlaybookRevoke))
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunFailed || r.Steps[0].Attempts != 1 || r.Steps[1].Status != StepSkipped {
			t.Fatalf("after 401: %s, attempts %d, next step %s", r.State, r.Steps[0].Attempts, r.Steps[1].Status)
		}
		if diff := cmp.Diff(map[string]ResultStatus{"kratos": ResultVerified, "okta": ResultFailed}, results(r, 0)); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if _, err := eng.Retry(t.Context(), run.ID, 1, "UOPS"); !errors.Is(err, ErrNotRetryable) {
			t.Errorf("Retry of a skipped step: %v, want ErrNotRetryable", err)
		}
		refuse = false
		if _, err := eng.Retry(t.Context(), run.ID, 0, "UOPS"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r = v.get(run.ID)
		if r.State != RunSucceeded {
			t.Fatalf("after retry: %s %+v", r.State, r.Steps)
		}
		if good.count("find") != 1 || good.count("revoke_all") != 1 || bad.count("revoke_all") != 1 {
			t.Errorf("calls: kratos find %d revoke %d, okta revoke %d; want 1, 1, 1",
				good.count("find"), good.count("revoke_all"), bad.count("revoke_all"))
		}
		if _, err := eng.Retry(t.Context(), run.ID, 0, "UOPS"); !errors.Is(err, ErrFinished) {
			t.Errorf("Retry of a succeeded run: %v, want ErrFinished", err)
		}
	})
}

func TestSurvivorFailsStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos := newIdP("kratos", listing)
		kratos.survivor = "s2"
		v := newEnv(t, kratos)
		defer v.close()
		eng := v.start()
		run, _ := eng.Start(t.Context(), startReq(PlaybookRevoke))
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunFailed || results(r, 0)["kratos"] != ResultStillPresent || r.Steps[0].Attempts != 1 {
			t.Fatalf("survivor: %s, results %v, attempts %d", r.State, results(r, 0), r.Steps[0].Attempts)
		}
		if r.Steps[0].Error != "kratos: a session is still present" {
			t.Errorf("error %q", r.Steps[0].Error)
		}
		kratos.mu.Lock()
		kratos.survivor = ""
		kratos.mu.Unlock()
		if _, err := eng.Retry(t.Context(), run.ID, 0, "UOPS"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := v.get(run.ID); r.State != RunSucceeded {
			t.Errorf("after retry: %s", r.State)
		}
	})
}

func TestListedScopeRevokesOnlyTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos, entra := newIdP("kratos", listing), newIdP("entra", blind)
		v := newEnv(t, kratos, entra)
		defer v.close()
		eng := v.start()
		req := startReq(PlaybookLostDevice)
		req.Targets = []Target{{Provider: "kratos", SessionID: "s2"}, {Provider: "entra", SessionID: "e1"}}
		run, err := eng.Start(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r := v.get(run.ID)
		if diff := cmp.Diff(map[string]ResultStatus{"kratos": ResultVerified, "entra": ResultNotSupported}, results(r, 0)); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if left := kratos.liveSessions(subjectEmail); !slicesEqual(left, []string{"s1"}) {
			t.Errorf("kratos sessions left %v, want [s1]", left)
		}
		if entra.count("revoke_all") != 0 {
			t.Errorf("listed scope signed out everywhere at entra")
		}
	})
}

func TestPlanChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kratos, entra, single := tokenIdP{newIdP("kratos", listing)}, newIdP("entra", blind), newIdP("grid", oneByOne)
		delete(single.users, subjectEmail)
		v := newEnv(t, kratos, entra, single)
		defer v.close()
		eng := v.start()
		plan, err := eng.Plan(t.Context(), startReq(PlaybookOffboarding))
		if err != nil {
			t.Fatal(err)
		}
		if !slicesEqual(plan.Steps[0].Approvers, []string{managerID}) {
			t.Errorf("approvers %v", plan.Steps[0].Approvers)
		}
		type row struct {
			Provider string
			Action   PlanAction
			Sessions int
			Cannot   bool
		}
		var got []row
		for _, p := range plan.Steps[1].Providers {
			got = append(got, row{p.Provider, p.Action, len(p.Sessions), p.Cannot != ""})
		}
		want := []row{{"kratos", PlanSignOutAll, 2, false}, {"entra", PlanSignOutAll, 0, true}, {"grid", PlanNoAccount, 0, false}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("revoke plan (-want +got):\n%s", diff)
		}
		if a := plan.Steps[2].Providers; a[0].Action != PlanRevokeTokens || a[1].Action != PlanNotSupported {
			t.Errorf("token plan %+v", a)
		}
		for _, p := range []*idp{kratos.idp, entra, single} {
			if p.count("revoke_all")+p.count("tokens") != 0 {
				t.Errorf("%s: plan revoked", p.name)
			}
		}
		runs, _ := eng.List(t.Context(), false)
		if len(runs) != 0 {
			t.Errorf("plan saved %d runs", len(runs))
		}
	})
}

var confirmBook = Playbook{Name: "new-device", Steps: []StepSpec{
	{Kind: KindConfirmUser, Timeout: Duration(30 * time.Minute), ExpireAfter: Duration(4 * time.Hour)},
	{Kind: KindRevokeSessions, Scope: ScopeListed},
}}

func TestConfirmWithUser(t *testing.T) {
	for _, yes := range []bool{true, false} {
		t.Run(fmt.Sprint("yes=", yes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				kratos := newIdP("kratos", listing)
				v := newEnv(t, kratos)
				withPlaybooks(v, confirmBook)
				defer v.close()
				eng := v.start()
				req := startReq("new-device")
				req.Requester = ActorSystem
				req.Targets = []Target{{Provider: "kratos", SessionID: "s1"}}
				run, err := eng.Start(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if n := len(v.note.of(NoticeConfirmRequest)); n != 1 {
					t.Fatalf("%d confirm requests", n)
				}
				time.Sleep(31 * time.Minute)
				synctest.Wait()
				if n := len(v.note.of(NoticeEscalation)); n != 1 {
					t.Errorf("%d escalations after the timeout, want 1", n)
				}
				if _, err := eng.Confirm(t.Context(), run.ID, 0, "U1", yes); !errors.Is(err, ErrNotSubject) {
					t.Errorf("answer by another user: %v, want ErrNotSubject", err)
				}
				if _, err := eng.Confirm(t.Context(), run.ID, 0, subjectID, yes); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				r := v.get(run.ID)
				if r.State != RunSucceeded {
					t.Fatalf("state %s", r.State)
				}
				wantRevokes := 0
				if !yes {
					wantRevokes = 1
				}
				if got := kratos.count("revoke:s1"); got != wantRevokes {
					t.Errorf("revoke s1 calls = %d, want %d", got, wantRevokes)
				}
				if _, err := eng.Confirm(t.Context(), run.ID, 0, subjectID, !yes); !errors.Is(err, ErrFinished) {
					t.Errorf("second answer: %v, want ErrFinished", err)
				}
			})
		})
	}
}

func TestConfirmExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, newIdP("kratos", listing))
		withPlaybooks(v, confirmBook)
		defer v.close()
		eng := v.start()
		req := startReq("new-device")
		req.Targets = []Target{{Provider: "kratos", SessionID: "s1"}}
		run, _ := eng.Start(t.Context(), req)
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		if r := v.get(run.ID); r.State != RunExpired {
			t.Errorf("state %s, want expired", r.State)
		}
		if _, err := eng.Confirm(t.Context(), run.ID, 0, subjectID, false); !errors.Is(err, ErrFinished) {
			t.Errorf("late answer: %v, want ErrFinished", err)
		}
	})
}

func TestApproversFallbackAndNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, newIdP("kratos", listing))
		delete(v.dir.users, managerEmail) // the manager is not in Slack
		defer v.close()
		eng := v.start()
		run, _ := eng.Start(t.Context(), startReq(PlaybookOffboarding))
		synctest.Wait()
		r := v.get(run.ID)
		if r.State != RunFailed || r.Steps[0].Status != StepFailed || r.Steps[0].Error == "" {
			t.Fatalf("no approvers: %s / %s %q", r.State, r.Steps[0].Status, r.Steps[0].Error)
		}
		v.stop()
		v.mod = func(c *Config) { c.Approvers = []string{"U0777", requesterID} }
		eng = v.restart()
		run, _ = eng.Start(t.Context(), startReq(PlaybookOffboarding))
		synctest.Wait()
		if got := v.get(run.ID).Steps[0].Approvers; !slicesEqual(got, []string{"U0777"}) {
			t.Errorf("fallback approvers %v, want [U0777] (requester removed)", got)
		}
	})
}

func TestStartRejectsBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, newIdP("kratos", listing))
		defer v.close()
		eng := v.start()
		tests := []struct {
			name string
			mod  func(*StartRequest)
			want error
		}{
			{"unknown playbook", func(r *StartRequest) { r.Playbook = "nope" }, ErrUnknownPlaybook},
			{"no email", func(r *StartRequest) { r.Subject.Email = "" }, ErrInvalidRequest},
			{"device without targets", func(r *StartRequest) { r.Playbook = PlaybookLostDevice }, ErrInvalidRequest},
			{"unknown provider", func(r *StartRequest) { r.Targets = []Target{{Provider: "x", SessionID: "1"}} }, ErrInvalidRequest},
			{"no requester", func(r *StartRequest) { r.Requester = "" }, ErrInvalidRequest},
		}
		for _, tt := range tests {
			req := startReq(PlaybookRevoke)
			tt.mod(&req)
			if _, err := eng.Start(t.Context(), req); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		}
		if runs, _ := eng.List(t.Context(), false); len(runs) != 0 {
			t.Errorf("%d runs saved", len(runs))
		}
		if _, err := eng.Get(t.Context(), "missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get missing: %v", err)
		}
	})
}

func TestNewValidatesConfig(t *testing.T) {
	db, err := storage.Open(t.TempDir()+"/w.db", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inv, _ := sessions.NewInventory(sessions.InventoryConfig{})
	bad := Builtins()
	bad["x"] = Playbook{Name: "x"}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{Inventory: inv}},
		{"no inventory", Config{Store: db}},
		{"bad approver", Config{Store: db, Inventory: inv, Approvers: []string{"bob"}}},
		{"bad channel", Config{Store: db, Inventory: inv, SecurityChannel: "#sec"}},
		{"bad playbook", Config{Store: db, Inventory: inv, Playbooks: bad}},
	} {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	if _, err := New(Config{Store: db, Inventory: inv}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestListOpenRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, newIdP("kratos", listing))
		defer v.close()
		eng := v.start()
		done, _ := eng.Start(t.Context(), startReq(PlaybookRevoke))
		synctest.Wait()
		time.Sleep(time.Second)
		open, _ := eng.Start(t.Context(), startReq(PlaybookOffboarding))
		synctest.Wait()
		all, _ := eng.List(t.Context(), false)
		waiting, _ := eng.List(t.Context(), true)
		if len(all) != 2 || len(waiting) != 1 || waiting[0].ID != open.ID || all[0].ID != done.ID {
			t.Errorf("List: all %d, open %d", len(all), len(waiting))
		}
		if err := eng.Run(t.Context()); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run: %v, want ErrRunning", err)
		}
	})
}

func slicesEqual(a, b []string) bool { return cmp.Equal(a, b, cmpopts.EquateEmpty()) }
