package slackfake

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func button(actionID, value, text string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, text, false, false))
}

func TestThrottleIsRateLimitedError(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	api := newAPI(f, BotToken)
	f.Throttle("chat.postMessage", 1, 1500*time.Millisecond)

	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("throttled post returned %v (%T), want *slack.RateLimitedError", err, err)
	}
	if rl.RetryAfter != 2*time.Second {
		t.Errorf("RetryAfter = %v, want 2s (1.5s rounded up)", rl.RetryAfter)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("post after the throttle: %v", err)
	}
	if n := len(f.Calls("chat.postMessage")); n != 2 {
		t.Errorf("%d chat.postMessage calls recorded, want 2", n)
	}
	if got := f.Messages("C1"); len(got) != 1 {
		t.Errorf("channel has %d messages, want only the unthrottled one", len(got))
	}
}

func TestMessagesPostUpdateDelete(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	api := newAPI(f, BotToken)

	_, ts1, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("one", false),
		slack.MsgOptionBlocks(section("*one*")))
	if err != nil {
		t.Fatal(err)
	}
	_, ts2, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("two", false))
	if err != nil {
		t.Fatal(err)
	}
	if ts1 == ts2 || ts1 == "" {
		t.Fatalf("timestamps %q and %q are not unique", ts1, ts2)
	}

	// text without blocks removes the blocks.
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts1, slack.MsgOptionText("one, edited", false)); err != nil {
		t.Fatal(err)
	}
	m, err := f.AwaitMessage(ctx, "C1", func(m Message) bool { return m.TS == ts1 })
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "one, edited" || m.Blocks != nil || m.Edits != 1 {
		t.Errorf("after chat.update: %+v, want new text, no blocks, 1 edit", m)
	}

	ets, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false))
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = api.UpdateMessageContext(ctx, "C1", ets, slack.MsgOptionText("edited", false))
	if err == nil || err.Error() != "message_not_found" {
		t.Errorf("chat.update of an ephemeral message: %v, want message_not_found", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", "1.2", slack.MsgOptionText("x", false)); err == nil {
		t.Error("chat.update of an unknown ts succeeded")
	}

	if _, _, err := api.DeleteMessageContext(ctx, "C1", ts2); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range f.Messages("C1") {
		got = append(got, m.Text)
		if m.Ephemeral && m.User != "U1" {
			t.Errorf("ephemeral message visible to %q, want U1", m.User)
		}
	}
	if diff := cmp.Diff([]string{"one, edited", "only you"}, got); diff != "" {
		t.Errorf("channel after delete (-want +got):\n%s", diff)
	}
}

