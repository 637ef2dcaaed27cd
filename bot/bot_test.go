package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/warden-sec/warden/commands"
	"github.com/warden-sec/warden/internal/slackfake"
)

// fakeHandler is a Handler made of functions; a nil one answers nothing.
type fakeHandler struct {
	CommandFn func(ctx context.Context, r commands.Request) commands.Reply
	ActionFn  func(ctx context.Context, a commands.Action) commands.Reply
	SubmitFn  func(ctx context.Context, s commands.Submission) commands.SubmitResult
}

func (h *fakeHandler) Command(ctx context.Context, r commands.Request) commands.Reply {
	if h.CommandFn == nil {
		return commands.Reply{}
	}
	return h.CommandFn(ctx, r)
}

func (h *fakeHandler) Action(ctx context.Context, a commands.Action) commands.Reply {
	if h.ActionFn == nil {
		return commands.Reply{}
	}
	return h.ActionFn(ctx, a)
}

func (h *fakeHandler) Submit(ctx context.Context, s commands.Submission) commands.SubmitResult {
	if h.SubmitFn == nil {
		return commands.SubmitResult{}
	}
	return h.SubmitFn(ctx, s)
}

// echo answers every command with its own text.
func echo(_ context.Context, r commands.Request) commands.Reply {
	return commands.Reply{Text: "echo " + r.Text}
}

