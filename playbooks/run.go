package playbooks

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/warden-sec/warden/storage"
)

// Errors returned by the Engine. Check them with errors.Is.
var (
	// ErrNotFound: no run with that id, or no such step in the run.
	ErrNotFound = errors.New("run not found")
	// ErrUnknownPlaybook: Start or Plan named a playbook that does not exist.
	ErrUnknownPlaybook = errors.New("unknown playbook")
	// ErrInvalidRequest: a StartRequest lacks what its playbook needs (an
	// email to look the subject up, target sessions for a listed scope).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotApprover: the actor is not in the step's resolved approver set.
	ErrNotApprover = errors.New("not an approver of this step")
	// ErrSelfApproval: the requester and the subject may never approve.
	ErrSelfApproval = errors.New("requester or subject cannot approve")
	// ErrAlreadyDecided: this person already decided; nothing changed.
	ErrAlreadyDecided = errors.New("already decided")
	// ErrFinished: the run is finished (or expired), or the step no longer
	// waits for this answer.
	ErrFinished = errors.New("run or step already finished")
	// ErrNotSubject: only the subject may answer a confirm_with_user step.
	ErrNotSubject = errors.New("only the subject can answer")
	// ErrNotRetryable: Retry was asked for a step that has not failed or
	// has no executor.
	ErrNotRetryable = errors.New("step cannot be retried")
	// ErrRunning: Engine.Run was called while already running.
	ErrRunning = errors.New("engine already running")
)

// RunState is the state of a whole run.
type RunState string

const (
	RunRunning   RunState = "running"   // a step is executing or about to
	RunWaiting   RunState = "waiting"   // waiting for approvers, the user, or a timer
	RunSucceeded RunState = "succeeded" // every step done
	RunFailed    RunState = "failed"    // a step failed or an approval was denied
	RunCanceled  RunState = "canceled"
	RunExpired   RunState = "expired" // an approval or confirmation was not answered in time
)

// Finished reports whether the run will not change by itself any more
// (a failed run can still be retried).
func (s RunState) Finished() bool {
	switch s {
	case RunSucceeded, RunFailed, RunCanceled, RunExpired:
		return true
	}
	return false
}

// StepStatus is the state of one step.
type StepStatus string

const (
	StepPending          StepStatus = "pending"
	StepAwaitingApproval StepStatus = "awaiting_approval"
	StepAwaitingUser     StepStatus = "awaiting_user" // confirm_with_user: waiting for the subject
	StepApproved         StepStatus = "approved"
	StepDenied           StepStatus = "denied"
	StepRunning          StepStatus = "running"
	StepDone             StepStatus = "done"
	StepFailed           StepStatus = "failed"
	StepSkipped          StepStatus = "skipped"
)

// complete reports whether the run may move past a step in this status.
func (s StepStatus) complete() bool {
	return s == StepDone || s == StepSkipped || s == StepApproved
}

// ResultStatus is what happened at one provider.
type ResultStatus string

const (
	ResultPending      ResultStatus = "pending"
	ResultRevoked      ResultStatus = "revoked"       // the provider accepted; verification pending
	ResultVerified     ResultStatus = "verified"      // listed again: gone
	ResultRequested    ResultStatus = "requested"     // cannot list: takes effect within EffectWithin
	ResultStillPresent ResultStatus = "still_present" // listed again: a session survived
	ResultFailed       ResultStatus = "failed"
	ResultNoAccount    ResultStatus = "no_account"
	ResultNotSupported ResultStatus = "not_supported"
)

// Subject is the person a run acts on.
type Subject struct {
	SlackID string `json:"slack_id,omitempty"`
	Email   string `json:"email,omitempty"`
}

// Target is one session a request names, at its provider.
type Target struct {
	Provider  string `json:"provider"`
	SessionID string `json:"session_id"`
}