func TestDirectMessagesAndLookups(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(t)
	f := New(rec, Options{TeamID: "T0ACME"})
	f.AddUser(User{ID: "U0ALICE", Name: "alice", RealName: "Alice A", Email: "Alice@Example.com"})
	f.AddUser(User{ID: "U0GONE", Name: "gone", Email: "gone@example.com", Deleted: true})
	f.AddGroup("S0MGRS", "U0MO", "U0RITA")
	api := newAPI(f, BotToken)

	auth, err := api.AuthTestContext(ctx)
	if err != nil || auth.UserID != BotUserID || auth.TeamID != "T0ACME" {
		t.Errorf("auth.test = %+v, %v", auth, err)
	}

	ch, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ch.ID, "D") || ch.ID != f.DMChannel("U0ALICE") {
		t.Errorf("conversations.open = %s, DMChannel = %s; want the same D… id", ch.ID, f.DMChannel("U0ALICE"))
	}
	again, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}})
	if err != nil || again.ID != ch.ID {
		t.Errorf("second conversations.open = %v, %v; want %s", again, err, ch.ID)
	}
	// Posting to a user ID lands in that user's DM.
	if _, _, err := api.PostMessageContext(ctx, "U0ALICE", slack.MsgOptionText("was this you?", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AwaitMessage(ctx, ch.ID, func(m Message) bool { return m.Text == "was this you?" }); err != nil {
		t.Error(err)
	}

	u, err := api.GetUserInfoContext(ctx, "U0ALICE")
	if err != nil || u.Profile.Email != "Alice@Example.com" || u.RealName != "Alice A" {
		t.Errorf("users.info = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U0NOBODY"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("users.info of an unknown user: %v, want user_not_found", err)
	}
	if u, err := api.GetUserByEmailContext(ctx, "alice@example.com"); err != nil || u.ID != "U0ALICE" {
		t.Errorf("users.lookupByEmail = %+v, %v", u, err)
	}
	if u, err := api.GetUserByEmailContext(ctx, "gone@example.com"); err != nil || !u.Deleted {
		t.Errorf("users.lookupByEmail of a deactivated user = %+v, %v; want deleted", u, err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "nobody@example.com"); err == nil || err.Error() != "users_not_found" {
		t.Errorf("users.lookupByEmail of an unknown email: %v, want users_not_found", err)
	}
	members, err := api.GetUserGroupMembersContext(ctx, "S0MGRS")
	if err != nil || !cmp.Equal(members, []string{"U0MO", "U0RITA"}) {
		t.Errorf("usergroups.users.list = %v, %v", members, err)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S0NONE"); err == nil || err.Error() != "no_such_subteam" {
		t.Errorf("usergroups.users.list of an unknown group: %v, want no_such_subteam", err)
	}

	// Tokens: the app token is not a bot token; no token is not_authed.
	if _, err := newAPI(f, AppToken).GetUserInfoContext(ctx, "U0ALICE"); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("users.info with an app token: %v, want invalid_auth", err)
	}
	if got := postRaw(t, f, "users.info", url.Values{"user": {"U0ALICE"}}); got["error"] != "not_authed" {
		t.Errorf("users.info without a token: %v, want not_authed", got)
	}
	if len(rec.failures()) != 0 {
		t.Fatalf("unexpected failures: %q", rec.failures())
	}

	if got := postRaw(t, f, "chat.scheduleMessage", url.Values{"token": {BotToken}}); got["error"] != "unknown_method" {
		t.Errorf("unknown method answered %v", got)
	}
	rec.await(ctx, t, `"chat.scheduleMessage" is not implemented`)
	if n := len(f.Calls("")); n < 10 {
		t.Errorf("only %d calls recorded", n)
	}
}

func postRaw(t *testing.T, f *Slack, method string, v url.Values) map[string]any {
	t.Helper()
	resp, err := http.PostForm(f.APIURL()+method, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%s answered %q", method, body)
	}
	return out
}

func TestBlockKitViolationsFailTheTest(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(t)
	f := New(rec, Options{})
	api := newAPI(f, BotToken)

	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(section(strings.Repeat("x", 3001))))
	if err == nil || err.Error() != "invalid_blocks" {
		t.Errorf("section of 3001 characters: %v, want invalid_blocks", err)
	}
	rec.await(ctx, t, "blocks[0].text.text is 3001 characters")

	many := make([]slack.Block, 51)
	for i := range many {
		many[i] = slack.NewDividerBlock()
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(many...)); err == nil || err.Error() != "invalid_blocks" {
		t.Errorf("51 blocks: %v, want invalid_blocks", err)
	}
	rec.await(ctx, t, "51 blocks (max 50)")

	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText(strings.Repeat("é", 4001), false)); err == nil || err.Error() != "msg_too_long" {
		t.Errorf("text of 4001 characters: %v, want msg_too_long", err)
	}
	rec.await(ctx, t, "msg_too_long")
	if n := len(f.Messages("C1")); n != 0 {
		t.Errorf("%d rejected messages were stored", n)
	}

	// The limits themselves are exact: 3000 and 50 pass.
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(section(strings.Repeat("x", 3000)))); err != nil {
		t.Errorf("section of 3000 characters: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(many[:50]...)); err != nil {
		t.Errorf("50 blocks: %v", err)
	}
	if n := len(rec.failures()); n != 3 {
		t.Errorf("%d failures reported, want 3: %q", n, rec.failures())
	}
}

func TestBlockKitLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	txt := func(typ, s string) map[string]any { return map[string]any{"type": typ, "text": s} }
	btn := func(mod func(map[string]any)) map[string]any {
		b := map[string]any{"type": "button", "action_id": "a", "text": txt("plain_text", "Go"), "value": "v"}
		mod(b)
		return b
	}
	actions := func(els ...any) map[string]any { return map[string]any{"type": "actions", "elements": els} }
	confirm := func(title, text, yes, no string) map[string]any {
		return map[string]any{"title": txt("plain_text", title), "text": txt("mrkdwn", text),
			"confirm": txt("plain_text", yes), "deny": txt("plain_text", no)}
	}
	fields := func(n, size int) map[string]any {
		fs := make([]any, n)
		for i := range fs {
			fs[i] = txt("mrkdwn", long(size))
		}
		return map[string]any{"type": "section", "fields": fs}
	}
	repeat := func(n int, v any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		block   map[string]any
		wantErr string // "" means valid
	}{
		{"header 150", map[string]any{"type": "header", "text": txt("plain_text", long(150))}, ""},
		{"header 151", map[string]any{"type": "header", "text": txt("plain_text", long(151))}, "151 characters"},
		{"header mrkdwn", map[string]any{"type": "header", "text": txt("mrkdwn", "x")}, "must be plain_text"},
		{"section empty text", map[string]any{"type": "section", "text": txt("mrkdwn", "")}, "1..3000"},
		{"fields 10x2000", fields(10, 2000), ""},
		{"fields 11", fields(11, 1), "fields has 11 items"},
		{"field 2001", fields(1, 2001), "2001 characters"},
		{"context 10", map[string]any{"type": "context", "elements": repeat(10, txt("mrkdwn", "x"))}, ""},
		{"context 11", map[string]any{"type": "context", "elements": repeat(11, txt("mrkdwn", "x"))}, "11 items"},
		{"actions 25", actions(repeat(25, btn(func(map[string]any) {}))...), ""},
		{"actions 26", actions(repeat(26, btn(func(map[string]any) {}))...), "26 items"},
		{"button text 75", actions(btn(func(b map[string]any) { b["text"] = txt("plain_text", long(75)) })), ""},
		{"button text 76", actions(btn(func(b map[string]any) { b["text"] = txt("plain_text", long(76)) })), "76 characters"},
		{"button value 2001", actions(btn(func(b map[string]any) { b["value"] = long(2001) })), "value is 2001"},
		{"button style", actions(btn(func(b map[string]any) { b["style"] = "secondary" })), "style"},
		{"action_id 256", actions(btn(func(b map[string]any) { b["action_id"] = long(256) })), "action_id is 256"},
		{"block_id 256", map[string]any{"type": "divider", "block_id": long(256)}, "block_id is 256"},
		{"confirm ok", actions(btn(func(b map[string]any) { b["confirm"] = confirm(long(100), long(300), long(30), long(30)) })), ""},
		{"confirm title 101", actions(btn(func(b map[string]any) { b["confirm"] = confirm(long(101), "t", "y", "n") })), "confirm.title"},
		{"confirm text 301", actions(btn(func(b map[string]any) { b["confirm"] = confirm("t", long(301), "y", "n") })), "confirm.text"},
		{"confirm deny 31", actions(btn(func(b map[string]any) { b["confirm"] = confirm("t", "x", "y", long(31)) })), "confirm.deny"},
		{"accessory button 76", map[string]any{"type": "section", "text": txt("mrkdwn", "x"),
			"accessory": btn(func(b map[string]any) { b["text"] = txt("plain_text", long(76)) })}, "accessory.text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal([]any{tc.block})
			probs := validateBlocks(raw, maxMessageBlocks)
			switch {
			case tc.wantErr == "" && len(probs) > 0:
				t.Errorf("valid block rejected: %q", probs)
			case tc.wantErr != "" && !strings.Contains(joinProblems(probs), tc.wantErr):
				t.Errorf("problems %q, want one containing %q", probs, tc.wantErr)
			}
		})
	}

	dup, _ := json.Marshal([]any{map[string]any{"type": "divider", "block_id": "x"}, map[string]any{"type": "divider", "block_id": "x"}})
	if probs := validateBlocks(dup, maxMessageBlocks); !strings.Contains(joinProblems(probs), "not unique") {
		t.Errorf("duplicate block_id: %q", probs)
	}
}

