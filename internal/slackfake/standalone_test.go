package slackfake

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestStartOutsideATestReportsBrokenRules(t *testing.T) {
	var (
		mu       sync.Mutex
		problems []string
	)
	f, err := Start(Options{}, func(p string) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f.APIURL(), "http://127.0.0.1:") {
		t.Errorf("APIURL = %q, want loopback", f.APIURL())
	}
	resp, err := http.Post(f.APIURL()+"chat.nonsense", "application/x-www-form-urlencoded", strings.NewReader("token="+BotToken))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	got := strings.Join(problems, "\n")
	mu.Unlock()
	if !strings.Contains(got, `"chat.nonsense" is not implemented`) {
		t.Errorf("problems = %q, want the unknown method reported", got)
	}
	f.Close()
	f.Close() // twice is fine
	if resp, err := http.Post(f.APIURL()+"auth.test", "application/x-www-form-urlencoded", nil); err == nil {
		resp.Body.Close()
		t.Error("the fake still serves after Close")
	}
}

func TestChangedClosesOnTheNextChange(t *testing.T) {
	f := New(t, Options{})
	ch := f.Changed()
	select {
	case <-ch:
		t.Fatal("Changed is closed before anything changed")
	default:
	}
	f.AddUser(User{ID: "U1", Name: "ann"})
	select {
	case <-ch:
	default:
		t.Fatal("Changed was not closed by AddUser")
	}
	if f.Changed() == ch {
		t.Error("Changed returns the spent channel")
	}
}

func TestEphemeralsListAndClickByTimestamp(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	// The bot answers /sessions in its ack with a Revoke button.
	b := startBot(t, f, func(evt socketmode.Event) any {
		if evt.Type != socketmode.EventTypeSlashCommand {
			return nil
		}
		return map[string]any{"text": "first", "blocks": []slack.Block{slack.NewActionBlock("a1", button("ses.revoke", "s1", "Revoke"))}}
	})
	cmdID := f.SlashCommand("U0RESP", "C1", "mine")
	cmd := b.next(ctx, t).Data.(slack.SlashCommand)
	// …and then, through the response_url, a second reply with the same action_id.
	if _, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeEphemeral),
		slack.MsgOptionText("second", false), slack.MsgOptionBlocks(slack.NewActionBlock("a2", button("ses.revoke", "s2", "Revoke")))); err != nil {
		t.Fatal(err)
	}
	eph := f.Ephemerals("U0RESP")
	if len(eph) != 2 || eph[0].Text != "first" || eph[1].Text != "second" || eph[0].EnvelopeID != cmdID || eph[0].Channel != "C1" {
		t.Fatalf("Ephemerals = %+v, want first and second, in order", eph)
	}
	if got := f.Ephemerals("U0OTHER"); len(got) != 0 {
		t.Errorf("another user sees %+v", got)
	}
	if _, err := f.ClickEphemeralAt("U0OTHER", eph[0].TS, "ses.revoke", "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another user's click: %v, want ErrNotFound", err)
	}
	if _, err := f.ClickEphemeralAt("U0RESP", eph[0].TS, "nope", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("click on a missing action: %v, want ErrNotFound", err)
	}

	// ClickEphemeral would pick the latest reply; ClickEphemeralAt the one named.
	clickID, err := f.ClickEphemeralAt("U0RESP", eph[0].TS, "ses.revoke", "s1")
	if err != nil {
		t.Fatal(err)
	}
	cb := b.next(ctx, t).Data.(slack.InteractionCallback)
	if cb.Container.MessageTs != eph[0].TS || cb.ActionCallback.BlockActions[0].BlockID != "a1" {
		t.Errorf("click went to %s block %s, want %s block a1", cb.Container.MessageTs, cb.ActionCallback.BlockActions[0].BlockID, eph[0].TS)
	}
	if _, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral),
		slack.MsgOptionDeleteOriginal(cb.ResponseURL)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AwaitResponse(ctx, clickID); err != nil {
		t.Fatal(err)
	}
	if eph := f.Ephemerals("U0RESP"); len(eph) != 1 || eph[0].Text != "second" {
		t.Errorf("after delete_original Ephemerals = %+v, want only second", eph)
	}
}

func TestCloseView(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	b := startBot(t, f, nil)
	f.SlashCommand("U0MGR", "C1", "deny")
	cmd := b.next(ctx, t).Data.(slack.SlashCommand)
	m := modal("Deny request", reasonInput())
	m.Submit = slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false)
	m.Close = slack.NewTextBlockObject(slack.PlainTextType, "Keep", false, false)
	v, err := b.api.OpenViewContext(ctx, cmd.TriggerID, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Views(); len(got) != 1 || got[0].Submit != "Deny" || got[0].Close != "Keep" || !got[0].Open {
		t.Fatalf("Views = %+v", got)
	}
	if err := f.CloseView("U0OTHER", v.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("another user closed the modal: %v", err)
	}
	if err := f.CloseView("U0MGR", v.ID); err != nil {
		t.Fatal(err)
	}
	if f.Views()[0].Open {
		t.Error("modal still open after CloseView")
	}
	if err := f.CloseView("U0MGR", v.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("closing a closed modal: %v, want ErrNotFound", err)
	}
	if _, err := f.Submit("U0MGR", v.ID, map[string]string{"reason_block": "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("submitting a closed modal: %v, want ErrNotFound", err)
	}
}
