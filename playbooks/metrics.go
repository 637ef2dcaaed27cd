package playbooks

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-sec/warden/storage"
)

// Metrics records what playbook runs do. It learns everything from the
// transitions the Engine saves (the run and its audit records), so it
// counts exactly what the audit trail holds. Labels are playbook names,
// states, provider names and fixed result values, never a person. A nil
// *Metrics records nothing.
//
//	warden_playbook_runs_total{playbook, state}  counter: runs entering a state
//	warden_playbook_runs_open{playbook, state}  gauge: unfinished runs (running, waiting)
//	warden_playbook_pending_approvals  gauge: approval steps awaiting a decision
//	warden_playbook_approval_decision_seconds{playbook, decision}  histogram: request → an approver's decision
//	warden_playbook_revocations_total{provider, kind, result}  counter: provider results saved by revoke steps
//	warden_playbook_time_to_revoke_seconds{playbook, kind}  histogram: run start → revocation verified or requested
//	warden_playbook_confirmations_total{playbook, answer}  counter: confirm_with_user answers (yes, no, timeout)
//
// kind is "sessions" (revoke_sessions) or "tokens" (revoke_tokens). A
// revoke_sessions result goes "revoked" then "verified", "requested" or
// "still_present"; each is counted. A confirmation counts "timeout" when its
// timeout passed unanswered (it escalated, or expired without escalating); a
// late answer after an escalation is counted too.
type Metrics struct {
	runs          *prometheus.CounterVec
	decisions     *prometheus.HistogramVec
	revocations   *prometheus.CounterVec
	timeToRevoke  *prometheus.HistogramVec
	confirmations *prometheus.CounterVec
	open          *openRuns
}

// Label values.
const (
	kindSessionsLabel = "sessions"
	kindTokensLabel   = "tokens"

	AnswerYes     = "yes"
	AnswerNo      = "no"
	AnswerTimeout = "timeout"
)

// decisionBuckets: seconds to days, as approvals wait on people.
var decisionBuckets = []float64{10, 30, 60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600}

// revokeBuckets: an automatic revoke takes seconds; one behind an approval
// takes as long as the approval.
var revokeBuckets = []float64{1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// NewMetrics creates the playbook metrics and registers them with reg (nil:
// not registered, still usable).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_playbook_runs_total",
			Help: "Playbook runs entering a state (running, waiting, succeeded, failed, canceled, expired), by playbook.",
		}, []string{"playbook", "state"}),
		decisions: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_playbook_approval_decision_seconds",
			Help:    "Time from an approval request to an approver's decision, by playbook and decision (approve, deny).",
			Buckets: decisionBuckets,
		}, []string{"playbook", "decision"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_playbook_revocations_total",
			Help: "Provider results saved by revoke steps, by provider, kind (sessions, tokens) and result.",
		}, []string{"provider", "kind", "result"}),
		timeToRevoke: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_playbook_time_to_revoke_seconds",
			Help:    "Time from a run's start to a revocation verified or requested at a provider, by playbook and kind.",
			Buckets: revokeBuckets,
		}, []string{"playbook", "kind"}),
		confirmations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_playbook_confirmations_total",
			Help: "Answers to confirm_with_user steps (yes, no, timeout), by playbook.",
		}, []string{"playbook", "answer"}),
		open: newOpenRuns(),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.decisions, m.revocations, m.timeToRevoke, m.confirmations, m.open} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register playbook metrics: %w", err)
			}
		}
	}
	return m, nil
}

// saved records a transition the Engine has just committed: r as saved,
// prev its state before (empty for a new run), recs the audit records saved
// with it (their times set).
func (m *Metrics) saved(prev RunState, r *Run, recs []storage.Record) {
	if m == nil {
		return
	}
	if r.State != prev {
		m.runs.WithLabelValues(r.Playbook, string(r.State)).Inc()
	}
	m.open.mu.Lock()
	defer m.open.mu.Unlock()
	e := m.open.entryLocked(r)
	for _, rec := range recs {
		m.recordLocked(r, e, rec)
	}
	m.open.setLocked(r, e)
}

// resumed tells the open-run gauges about the unfinished runs the Engine
// found on start, which this process has not saved yet.
func (m *Metrics) resumed(runs []Run) {
	if m == nil {
		return
	}
	m.open.seed(runs)
}

// recordLocked counts what one audit record says.
func (m *Metrics) recordLocked(r *Run, e *openRun, rec storage.Record) {
	step, hasStep := recordStep(r, rec)
	switch rec.Action {
	case "approval.request":
		if hasStep {
			e.requested[step] = rec.Time
		}
	case "approval.approve", "approval.deny":
		if !hasStep {
			return
		}
		at, ok := e.requested[step]
		if !ok {
			at, ok = requestedAt(r.Steps[step])
		}
		if ok {
			decision := "approve"
			if rec.Action == "approval.deny" {
				decision = "deny"
			}
			m.decisions.WithLabelValues(r.Playbook, decision).Observe(max(0, rec.Time.Sub(at).Seconds()))
		}
	case "session.revoke", "session.verify", "token.revoke":
		kind := kindSessionsLabel
		if rec.Action == "token.revoke" {
			kind = kindTokensLabel
		}
		result := ResultStatus(rec.Outcome)
		if !slices.Contains(resultStatuses, result) {
			result = "other"
		}
		m.revocations.WithLabelValues(rec.Provider, kind, string(result)).Inc()
		done := (kind == kindSessionsLabel && (result == ResultVerified || result == ResultRequested)) ||
			(kind == kindTokensLabel && result == ResultRevoked)
		if done && !r.Created.IsZero() {
			m.timeToRevoke.WithLabelValues(r.Playbook, kind).Observe(max(0, rec.Time.Sub(r.Created).Seconds()))
		}
	case "confirm.yes":
		m.confirmations.WithLabelValues(r.Playbook, AnswerYes).Inc()
	case "confirm.no":
		m.confirmations.WithLabelValues(r.Playbook, AnswerNo).Inc()
	case "confirm.escalated":
		m.confirmations.WithLabelValues(r.Playbook, AnswerTimeout).Inc()
	case "run.expired":
		// An unanswered confirmation that escalated was counted then.
		if hasStep && r.Steps[step].Spec.Kind == KindConfirmUser && !r.Steps[step].Escalated {
			m.confirmations.WithLabelValues(r.Playbook, AnswerTimeout).Inc()
		}
	}
}