func modal(title string, blocks ...slack.Block) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false),
		Blocks:          slack.Blocks{BlockSet: blocks},
		CallbackID:      "deny-reason",
		PrivateMetadata: `{"run":"run-7f3a","step":2}`,
	}
}

func reasonInput() slack.Block {
	return slack.NewInputBlock("reason_block",
		slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false), nil,
		slack.NewPlainTextInputBlockElement(nil, "reason"))
}

func TestViewsTriggerAndSubmit(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	// The bot refuses the reason "bad" with a field error, and closes the modal otherwise.
	b := startBot(t, f, func(evt socketmode.Event) any {
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || cb.Type != slack.InteractionTypeViewSubmission {
			return nil
		}
		if cb.View.State.Values["reason_block"]["reason"].Value == "bad" {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{"reason_block": "Say more."})
		}
		return nil
	})

	f.SlashCommand("U0MGR", "C1", "deny")
	cmd := b.next(ctx, t).Data.(slack.SlashCommand)

	v, err := b.api.OpenViewContext(ctx, cmd.TriggerID, modal("Deny request", reasonInput()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.api.OpenViewContext(ctx, cmd.TriggerID, modal("Deny request", reasonInput())); err == nil || err.Error() != "exchanged_trigger_id" {
		t.Errorf("second views.open with the same trigger: %v, want exchanged_trigger_id", err)
	}
	if _, err := b.api.OpenViewContext(ctx, "1.2.nope", modal("Deny request", reasonInput())); err == nil || err.Error() != "invalid_trigger_id" {
		t.Errorf("views.open with an unknown trigger: %v, want invalid_trigger_id", err)
	}
	views := f.Views()
	if len(views) != 1 || views[0].ID != v.ID || !views[0].Open || views[0].User != "U0MGR" || views[0].CallbackID != "deny-reason" {
		t.Fatalf("Views() = %+v", views)
	}

	if _, err := f.Submit("U0MGR", v.ID, map[string]string{"nope": "x"}); err == nil {
		t.Error("Submit with an unknown block_id succeeded")
	}
	if _, err := f.Submit("U0OTHER", v.ID, map[string]string{"reason_block": "x"}); err == nil {
		t.Error("Submit by another user succeeded")
	}

	id, err := f.Submit("U0MGR", v.ID, map[string]string{"reason_block": "bad"})
	if err != nil {
		t.Fatal(err)
	}
	evt := b.next(ctx, t)
	cb := evt.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeViewSubmission || !evt.Request.AcceptsResponsePayload || evt.Request.EnvelopeID != id {
		t.Errorf("submission: type %s accepts_response_payload %v", cb.Type, evt.Request.AcceptsResponsePayload)
	}
	if cb.View.ID != v.ID || cb.View.CallbackID != "deny-reason" || cb.View.PrivateMetadata != `{"run":"run-7f3a","step":2}` || cb.User.ID != "U0MGR" {
		t.Errorf("submitted view %+v by %s", cb.View, cb.User.ID)
	}
	if _, err := f.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := f.Views()[0]; !got.Open || got.Errors["reason_block"] != "Say more." {
		t.Errorf("after an errors ack the view is %+v, want open with the field error", got)
	}

	if _, err = f.Submit("U0MGR", v.ID, map[string]string{"reason_block": "Not expected"}); err != nil {
		t.Fatal(err)
	}
	if got := b.next(ctx, t).Data.(slack.InteractionCallback).View.State.Values["reason_block"]["reason"].Value; got != "Not expected" {
		t.Errorf("submitted value %q", got)
	}
	if err := f.Await(ctx, func() bool { return !f.Views()[0].Open }); err != nil {
		t.Errorf("a plain ack did not close the modal: %v", err)
	}
	if _, err := f.Submit("U0MGR", v.ID, map[string]string{"reason_block": "again"}); err == nil {
		t.Error("Submit of a closed view succeeded")
	}
}

func TestViewsTriggerExpires(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(t)
	f := New(rec, Options{TriggerTTL: time.Nanosecond})
	b := startBot(t, f, nil)
	f.SlashCommand("U1", "C1", "")
	cmd := b.next(ctx, t).Data.(slack.SlashCommand)
	if _, err := b.api.OpenViewContext(ctx, cmd.TriggerID, modal("Deny", reasonInput())); err == nil || err.Error() != "expired_trigger_id" {
		t.Errorf("views.open after the trigger TTL: %v, want expired_trigger_id", err)
	}
	// A too-long modal title is refused and reported, before the trigger is looked at.
	if _, err := b.api.OpenViewContext(ctx, cmd.TriggerID, modal(strings.Repeat("t", 25), reasonInput())); err == nil || err.Error() != "invalid_arguments" {
		t.Errorf("modal title of 25 characters: %v, want invalid_arguments", err)
	}
	rec.await(ctx, t, "title text is 25 characters")
}

func TestClickOnChannelMessage(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	f.AddUser(User{ID: "U0MGR", Name: "mo"})
	b := startBot(t, f, nil)

	_, ts, err := b.api.PostMessageContext(ctx, "C0INC", slack.MsgOptionText("Approve?", false),
		slack.MsgOptionBlocks(
			section("Offboard *bob*?"),
			slack.NewActionBlock("approval", button("pb.approve", "run-7f3a/2", "Approve"), button("pb.deny", "run-7f3a/2", "Deny")),
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "or", false, false), nil,
				slack.NewAccessory(button("pb.more", "m", "More"))),
		))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Click("U0MGR", "C0INC", ts, "pb.nothing", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("click on a missing button: %v, want ErrNotFound", err)
	}
	if _, err := f.Click("U0MGR", "C0INC", "1.1", "pb.approve", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("click on a missing message: %v, want ErrNotFound", err)
	}

	id, err := f.Click("U0MGR", "C0INC", ts, "pb.approve", "run-forged/9")
	if err != nil {
		t.Fatal(err)
	}
	evt := b.next(ctx, t)
	if evt.Request.AcceptsResponsePayload {
		t.Error("block_actions envelope accepts a response payload")
	}
	cb := evt.Data.(slack.InteractionCallback)
	if len(cb.ActionCallback.BlockActions) != 1 || len(cb.ActionCallback.AttachmentActions) != 0 {
		t.Fatalf("actions = %+v, want one block action", cb.ActionCallback)
	}
	a := cb.ActionCallback.BlockActions[0]
	got := []string{string(cb.Type), cb.User.ID, cb.User.Name, a.ActionID, a.BlockID, a.Value,
		cb.Container.Type, cb.Container.ChannelID, cb.Container.MessageTs, cb.Message.Timestamp, cb.Channel.ID}
	want := []string{"block_actions", "U0MGR", "mo", "pb.approve", "approval", "run-forged/9",
		"message", "C0INC", ts, ts, "C0INC"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("block_actions (-want +got):\n%s", diff)
	}
	if cb.TriggerID == "" || cb.ResponseURL == "" || cb.Container.IsEphemeral || len(cb.Message.Blocks.BlockSet) != 3 {
		t.Errorf("trigger %q response_url %q ephemeral %v blocks %d", cb.TriggerID, cb.ResponseURL, cb.Container.IsEphemeral, len(cb.Message.Blocks.BlockSet))
	}

	// A block without block_id still yields a block action (Slack assigns one).
	if _, err := f.Click("U0MGR", "C0INC", ts, "pb.more", "m"); err != nil {
		t.Fatal(err)
	}
	more := b.next(ctx, t).Data.(slack.InteractionCallback)
	if len(more.ActionCallback.BlockActions) != 1 || more.ActionCallback.BlockActions[0].BlockID == "" {
		t.Errorf("accessory click actions = %+v, want a block action with a block_id", more.ActionCallback)
	}

	// replace_original through the click's response_url edits the message in place.
	if _, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeInChannel),
		slack.MsgOptionReplaceOriginal(cb.ResponseURL), slack.MsgOptionText("Approved by <@U0MGR>", false)); err != nil {
		t.Fatal(err)
	}
	r, err := f.AwaitResponse(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !r.ReplaceOriginal || r.Text != "Approved by <@U0MGR>" {
		t.Errorf("response = %+v", r)
	}
	msgs := f.Messages("C0INC")
	if len(msgs) != 1 || msgs[0].Text != "Approved by <@U0MGR>" || msgs[0].Blocks != nil || msgs[0].Edits != 1 {
		t.Errorf("channel after replace_original: %+v", msgs)
	}
}

