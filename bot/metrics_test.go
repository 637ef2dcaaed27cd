package bot

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-sec/warden/commands"
	"github.com/warden-sec/warden/internal/metricstest"
	"github.com/warden-sec/warden/internal/slackfake"
)

// A slash command that opens a modal, a button click and the modal's
// submission are counted by envelope type, each ack's latency is observed
// under the same type, a submission's ack waits for the handler, and the
// connected gauge follows the socket.
func TestMetricsCountEnvelopesAndAckLatency(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := slackfake.New(t, slackfake.Options{})
	const submitWork = 50 * time.Millisecond
	h := &fakeHandler{
		CommandFn: func(context.Context, commands.Request) commands.Reply {
			return commands.Reply{Modal: &commands.Modal{CallbackID: commands.CallbackDeny, Title: "Deny", Submit: "Deny",
				Inputs: []commands.Input{{ID: "reason", Label: "Reason"}}}}
		},
		ActionFn: func(context.Context, commands.Action) commands.Reply { return commands.Reply{} },
		SubmitFn: func(ctx context.Context, _ commands.Submission) commands.SubmitResult {
			t := time.NewTimer(submitWork) // the handler's work, which the ack waits for
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			return commands.SubmitResult{}
		},
	}
	r := start(t, f, h, func(c *Config) { c.Metrics = m })
	ctx := within(t, 10*time.Second)
	if got := metricstest.Value(t, reg, "warden_slack_connected"); got != 1 {
		t.Errorf("connected gauge = %v while connected, want 1", got)
	}

	cmd := f.SlashCommand("U1", "C1", "offboard")
	if _, err := f.WaitAck(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	if err := f.Await(ctx, func() bool { return len(f.Views()) == 1 }); err != nil {
		t.Fatal(err)
	}
	ts, err := r.app.Post(ctx, "C1", commands.Reply{Text: "x", Blocks: []commands.Block{{Kind: commands.Actions,
		Buttons: []commands.Button{{Label: "Approve", ActionID: commands.ActApprove, Value: "run/0"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	click, err := f.Click("U1", "C1", ts, commands.ActApprove, "run/0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitAck(ctx, click); err != nil {
		t.Fatal(err)
	}
	sub, err := f.Submit("U1", f.Views()[0].ID, map[string]string{"reason": "no"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitAck(ctx, sub); err != nil {
		t.Fatal(err)
	}

	for _, typ := range []string{envSlashCommand, envBlockActions, envViewSubmission} {
		if got := metricstest.Value(t, reg, "warden_slack_envelopes_total", "type", typ); got != 1 {
			t.Errorf("envelopes{type=%s} = %v, want 1", typ, got)
		}
		// The ack histogram is written just after the ack leaves; wait for it.
		if err := eventually(ctx, func() bool {
			return metricstest.Value(t, reg, "warden_slack_ack_duration_seconds", "type", typ) == 1
		}); err != nil {
			t.Errorf("ack latency of %s not observed once: %v", typ, err)
		}
	}
	if got := metricstest.Sum(t, reg, "warden_slack_ack_duration_seconds", "type", envViewSubmission); got < submitWork.Seconds() {
		t.Errorf("view_submission ack latency %.3fs, want at least the handler's %v", got, submitWork)
	}
	if got := metricstest.Sum(t, reg, "warden_slack_ack_duration_seconds", "type", envSlashCommand); got >= submitWork.Seconds() {
		t.Errorf("slash command ack latency %.3fs; it is acked before any work", got)
	}

	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	r.done <- nil // for start's cleanup
	if got := metricstest.Value(t, reg, "warden_slack_connected"); got != 0 {
		t.Errorf("connected gauge = %v after Run returned, want 0", got)
	}
}

// NewMetrics refuses to register twice in one registry.
func TestNewMetricsTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the bot metrics twice succeeded")
	}
}