var resultStatuses = []ResultStatus{ResultPending, ResultRevoked, ResultVerified, ResultRequested,
	ResultStillPresent, ResultFailed, ResultNoAccount, ResultNotSupported}

// recordStep is the step index a record's details name, when valid.
func recordStep(r *Run, rec storage.Record) (int, bool) {
	s, ok := rec.Details["step"]
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(r.Steps) {
		return 0, false
	}
	return i, true
}

// requestedAt recovers when an approval was requested from its persisted
// deadlines (for a request made before a restart).
func requestedAt(s Step) (time.Time, bool) {
	switch {
	case !s.ExpireAt.IsZero() && s.Spec.ExpireAfter > 0:
		return s.ExpireAt.Add(-s.Spec.ExpireAfter.D()), true
	case !s.EscalateAt.IsZero() && s.Spec.EscalateAfter > 0:
		return s.EscalateAt.Add(-s.Spec.EscalateAfter.D()), true
	}
	return time.Time{}, false
}

// openRuns keeps the unfinished runs this process knows of, for the gauges.
// It is a prometheus.Collector.
type openRuns struct {
	mu        sync.Mutex
	runs      map[string]*openRun
	playbooks map[string]bool // every playbook seen, so its gauges read 0 rather than vanish
	seeded    bool
	gone      map[string]bool // runs finished before the first seed

	openDesc, pendingDesc *prometheus.Desc
}

type openRun struct {
	playbook  string
	state     RunState
	version   uint64
	pending   int               // approval steps awaiting a decision
	requested map[int]time.Time // step → when this process saw its approval requested
}

func newOpenRuns() *openRuns {
	return &openRuns{
		runs:      map[string]*openRun{},
		playbooks: map[string]bool{},
		gone:      map[string]bool{},
		openDesc: prometheus.NewDesc("warden_playbook_runs_open",
			"Unfinished playbook runs, by playbook and state (running, waiting).", []string{"playbook", "state"}, nil),
		pendingDesc: prometheus.NewDesc("warden_playbook_pending_approvals",
			"Approval steps awaiting a decision.", nil, nil),
	}
}

// entryLocked returns r's entry, a fresh one when r is not known.
func (o *openRuns) entryLocked(r *Run) *openRun {
	if e, ok := o.runs[r.ID]; ok {
		return e
	}
	return &openRun{requested: map[int]time.Time{}}
}

// setLocked stores r's state in e (unless e already holds a newer save), or
// forgets a finished run.
func (o *openRuns) setLocked(r *Run, e *openRun) {
	o.playbooks[r.Playbook] = true
	if r.State.Finished() {
		delete(o.runs, r.ID)
		if !o.seeded {
			o.gone[r.ID] = true
		}
		return
	}
	if e.version > r.Version {
		return // a later save was recorded first
	}
	e.playbook, e.state, e.version = r.Playbook, r.State, r.Version
	e.pending = 0
	for i, s := range r.Steps {
		if s.Status == StepAwaitingApproval {
			e.pending++
		} else {
			delete(e.requested, i)
		}
	}
	o.runs[r.ID] = e
}

// seed adds the unfinished runs found on start that no save has told of.
func (o *openRuns) seed(runs []Run) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range runs {
		r := &runs[i]
		if _, known := o.runs[r.ID]; known || o.gone[r.ID] || r.State.Finished() {
			continue
		}
		o.setLocked(r, &openRun{requested: map[int]time.Time{}})
	}
	o.seeded = true
	clear(o.gone)
}

// Describe implements prometheus.Collector.
func (o *openRuns) Describe(ch chan<- *prometheus.Desc) {
	ch <- o.openDesc
	ch <- o.pendingDesc
}

// Collect implements prometheus.Collector.
func (o *openRuns) Collect(ch chan<- prometheus.Metric) {
	o.mu.Lock()
	type key struct {
		playbook string
		state    RunState
	}
	counts := map[key]int{}
	for pb := range o.playbooks {
		counts[key{pb, RunRunning}] = 0
		counts[key{pb, RunWaiting}] = 0
	}
	pending := 0
	for _, e := range o.runs {
		counts[key{e.playbook, e.state}]++
		pending += e.pending
	}
	o.mu.Unlock()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(o.openDesc, prometheus.GaugeValue, float64(n), k.playbook, string(k.state))
	}
	ch <- prometheus.MustNewConstMetric(o.pendingDesc, prometheus.GaugeValue, float64(pending))
}
