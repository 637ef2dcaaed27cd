package playbooks

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-sec/warden/internal/metricstest"
)

// metricsApprovalBook: one approval (expiring in a day), then revoke all
// sessions and tokens.
var metricsApprovalBook = Playbook{Name: "approve-then-revoke", Steps: []StepSpec{
	{Kind: KindApproval, Approvers: []string{"user:U0APPR"}, ExpireAfter: Duration(24 * time.Hour)},
	{Kind: KindRevokeSessions, Scope: ScopeAll},
	{Kind: KindRevokeTokens},
}}

// metricsConfirmBook asks the subject, escalating after 30 minutes and
// expiring after 4 hours (or only expiring, when noTimeout).
func metricsConfirmBook(noTimeout bool) Playbook {
	s := StepSpec{Kind: KindConfirmUser, Timeout: Duration(30 * time.Minute), ExpireAfter: Duration(4 * time.Hour)}
	if noTimeout {
		s.Timeout = 0
	}
	return Playbook{Name: "was-it-you", Steps: []StepSpec{s, {Kind: KindRevokeSessions, Scope: ScopeListed}}}
}

// withMetrics gives the env's engines m.
func withMetrics(v *env, m *Metrics) {
	prev := v.mod
	v.mod = func(c *Config) {
		if prev != nil {
			prev(c)
		}
		c.Metrics = m
	}
}

func newPlaybookMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// A run waits 10 minutes for its approval, then revokes at a provider that
// can list (verified) and one that cannot (requested), and revokes tokens:
// the state counters, the pending-approval gauge, the decision latency,
// the revocation results and the time to revoke all show it.
func TestMetricsFollowAnApprovedRevocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reg := newPlaybookMetrics(t)
		kratos, entra := tokenIdP{newIdP("kratos", listing)}, newIdP("entra", blind)
		v := newEnv(t, kratos, entra)
		withPlaybooks(v, metricsApprovalBook)
		withMetrics(v, m)
		defer v.close()
		eng := v.start()
		pb := metricsApprovalBook.Name
		val := func(name string, labels ...string) float64 { return metricstest.Value(t, reg, name, labels...) }

		run, err := eng.Start(t.Context(), startReq(pb))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := val("warden_playbook_pending_approvals"); got != 1 {
			t.Errorf("pending approvals = %v while awaiting, want 1", got)
		}
		if got := val("warden_playbook_runs_open", "playbook", pb, "state", "waiting"); got != 1 {
			t.Errorf("open waiting runs = %v, want 1", got)
		}
		time.Sleep(10 * time.Minute)
		if _, err := eng.Decide(t.Context(), run.ID, 0, "U0APPR", true, ""); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := v.get(run.ID); r.State != RunSucceeded {
			t.Fatalf("run %s, want succeeded", r.State)
		}

		for state, want := range map[string]float64{"running": 2, "waiting": 1, "succeeded": 1, "failed": 0} {
			if got := val("warden_playbook_runs_total", "playbook", pb, "state", state); got != want {
				t.Errorf("runs_total{state=%s} = %v, want %v", state, got, want)
			}
		}
		if got := val("warden_playbook_pending_approvals"); got != 0 {
			t.Errorf("pending approvals = %v after the decision, want 0", got)
		}
		if got := val("warden_playbook_runs_open", "playbook", pb, "state", "waiting"); got != 0 {
			t.Errorf("open waiting runs = %v after the run finished, want 0", got)
		}
		const decision = "warden_playbook_approval_decision_seconds"
		if n, sum := val(decision, "playbook", pb, "decision", "approve"), metricstest.Sum(t, reg, decision, "playbook", pb, "decision", "approve"); n != 1 || sum != 600 {
			t.Errorf("decision latency: %v samples summing %vs, want 1 of 600s", n, sum)
		}
		for _, tc := range []struct {
			provider, kind, result string
			want                   float64
		}{
			{"kratos", "sessions", "revoked", 1},
			{"kratos", "sessions", "verified", 1},
			{"entra", "sessions", "requested", 1},
			{"kratos", "tokens", "revoked", 1},
			{"entra", "tokens", "not_supported", 1},
		} {
			if got := val("warden_playbook_revocations_total", "provider", tc.provider, "kind", tc.kind, "result", tc.result); got != tc.want {
				t.Errorf("revocations{%s,%s,%s} = %v, want %v", tc.provider, tc.kind, tc.result, got, tc.want)
			}
		}
		const ttr = "warden_playbook_time_to_revoke_seconds"
		if n, sum := val(ttr, "playbook", pb, "kind", "sessions"), metricstest.Sum(t, reg, ttr, "playbook", pb, "kind", "sessions"); n != 2 || sum != 1200 {
			t.Errorf("time to revoke sessions: %v samples summing %vs, want 2 of 600s (the approval wait)", n, sum)
		}
		if n := val(ttr, "playbook", pb, "kind", "tokens"); n != 1 {
			t.Errorf("time to revoke tokens: %v samples, want 1", n)
		}
	})
}