type running struct {
	app    *App
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Run and returns what it returned.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// start runs an App against f and waits for it to connect.
func start(t testing.TB, f *slackfake.Slack, h Handler, tweak func(*Config)) *running {
	t.Helper()
	cfg := Config{BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, APIURL: f.APIURL()}
	if tweak != nil {
		tweak(&cfg)
	}
	app, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{app: app, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("Run did not return at cleanup")
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := f.AwaitConnections(wctx, 1); err != nil {
		t.Fatalf("app did not connect: %v", err)
	}
	if err := eventually(wctx, app.Connected); err != nil {
		t.Fatalf("app does not report Connected: %v", err)
	}
	return r
}

// eventually checks cond every few milliseconds until it holds or ctx ends.
// It is for state the fake cannot signal (the App's own flags).
func eventually(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func within(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestHelpRoundTrip(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	var got commands.Request
	var mu sync.Mutex
	h := &fakeHandler{CommandFn: func(_ context.Context, r commands.Request) commands.Reply {
		mu.Lock()
		got = r
		mu.Unlock()
		return commands.Reply{Text: "Warden help", Blocks: []commands.Block{
			{Kind: commands.Header, Text: commands.T(commands.P("Warden"))},
			{Kind: commands.Section, Text: commands.T(commands.C("/sessions mine"), commands.P(" your sessions"))},
		}}
	}}
	start(t, f, h, nil)

	env := f.SlashCommand("U0RESP", "C0INCIDENT", "help")
	ack, err := f.WaitAck(within(t, 5*time.Second), env)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Payload != nil {
		t.Errorf("slash command ack carried %s; want a plain ack (the reply goes to response_url)", ack.Payload)
	}
	resp, err := f.AwaitResponse(within(t, 5*time.Second), env)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Warden help" || resp.ResponseType != "ephemeral" || !strings.Contains(string(resp.Blocks), "`/sessions mine` your sessions") {
		t.Errorf("response = %+v", resp)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(commands.Request{Actor: "U0RESP", Channel: "C0INCIDENT", Text: "help"}, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

// TestConcurrentCommandsAckedAndAnsweredOnce: 200 commands at once are all
// acked within 3 s and each answered exactly once.
func TestConcurrentCommandsAckedAndAnsweredOnce(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	var calls atomic.Int64
	h := &fakeHandler{CommandFn: func(ctx context.Context, r commands.Request) commands.Reply {
		calls.Add(1)
		return echo(ctx, r)
	}}
	start(t, f, h, nil)

	const n = 200
	envs := make([]string, n)
	for i := range n {
		envs[i] = f.SlashCommand(fmt.Sprintf("U%03d", i), "C0INCIDENT", fmt.Sprintf("list %d", i))
	}
	ctx := within(t, 20*time.Second)
	for _, env := range envs {
		ack, err := f.WaitAck(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		if d := ack.Acked.Sub(ack.Sent); d > 3*time.Second {
			t.Errorf("envelope %s acked after %v", env, d)
		}
	}
	if err := f.Await(ctx, func() bool {
		for _, env := range envs {
			if len(f.Responses(env)) == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	for i, env := range envs {
		rs := f.Responses(env)
		if len(rs) != 1 || rs[0].Text != fmt.Sprintf("echo list %d", i) {
			t.Errorf("command %d answered %d times: %+v", i, len(rs), rs)
		}
	}
	if got := calls.Load(); got != n {
		t.Errorf("handler ran %d times, want %d", got, n)
	}
}

// TestReconnectLosesNothing: around a disconnect or a dropped socket, every
// command is answered exactly once, and the app reconnects.
func TestReconnectLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(f *slackfake.Slack)
	}{
		{"warning", func(f *slackfake.Slack) { f.Disconnect("warning") }},
		{"refresh_requested", func(f *slackfake.Slack) { f.Disconnect("refresh_requested") }},
		{"dropped socket", func(f *slackfake.Slack) { f.DropSockets() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := slackfake.New(t, slackfake.Options{})
			r := start(t, f, &fakeHandler{CommandFn: echo}, nil)
			var envs []string
			for i := range 20 {
				envs = append(envs, f.SlashCommand("U0RESP", "C1", fmt.Sprintf("before %d", i)))
			}
			ctx := within(t, 15*time.Second)
			if err := f.Await(ctx, func() bool { return len(f.Unacked()) == 0 && len(f.Acks()) == 20 }); err != nil {
				t.Fatal(err)
			}
			tc.fault(f)
			for i := range 20 {
				envs = append(envs, f.SlashCommand("U0RESP", "C1", fmt.Sprintf("after %d", i)))
			}
			if err := f.Await(ctx, func() bool {
				for _, env := range envs {
					if len(f.Responses(env)) == 0 {
						return false
					}
				}
				return true
			}); err != nil {
				t.Fatalf("not every command was answered: %v", err)
			}
			for _, env := range envs {
				if n := len(f.Responses(env)); n != 1 {
					t.Errorf("envelope %s answered %d times", env, n)
				}
			}
			if opened := f.ConnectionsOpened(); opened < 2 {
				t.Errorf("%d connections opened; want a reconnect", opened)
			}
			if err := f.AwaitConnections(ctx, 1); err != nil {
				t.Errorf("not connected after the fault: %v", err)
			}
			if err := eventually(ctx, r.app.Connected); err != nil {
				t.Errorf("Connected() false after the fault: %v", err)
			}
		})
	}
}

// TestFatalRefusals: Slack switching Socket Mode off, or refusing the
// credentials, stops Run with ErrFatal instead of reconnecting forever.
func TestFatalRefusals(t *testing.T) {
	t.Run("link_disabled", func(t *testing.T) {
		f := slackfake.New(t, slackfake.Options{})
		r := start(t, f, &fakeHandler{CommandFn: echo}, nil)
		f.Disconnect("link_disabled")
		select {
		case err := <-r.done:
			if !errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), "link_disabled") {
				t.Errorf("Run returned %v, want ErrFatal naming link_disabled", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run kept going after link_disabled")
		}
		r.done <- nil // for cleanup
	})
	for _, code := range []string{"invalid_auth", "token_revoked", "account_inactive", "not_authed"} {
		t.Run(code, func(t *testing.T) {
			f := slackfake.New(t, slackfake.Options{})
			f.SetAuthError(code)
			app, err := New(Config{BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, APIURL: f.APIURL()}, &fakeHandler{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- app.Run(t.Context()) }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), code) {
					t.Errorf("Run returned %v, want ErrFatal naming %s", err, code)
				}
				for _, secret := range []string{slackfake.BotToken, slackfake.AppToken} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q contains a token", err)
					}
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run kept retrying refused credentials")
			}
			if app.Connected() {
				t.Error("Connected() is true after a fatal refusal")
			}
		})
	}
}

// TestFullPoolAcksAndAnswersBusy: with the only worker stuck and the queue
// full, a new command is still acked at once and told Warden is busy.
func TestFullPoolAcksAndAnswersBusy(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	h := &fakeHandler{CommandFn: func(ctx context.Context, r commands.Request) commands.Reply {
		entered <- struct{}{}
		<-release
		return echo(ctx, r)
	}}
	start(t, f, h, func(c *Config) { c.Workers = 1; c.Queue = 1 })

	ctx := within(t, 10*time.Second)
	stuck := f.SlashCommand("U1", "C1", "one")
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("first command never reached the handler")
	}
	queued := f.SlashCommand("U1", "C1", "two")
	busy := f.SlashCommand("U2", "C1", "three")
	ack, err := f.WaitAck(ctx, busy)
	if err != nil {
		t.Fatal(err)
	}
	if d := ack.Acked.Sub(ack.Sent); d > time.Second {
		t.Errorf("busy command acked after %v", d)
	}
	resp, err := f.AwaitResponse(ctx, busy)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != noticeText[noticeBusy] || resp.ResponseType != "ephemeral" {
		t.Errorf("busy answer = %+v, want ephemeral %q", resp, noticeText[noticeBusy])
	}
	close(release)
	for env, want := range map[string]string{stuck: "echo one", queued: "echo two"} {
		resp, err := f.AwaitResponse(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != want {
			t.Errorf("answer %q, want %q", resp.Text, want)
		}
	}
	if n := len(f.Responses(busy)); n != 1 {
		t.Errorf("busy command answered %d times", n)
	}
}

// TestThrottledChannelDoesNotBlockAnother: a 429 on channel A delays A only;
// a post to channel B goes out meanwhile, and A's post is retried.
func TestThrottledChannelDoesNotBlockAnother(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	r := start(t, f, &fakeHandler{}, nil)
	f.Throttle("chat.postMessage", 1, time.Second)

	ctx := within(t, 10*time.Second)
	aDone := make(chan error, 1)
	go func() {
		_, err := r.app.Post(ctx, "CA", commands.Reply{Text: "to A"})
		aDone <- err
	}()
	if err := f.Await(ctx, func() bool { return len(f.Calls("chat.postMessage")) == 1 }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ts, err := r.app.Post(ctx, "CB", commands.Reply{Text: "to B"})
	if err != nil || ts == "" {
		t.Fatalf("post to B: ts %q, err %v", ts, err)
	}
	if len(f.Messages("CA")) != 0 {
		t.Error("A's throttled post went out before its Retry-After")
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("post to B took %v while A was throttled", d)
	}
	if err := <-aDone; err != nil {
		t.Fatalf("A's post was not retried: %v", err)
	}
	if msgs := f.Messages("CA"); len(msgs) != 1 || msgs[0].Text != "to A" {
		t.Errorf("channel A holds %+v", msgs)
	}
}

// TestShutdownDrainsInFlightWork: after ctx ends, a running command still
// gets its answer, a new one is acked and told Warden is shutting down, and
// Run returns nil.
func TestShutdownDrainsInFlightWork(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h := &fakeHandler{CommandFn: func(ctx context.Context, r commands.Request) commands.Reply {
		if r.Text == "slow" {
			entered <- struct{}{}
			<-release
		}
		return echo(ctx, r)
	}}
	r := start(t, f, h, nil)
	ctx := within(t, 10*time.Second)

	slow := f.SlashCommand("U1", "C1", "slow")
	<-entered
	r.cancel()
	late := f.SlashCommand("U2", "C1", "late")
	resp, err := f.AwaitResponse(ctx, late)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != noticeText[noticeShuttingDown] {
		t.Errorf("late command answered %q, want %q", resp.Text, noticeText[noticeShuttingDown])
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) before in-flight work finished", err)
	default:
	}
	close(release)
	resp, err = f.AwaitResponse(ctx, slow)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "echo slow" {
		t.Errorf("in-flight command answered %q", resp.Text)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		r.done <- nil
	case <-ctx.Done():
		t.Fatal("Run did not return after draining")
	}
	if err := f.AwaitConnections(ctx, 0); err != nil {
		t.Errorf("socket left open after Run returned: %v", err)
	}
}

// TestShutdownGraceCancelsStuckWork: work that outlives the grace period has
// its context cancelled, and Run still returns.
func TestShutdownGraceCancelsStuckWork(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	entered := make(chan struct{}, 1)
	h := &fakeHandler{CommandFn: func(ctx context.Context, r commands.Request) commands.Reply {
		entered <- struct{}{}
		<-ctx.Done()
		return commands.Reply{}
	}}
	r := start(t, f, h, func(c *Config) { c.ShutdownGrace = 300 * time.Millisecond })
	f.SlashCommand("U1", "C1", "stuck")
	<-entered
	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Errorf("Run returned %v", err)
	}
	r.done <- nil
	if d := time.Since(began); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("Run returned %v after cancel; want just after the 300ms grace", d)
	}
}

// TestButtonModalAndSubmission walks a click through a modal: the click
// reaches the handler with its ids (de-duplicated action ids mapped back), the
// modal opens, a bad submission keeps it open with a field error, and a good
// one closes it and DMs the submitter.
func TestButtonModalAndSubmission(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	var mu sync.Mutex
	var actions []commands.Action
	var subs []commands.Submission
	h := &fakeHandler{
		ActionFn: func(_ context.Context, a commands.Action) commands.Reply {
			mu.Lock()
			actions = append(actions, a)
			mu.Unlock()
			return commands.Reply{
				ReplaceOriginal: true, Text: "Denying…",
				Modal: &commands.Modal{
					CallbackID: commands.CallbackDeny, Title: "Deny", Submit: "Deny", PrivateMetadata: a.Value,
					Inputs: []commands.Input{{ID: "reason", Label: "Reason", Multiline: true}},
				},
			}
		},
		SubmitFn: func(_ context.Context, s commands.Submission) commands.SubmitResult {
			mu.Lock()
			subs = append(subs, s)
			mu.Unlock()
			if strings.TrimSpace(s.Values["reason"]) == "" {
				return commands.SubmitResult{Errors: map[string]string{"reason": "A reason is required."}}
			}
			return commands.SubmitResult{Reply: &commands.Reply{Text: "Denied: " + s.Values["reason"]}}
		},
	}
	r := start(t, f, h, nil)
	ctx := within(t, 10*time.Second)

	ts, err := r.app.Post(ctx, "C0APPROVALS", commands.Reply{Text: "Approve offboarding?", Blocks: []commands.Block{
		{Kind: commands.Actions, Buttons: []commands.Button{
			{Label: "Approve", ActionID: commands.ActApprove, Value: "run-1/1"},
			{Label: "Deny", ActionID: commands.ActDeny, Value: "run-1/1"},
			{Label: "Deny other", ActionID: commands.ActDeny, Value: "run-2/1"},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	click, err := f.Click("U0MGR", "C0APPROVALS", ts, commands.ActDeny+dupSep+"1", "run-2/1")
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := f.WaitAck(ctx, click); err != nil || ack.Payload != nil {
		t.Fatalf("click ack %+v, %v; want a plain ack", ack, err)
	}
	resp, err := f.AwaitResponse(ctx, click)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.ReplaceOriginal || resp.Text != "Denying…" {
		t.Errorf("click response %+v, want replace_original with the handler's text", resp)
	}
	mu.Lock()
	want := []commands.Action{{Actor: "U0MGR", ActionID: commands.ActDeny, Value: "run-2/1", Channel: "C0APPROVALS", MessageTS: ts}}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	mu.Unlock()

	views := f.Views()
	if len(views) != 1 || !views[0].Open || views[0].CallbackID != commands.CallbackDeny || views[0].PrivateMetadata != "run-2/1" {
		t.Fatalf("views = %+v, want the deny modal open", views)
	}
	viewID := views[0].ID

	bad, err := f.Submit("U0MGR", viewID, map[string]string{"reason": "  "})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := f.WaitAck(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(ack.Payload, &payload); err != nil || payload.ResponseAction != "errors" || payload.Errors["reason"] != "A reason is required." {
		t.Errorf("bad submission ack %s, want a field error on reason", ack.Payload)
	}
	if v := f.Views()[0]; !v.Open {
		t.Error("modal closed on a bad submission")
	}

	good, err := f.Submit("U0MGR", viewID, map[string]string{"reason": "not expected"})
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := f.WaitAck(ctx, good); err != nil || ack.Payload != nil {
		t.Fatalf("good submission ack %+v, %v; want a plain ack", ack, err)
	}
	dm, err := f.AwaitMessage(ctx, f.DMChannel("U0MGR"), func(m slackfake.Message) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if dm.Text != "Denied: not expected" {
		t.Errorf("DM text %q", dm.Text)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(subs) != 2 || subs[1].CallbackID != commands.CallbackDeny || subs[1].PrivateMetadata != "run-2/1" || subs[1].Actor != "U0MGR" {
		t.Errorf("submissions = %+v", subs)
	}
}

// TestCommandOpensModal: a command whose reply carries a modal opens it with
// the command's trigger, and a handler panic is answered with the internal
// error text instead of silence.
func TestCommandOpensModalAndSurvivesPanics(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	h := &fakeHandler{CommandFn: func(_ context.Context, r commands.Request) commands.Reply {
		if r.Text == "panic" {
			panic("boom")
		}
		return commands.Reply{Modal: &commands.Modal{CallbackID: "cb", Title: "Offboard", Inputs: []commands.Input{{ID: "why", Label: "Why"}}}}
	}}
	start(t, f, h, nil)
	ctx := within(t, 10*time.Second)

	f.SlashCommand("U1", "C1", "offboard")
	if err := f.Await(ctx, func() bool { return len(f.Views()) == 1 }); err != nil {
		t.Fatal(err)
	}
	if v := f.Views()[0]; v.CallbackID != "cb" || v.User != "U1" || !v.Open {
		t.Errorf("view = %+v", v)
	}
	env := f.SlashCommand("U1", "C1", "panic")
	resp, err := f.AwaitResponse(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != noticeText[noticeInternal] {
		t.Errorf("panicking command answered %q", resp.Text)
	}
}

func TestDirectory(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	f.AddUser(slackfake.User{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"})
	f.AddUser(slackfake.User{ID: "U0NOMAIL", Name: "nomail"})
	f.AddGroup("S0RESP", "U0ALICE", "U0BOB")
	app, err := New(Config{BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, APIURL: f.APIURL()}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for range 2 {
		email, err := app.UserEmail(ctx, "U0ALICE")
		if err != nil || email != "alice@example.com" {
			t.Errorf("UserEmail = %q, %v", email, err)
		}
		id, err := app.UserByEmail(ctx, "Alice@Example.com")
		if err != nil || id != "U0ALICE" {
			t.Errorf("UserByEmail = %q, %v", id, err)
		}
		members, err := app.GroupMembers(ctx, "S0RESP")
		if err != nil || !cmp.Equal(members, []string{"U0ALICE", "U0BOB"}) {
			t.Errorf("GroupMembers = %v, %v", members, err)
		}
	}
	for method, want := range map[string]int{"users.info": 1, "users.lookupByEmail": 1, "usergroups.users.list": 1} {
		if got := len(f.Calls(method)); got != want {
			t.Errorf("%s called %d times, want %d (cached)", method, got, want)
		}
	}
	if _, err := app.UserEmail(ctx, "U0NOBODY"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
	if _, err := app.UserEmail(ctx, "U0NOMAIL"); !errors.Is(err, ErrNotFound) {
		t.Errorf("user without email: err = %v, want ErrNotFound", err)
	}
	if _, err := app.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown email: err = %v, want ErrNotFound", err)
	}
}

func TestUpdateAndDM(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	app, err := New(Config{BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, APIURL: f.APIURL()}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ch, ts, err := app.DM(ctx, "U0BOB", commands.Reply{Text: "Was this you?"})
	if err != nil {
		t.Fatal(err)
	}
	if ch != f.DMChannel("U0BOB") {
		t.Errorf("DM channel %q, want %q", ch, f.DMChannel("U0BOB"))
	}
	if err := app.Update(ctx, ch, ts, commands.Reply{Text: "Thanks, <@U0BOB> & co"}); err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages(ch)
	if len(msgs) != 1 || msgs[0].Text != "Thanks, &lt;@U0BOB&gt; &amp; co" || msgs[0].Edits != 1 {
		t.Errorf("messages = %+v", msgs)
	}
	if _, err := app.Post(ctx, "C1", commands.Reply{}); !errors.Is(err, ErrEmptyReply) {
		t.Errorf("empty post: err = %v, want ErrEmptyReply", err)
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{BotToken: "xoxb-1", AppToken: "xapp-1"}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"swapped tokens":    {func(c *Config) { c.BotToken, c.AppToken = c.AppToken, c.BotToken }, "xoxb-"},
		"missing app token": {func(c *Config) { c.AppToken = "" }, "app-level token is required"},
		"api url no slash":  {func(c *Config) { c.APIURL = "http://127.0.0.1:1/api" }, `end in "/"`},
		"relative api url":  {func(c *Config) { c.APIURL = "/api/" }, "absolute"},
		"negative workers":  {func(c *Config) { c.Workers = -1 }, "negative"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			cfg.BotToken, cfg.AppToken = "xoxb-secret-value", "xapp-secret-value"
			tc.mutate(&cfg)
			_, err := New(cfg, &fakeHandler{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Errorf("error %q leaks a token", err)
			}
		})
	}
	app, err := New(good, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if app.cfg.Workers != 8 || app.cfg.Queue != 256 || app.cfg.AckTimeout != 2*time.Second || app.cfg.ChannelRate != 1 || app.cfg.APIURL != "https://slack.com/api/" {
		t.Errorf("defaults = %+v", app.cfg)
	}
}

func TestLinkWatchSpotsLinkDisabled(t *testing.T) {
	w := newLinkWatch(nopLogger())
	_ = w.Output(2, frameLinePrefix+`{"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"x"}}`)
	_ = w.Output(2, frameLinePrefix+`{"envelope_id":"e","type":"slash_commands","payload":{"text":"disconnect link_disabled"}}`)
	select {
	case <-w.disabled:
		t.Fatal("link_disabled reported for another reason or a payload mentioning it")
	default:
	}
	_ = w.Output(2, frameLinePrefix+`{"type":"disconnect","reason":"link_disabled","debug_info":{"host":"x"}}`)
	_ = w.Output(2, frameLinePrefix+`{"type":"disconnect","reason":"link_disabled"}`) // twice must not panic
	select {
	case <-w.disabled:
	default:
		t.Fatal("link_disabled not reported")
	}
}

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestSlowSubmitKeepsModalOpen: a Submit handler that misses its deadline
// still gets its modal acked in time, with an error on the first input, so
// nothing typed is lost.
func TestSlowSubmitKeepsModalOpen(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	h := &fakeHandler{
		CommandFn: func(context.Context, commands.Request) commands.Reply {
			return commands.Reply{Modal: &commands.Modal{CallbackID: "cb", Title: "T", Inputs: []commands.Input{
				{ID: "first", Label: "First"}, {ID: "second", Label: "Second"},
			}}}
		},
		SubmitFn: func(ctx context.Context, s commands.Submission) commands.SubmitResult {
			<-ctx.Done()
			return commands.SubmitResult{}
		},
	}
	start(t, f, h, nil)
	ctx := within(t, 10*time.Second)
	f.SlashCommand("U1", "C1", "form")
	if err := f.Await(ctx, func() bool { return len(f.Views()) == 1 }); err != nil {
		t.Fatal(err)
	}
	env, err := f.Submit("U1", f.Views()[0].ID, map[string]string{"first": "a", "second": "b"})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := f.WaitAck(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if d := ack.Acked.Sub(ack.Sent); d > 2500*time.Millisecond {
		t.Errorf("submission acked after %v", d)
	}
	var p struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(ack.Payload, &p); err != nil || p.ResponseAction != "errors" || p.Errors["first"] != noticeText[noticeTooSlow] {
		t.Errorf("ack payload %s, want the too-slow text on the first input", ack.Payload)
	}
	if !f.Views()[0].Open {
		t.Error("modal closed")
	}
}

func TestFatalCode(t *testing.T) {
	for _, tc := range []struct {
		err   error
		code  string
		fatal bool
	}{
		{errors.New("invalid_auth"), "invalid_auth", true},
		{slack.SlackErrorResponse{Err: "token_revoked"}, "token_revoked", true},
		{fmt.Errorf("open: %w", slack.SlackErrorResponse{Err: "account_inactive"}), "account_inactive", true},
		{slack.StatusCodeError{Code: 404, Status: "404 Not Found"}, "invalid_auth", true},
		{slack.StatusCodeError{Code: 503, Status: "503"}, "", false},
		{&slack.RateLimitedError{RetryAfter: time.Second}, "", false},
		{errors.New("dial tcp: connection refused"), "", false},
		{nil, "", false},
	} {
		code, fatal := fatalCode(tc.err)
		if code != tc.code || fatal != tc.fatal {
			t.Errorf("fatalCode(%v) = %q, %v; want %q, %v", tc.err, code, fatal, tc.code, tc.fatal)
		}
	}
}
