package playbooks

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-sec/warden/storage"
)

// Evidence is what made Warden start a run on its own: the sign-in it saw.
// Every field came from a provider and is untrusted.
type Evidence struct {
	Provider  string    `json:"provider"`
	SessionID string    `json:"session_id,omitempty"`
	Device    string    `json:"device,omitempty"` // "Chrome · macOS"
	IP        string    `json:"ip,omitempty"`
	Location  string    `json:"location,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	At        time.Time `json:"at,omitzero"`
}

// RiskHigh marks a run whose new device was followed by a risky change.
const RiskHigh = "high"

// MarkRisk flags run runID as high risk (for example an MFA factor added
// soon after a new device), audits it, tells the security channel, and
// rebuilds the run's messages. Marking twice changes nothing. It returns
// ErrNotFound.
func (e *Engine) MarkRisk(ctx context.Context, runID, why string) (Run, error) {
	r, changed, err := e.transition(ctx, runID, func(r *Run) ([]storage.Record, error) {
		if r.Risk == RiskHigh {
			return nil, errNoChange
		}
		r.Risk, r.RiskWhy = RiskHigh, why
		return []storage.Record{{Action: "run.risk", Outcome: RiskHigh, Details: map[string]string{"why": why}}}, nil
	})
	if err != nil {
		return Run{}, fmt.Errorf("mark risk of run %s: %w", runID, err)
	}
	if !changed {
		return r.clone(), nil
	}
	if e.channel != "" {
		e.notify(ctx, runID, Notice{Kind: NoticeRisk, Step: -1, To: e.channel, Key: "risk"})
	}
	for i, s := range r.Steps {
		if s.Spec.Kind == KindConfirmUser && r.Subject.SlackID != "" {
			if _, ok := r.Messages[keyStep(i)]; ok {
				e.notify(ctx, runID, Notice{Kind: NoticeConfirmRequest, Step: i, To: r.Subject.SlackID, Key: keyStep(i)})
			}
		}
	}
	return r.clone(), nil
}