// After a restart the gauges know the run still awaiting approval, and the
// decision latency is recovered from the persisted deadline.
func TestMetricsSurviveRestartWhileAwaitingApproval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, newIdP("kratos", listing))
		withPlaybooks(v, metricsApprovalBook)
		defer v.close()
		v.start()
		run, err := v.eng.Start(t.Context(), startReq(metricsApprovalBook.Name))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		time.Sleep(time.Hour)

		m, reg := newPlaybookMetrics(t) // a new process
		withMetrics(v, m)
		eng := v.restart()
		synctest.Wait()
		if got := metricstest.Value(t, reg, "warden_playbook_pending_approvals"); got != 1 {
			t.Errorf("pending approvals after restart = %v, want 1", got)
		}
		time.Sleep(time.Hour)
		if _, err := eng.Decide(t.Context(), run.ID, 0, "U0APPR", false, "no"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		const decision = "warden_playbook_approval_decision_seconds"
		if n, sum := metricstest.Value(t, reg, decision, "playbook", metricsApprovalBook.Name, "decision", "deny"),
			metricstest.Sum(t, reg, decision, "playbook", metricsApprovalBook.Name, "decision", "deny"); n != 1 || sum != 7200 {
			t.Errorf("decision latency: %v samples summing %vs, want 1 of 7200s", n, sum)
		}
		if got := metricstest.Value(t, reg, "warden_playbook_runs_total", "playbook", metricsApprovalBook.Name, "state", "failed"); got != 1 {
			t.Errorf("failed runs = %v, want 1", got)
		}
		if got := metricstest.Value(t, reg, "warden_playbook_pending_approvals"); got != 0 {
			t.Errorf("pending approvals after the denial = %v, want 0", got)
		}
	})
}

// confirm_with_user answers are counted: yes, no, and a timeout (once, when
// the confirmation escalates or, without a timeout, expires).
func TestMetricsCountConfirmations(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noTimeout bool
		answer    *bool
		wait      time.Duration
		want      map[string]float64
	}{
		{name: "yes", answer: new(true), want: map[string]float64{"yes": 1}},
		{name: "no", answer: new(false), want: map[string]float64{"no": 1}},
		{name: "escalates then expires", wait: 5 * time.Hour, want: map[string]float64{"timeout": 1}},
		{name: "expires without timeout", noTimeout: true, wait: 5 * time.Hour, want: map[string]float64{"timeout": 1}},
		{name: "late yes after the timeout", answer: new(true), wait: time.Hour, want: map[string]float64{"timeout": 1, "yes": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, reg := newPlaybookMetrics(t)
				book := metricsConfirmBook(tc.noTimeout)
				v := newEnv(t, newIdP("kratos", listing))
				withPlaybooks(v, book)
				withMetrics(v, m)
				defer v.close()
				eng := v.start()
				req := startReq(book.Name)
				req.Requester = ActorSystem
				req.Targets = []Target{{Provider: "kratos", SessionID: "s1"}}
				run, err := eng.Start(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				time.Sleep(tc.wait)
				synctest.Wait()
				if tc.answer != nil {
					if _, err := eng.Confirm(t.Context(), run.ID, 0, subjectID, *tc.answer); err != nil {
						t.Fatal(err)
					}
					synctest.Wait()
				}
				for _, answer := range []string{AnswerYes, AnswerNo, AnswerTimeout} {
					got := metricstest.Value(t, reg, "warden_playbook_confirmations_total", "playbook", book.Name, "answer", answer)
					if got != tc.want[answer] {
						t.Errorf("confirmations{answer=%s} = %v, want %v", answer, got, tc.want[answer])
					}
				}
			})
		})
	}
}

// A nil Metrics ignores everything.
func TestNilPlaybookMetrics(t *testing.T) {
	var m *Metrics
	m.saved("", &Run{ID: "r", Playbook: "p", State: RunRunning}, nil)
	m.resumed([]Run{{ID: "r"}})
}