// MessageRef is a posted Slack message, so it can be edited in place after a
// restart.
type MessageRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// Decision is one approver's answer (or the subject's, for confirm_with_user).
type Decision struct {
	Actor   string    `json:"actor"`
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// ProviderResult is what a revoke step did at one provider. Detail is short
// and never carries a provider's response body.
type ProviderResult struct {
	Provider     string        `json:"provider"`
	Status       ResultStatus  `json:"status"`
	Detail       string        `json:"detail,omitempty"`
	EffectWithin time.Duration `json:"effect_within,omitempty"`
	Attempts     int           `json:"attempts"`
	Sessions     int           `json:"sessions,omitempty"` // sessions ended one by one, or targets ended
}

// Step is one step of a run: its spec and everything that happened to it.
type Step struct {
	Spec       StepSpec         `json:"spec"`
	Status     StepStatus       `json:"status"`
	Attempts   int              `json:"attempts"`
	Deadline   time.Time        `json:"deadline,omitzero"`    // wait: when it ends
	EscalateAt time.Time        `json:"escalate_at,omitzero"` // approval, confirm
	ExpireAt   time.Time        `json:"expire_at,omitzero"`   // approval, confirm
	Escalated  bool             `json:"escalated,omitempty"`
	Approvers  []string         `json:"approvers,omitempty"` // resolved Slack user ids
	Decisions  []Decision       `json:"decisions,omitempty"`
	Results    []ProviderResult `json:"results,omitempty"`
	Error      string           `json:"error,omitempty"`
}

// Approvals counts the distinct approvers who approved.
func (s Step) Approvals() int {
	seen := map[string]bool{}
	for _, d := range s.Decisions {
		if d.Approve {
			seen[d.Actor] = true
		}
	}
	return len(seen)
}

// Quorum is the number of approvals the step needs.
func (s Step) Quorum() int { return max(1, s.Spec.Quorum) }

// Run is one execution of a playbook. Version is the storage version it was
// read at; the Engine saves with compare-and-swap on it.
type Run struct {
	ID        string                `json:"id"`
	Playbook  string                `json:"playbook"`
	Version   uint64                `json:"-"`
	State     RunState              `json:"state"`
	Requester string                `json:"requester"` // Slack user id, or "system"
	Subject   Subject               `json:"subject"`
	Reason    string                `json:"reason,omitempty"`
	Channel   string                `json:"channel,omitempty"` // where progress is shown; "" = DM the requester
	Targets   []Target              `json:"targets,omitempty"`
	Steps     []Step                `json:"steps"`
	Messages  map[string]MessageRef `json:"messages,omitempty"`
	Posting   map[string]bool       `json:"posting,omitempty"`  // messages whose post is under way (ts not yet saved)
	Evidence  *Evidence             `json:"evidence,omitempty"` // what made Warden start the run
	Risk      string                `json:"risk,omitempty"`     // "high" when a risky change followed
	RiskWhy   string                `json:"risk_why,omitempty"`
	Created   time.Time             `json:"created"`
	Updated   time.Time             `json:"updated"`
}

// Current returns the index of the step the run is at: the first step not
// done, skipped or approved; len(Steps) when there is none.
func (r *Run) Current() int {
	for i, s := range r.Steps {
		if !s.Status.complete() {
			return i
		}
	}
	return len(r.Steps)
}

// auditSubject is the audit record's subject: the Slack id, else the email.
func (r *Run) auditSubject() string {
	if r.Subject.SlackID != "" {
		return r.Subject.SlackID
	}
	return r.Subject.Email
}

// clone returns a deep copy.
func (r Run) clone() Run {
	out := r
	out.Targets = append([]Target(nil), r.Targets...)
	out.Steps = make([]Step, len(r.Steps))
	for i, s := range r.Steps {
		s.Spec.Approvers = append([]string(nil), s.Spec.Approvers...)
		s.Approvers = append([]string(nil), s.Approvers...)
		s.Decisions = append([]Decision(nil), s.Decisions...)
		s.Results = append([]ProviderResult(nil), s.Results...)
		out.Steps[i] = s
	}
	if r.Evidence != nil {
		ev := *r.Evidence
		out.Evidence = &ev
	}
	out.Posting = maps.Clone(r.Posting)
	if r.Messages != nil {
		out.Messages = make(map[string]MessageRef, len(r.Messages))
		for k, v := range r.Messages {
			out.Messages[k] = v
		}
	}
	return out
}

// NoticeKind says what a Notice is about.
type NoticeKind string

const (
	// NoticeProgress: the run's live progress message, rebuilt from the run
	// and edited in place (Key "progress").
	NoticeProgress NoticeKind = "progress"
	// NoticeApprovalRequest asks one approver (To) to decide.
	NoticeApprovalRequest NoticeKind = "approval_request"
	// NoticeApprovalUpdate rebuilds one approver's request message after a
	// decision, an escalation or expiry (Ref is the message to edit).
	NoticeApprovalUpdate NoticeKind = "approval_update"
	// NoticeEscalation tells the security channel (To) a request is overdue.
	NoticeEscalation NoticeKind = "escalation"
	// NoticeExpired tells the requester (To) the run expired.
	NoticeExpired NoticeKind = "expired"
	// NoticeConfirmRequest asks the subject (To) "was this you?".
	NoticeConfirmRequest NoticeKind = "confirm_request"
	// NoticeNotifyUser is a notify_user step: To is the subject.
	NoticeNotifyUser NoticeKind = "notify_user"
	// NoticeNotifyChannel is a notify_channel step: To is the channel.
	NoticeNotifyChannel NoticeKind = "notify_channel"
	// NoticeRisk tells the security channel (To) that a risky account
	// change followed the run's new device.
	NoticeRisk NoticeKind = "risk"
)

// Notice is one thing to tell someone about a run. The Notifier rebuilds the
// message from the run; Text is the playbook's configured message, if any.
type Notice struct {
	Kind NoticeKind
	Step int    // step index, -1 for the run as a whole
	To   string // Slack user or channel id
	// Key names the message in Run.Messages. When Ref is set, the Notifier
	// edits that message instead of posting a new one; the MessageRef it
	// returns is stored under Key.
	Key  string
	Ref  MessageRef
	Text string
	// Recover is set when a post of this message may already have reached
	// Slack before a crash: the Notifier looks for it (by the run id and
	// Key it carries) before posting.
	Recover bool
}

// Notifier tells people about runs (bot implements it). Errors are logged by
// the Engine and never undo a transition.
type Notifier interface {
	Notify(ctx context.Context, run Run, n Notice) (MessageRef, error)
}

// Directory resolves people in Slack (bot implements it).
type Directory interface {
	// UserByEmail returns the Slack user id of the person with this email.
	UserByEmail(ctx context.Context, email string) (string, error)
	// GroupMembers returns the Slack user ids in user group id (S…).
	GroupMembers(ctx context.Context, id string) ([]string, error)
}

// Store keeps runs and the audit chain (storage.DB implements it). Put
// commits the value and the audit records in one transaction.
type Store interface {
	Get(ctx context.Context, b storage.Bucket, key string) (storage.Item, error)
	Put(ctx context.Context, b storage.Bucket, key string, expect uint64, value []byte, audit ...storage.Record) (uint64, error)
	List(ctx context.Context, b storage.Bucket, prefix string) ([]storage.Item, error)
	Append(ctx context.Context, recs ...storage.Record) ([]storage.Record, error)
}

var _ Store = (*storage.DB)(nil)