func TestClickEphemeralReply(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	// The bot answers /sessions in its ack with a button.
	b := startBot(t, f, func(evt socketmode.Event) any {
		if evt.Type != socketmode.EventTypeSlashCommand {
			return nil
		}
		return map[string]any{"response_type": "ephemeral", "text": "2 sessions",
			"blocks": []slack.Block{slack.NewActionBlock("sess", button("dev.revoke", "s1", "Revoke"))}}
	})
	cmdID := f.SlashCommand("U0RESP", "C1", "list")
	b.next(ctx, t)
	ack, err := f.WaitAck(ctx, cmdID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ack.Payload), "dev.revoke") {
		t.Errorf("ack payload %s", ack.Payload)
	}
	if _, err := f.ClickEphemeral("U0OTHER", cmdID, "dev.revoke", "s1"); err == nil {
		t.Error("another user clicked an ephemeral reply")
	}

	clickID, err := f.ClickEphemeral("U0RESP", cmdID, "dev.revoke", "s1")
	if err != nil {
		t.Fatal(err)
	}
	cb := b.next(ctx, t).Data.(slack.InteractionCallback)
	if !cb.Container.IsEphemeral || cb.Container.ChannelID != "C1" || cb.ActionCallback.BlockActions[0].BlockID != "sess" {
		t.Errorf("ephemeral click container %+v actions %+v", cb.Container, cb.ActionCallback.BlockActions)
	}

	// Replacing through the click's response_url replaces the clicked reply.
	if _, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral),
		slack.MsgOptionReplaceOriginal(cb.ResponseURL), slack.MsgOptionText("Revoked.", false)); err != nil {
		t.Fatal(err)
	}
	if r, err := f.AwaitResponse(ctx, clickID); err != nil || !r.ReplaceOriginal || r.Text != "Revoked." {
		t.Errorf("response %+v, %v", r, err)
	}
	if _, err := f.ClickEphemeral("U0RESP", cmdID, "dev.revoke", "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("click on the replaced reply: %v, want ErrNotFound", err)
	}
}

func TestResponseURLUsedAtMostFiveTimes(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(t)
	f := New(rec, Options{})
	b := startBot(t, f, nil)
	id := f.SlashCommand("U1", "C1", "list")
	cmd := b.next(ctx, t).Data.(slack.SlashCommand)

	post := func(text string) error {
		_, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeEphemeral),
			slack.MsgOptionText(text, false))
		return err
	}
	for i := range 5 {
		if err := post("reply"); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	err := post("sixth")
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != http.StatusNotFound {
		t.Errorf("sixth use: %v, want a 404 StatusCodeError", err)
	}
	rec.await(ctx, t, "used more than 5 times")
	if n := len(f.Responses(id)); n != 5 {
		t.Errorf("%d responses recorded, want 5", n)
	}
	if r, err := f.AwaitResponse(ctx, id); err != nil || r.ResponseType != "ephemeral" || r.Text != "reply" {
		t.Errorf("first response %+v, %v", r, err)
	}
}
