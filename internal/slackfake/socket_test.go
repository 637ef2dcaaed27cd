package slackfake

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestSlashCommandRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{AppID: "A0WARDEN01", TeamID: "T0ACME"})
	f.AddUser(User{ID: "U0RESP", Name: "rita", Email: "rita@example.com"})
	b := startBot(t, f, nil)

	select {
	case hello := <-b.hellos:
		if hello.Request.NumConnections != 1 || hello.Request.ConnectionInfo.AppID != "A0WARDEN01" {
			t.Errorf("hello = %+v, want num_connections 1 and app A0WARDEN01", hello.Request)
		}
	case <-ctx.Done():
		t.Fatal("no hello")
	}

	id := f.SlashCommand("U0RESP", "C0INCIDENT", "list <@U0ALICE|alice>")
	evt := b.next(ctx, t)
	if evt.Request.EnvelopeID != id || !evt.Request.AcceptsResponsePayload {
		t.Errorf("envelope %s accepts_response_payload=%v, want %s true", evt.Request.EnvelopeID, evt.Request.AcceptsResponsePayload, id)
	}
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("event data is %T, want slack.SlashCommand", evt.Data)
	}
	want := slack.SlashCommand{
		Token: VerificationToken, TeamID: "T0ACME", TeamDomain: "fake",
		ChannelID: "C0INCIDENT", ChannelName: "c0incident", UserID: "U0RESP", UserName: "rita",
		Command: "/sessions", Text: "list <@U0ALICE|alice>", APIAppID: "A0WARDEN01",
		ResponseURL: f.URL() + "/response/" + id, TriggerID: cmd.TriggerID,
	}
	if diff := cmp.Diff(want, cmd); diff != "" {
		t.Errorf("slash command (-want +got):\n%s", diff)
	}
	if cmd.TriggerID == "" {
		t.Error("slash command has no trigger_id")
	}

	ack, err := f.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Socket != 1 || ack.DeliveredOn != 1 || ack.Type != "slash_commands" || ack.Payload != nil {
		t.Errorf("ack = %+v, want a plain slash_commands ack on socket 1", ack)
	}
	if ack.Acked.Before(ack.Sent) {
		t.Errorf("ack at %v before send at %v", ack.Acked, ack.Sent)
	}
	if got := len(f.Acks()); got != 1 {
		t.Errorf("%d acks recorded, want 1", got)
	}
}

// Envelopes pushed while the app is between sockets are queued and reach
// the next socket exactly once.
func TestReconnectKeepsEnvelopes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(*Slack)
	}{
		{"refresh_requested", func(f *Slack) { f.Disconnect("refresh_requested") }},
		{"warning", func(f *Slack) { f.Disconnect("warning") }},
		{"link_disabled", func(f *Slack) { f.Disconnect("link_disabled") }},
		{"dropped socket", func(f *Slack) { f.DropSockets() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			f := New(t, Options{})
			b := startBot(t, f, nil)
			if err := f.AwaitConnections(ctx, 1); err != nil {
				t.Fatal(err)
			}
			first := f.SlashCommand("U1", "C1", "before")
			if evt := b.next(ctx, t); evt.Request.EnvelopeID != first {
				t.Fatalf("got envelope %s, want %s", evt.Request.EnvelopeID, first)
			}
			if _, err := f.WaitAck(ctx, first); err != nil {
				t.Fatal(err)
			}

			f.PauseConnects() // hold the reconnect, so the gap is certain
			tc.cut(f)
			if n := f.Connections(); n != 0 {
				t.Fatalf("Connections() = %d right after the break, want 0", n)
			}
			gap := f.SlashCommand("U1", "C1", "during the gap")
			if n := f.Pending(); n != 1 {
				t.Fatalf("Pending() = %d during the gap, want 1", n)
			}
			// slack-go asks for a new socket: the old one is gone for good.
			if err := f.Await(ctx, func() bool { return len(f.Calls("apps.connections.open")) == 2 }); err != nil {
				t.Fatal(err)
			}
			f.ResumeConnects()

			if evt := b.next(ctx, t); evt.Request.EnvelopeID != gap {
				t.Fatalf("got envelope %s, want the gap envelope %s", evt.Request.EnvelopeID, gap)
			}
			ack, err := f.WaitAck(ctx, gap)
			if err != nil {
				t.Fatal(err)
			}
			if ack.Socket != 2 || ack.DeliveredOn != 2 {
				t.Errorf("gap envelope delivered on socket %d, acked on %d; want 2 and 2", ack.DeliveredOn, ack.Socket)
			}
			// Nothing is delivered twice: the next envelope is the next one.
			after := f.SlashCommand("U1", "C1", "after")
			if evt := b.next(ctx, t); evt.Request.EnvelopeID != after {
				t.Fatalf("got envelope %s, want %s", evt.Request.EnvelopeID, after)
			}
			if _, err := f.WaitAck(ctx, after); err != nil {
				t.Fatal(err)
			}
			if n := len(f.Acks()); n != 3 {
				t.Errorf("%d acks, want 3", n)
			}
			if n := f.ConnectionsOpened(); n != 2 {
				t.Errorf("ConnectionsOpened() = %d, want 2", n)
			}
		})
	}
}

func TestTwoClientsRoundRobin(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	b1 := startBot(t, f, nil)
	b2 := startBot(t, f, nil)
	if err := f.AwaitConnections(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ids := []string{f.SlashCommand("U1", "C1", "a"), f.SlashCommand("U1", "C1", "b")}
	e1, e2 := b1.next(ctx, t), b2.next(ctx, t)
	if e1.Request.EnvelopeID == e2.Request.EnvelopeID {
		t.Fatalf("both clients got %s", e1.Request.EnvelopeID)
	}
	sockets := map[int]bool{}
	for _, id := range ids {
		ack, err := f.WaitAck(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sockets[ack.DeliveredOn] = true
	}
	if len(sockets) != 2 {
		t.Errorf("envelopes went to sockets %v, want one each", sockets)
	}
}

func dial(t *testing.T, ctx context.Context, url string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return websocket.DefaultDialer.DialContext(ctx, url, http.Header{"Origin": {"https://api.slack.com"}})
}

func readFrame(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return m
}

func TestTicketIsSingleUse(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})
	_, u, err := newAPI(f, BotToken).StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "ws://127.0.0.1:") || !strings.Contains(u, "/link/?ticket=") {
		t.Errorf("socket URL %q, want ws://127.0.0.1:…/link/?ticket=…", u)
	}
	c, _, err := dial(t, ctx, u+"&debug_reconnects=true")
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	defer c.Close()
	if hello := readFrame(t, c); hello["type"] != "hello" || hello["num_connections"] != 1.0 {
		t.Errorf("first frame %v, want hello with num_connections 1", hello)
	}
	_, resp, err := dial(t, ctx, u)
	if err == nil {
		t.Fatal("second dial with the same ticket succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("second dial answered %v, want 401", resp)
	}
	if n := f.RejectedDials(); n != 1 {
		t.Errorf("RejectedDials() = %d, want 1", n)
	}
}

func TestConnectionsOpenAuth(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{})

	noApp := slack.New(BotToken, slack.OptionAPIURL(f.APIURL()), slack.OptionAppLevelToken(BotToken))
	if _, _, err := noApp.StartSocketModeContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("apps.connections.open with a bot token: %v, want invalid_auth", err)
	}

	f.SetAuthError("token_revoked")
	sm := socketmode.New(newAPI(f, BotToken), socketmode.OptionLog(discard()))
	go func() {
		for {
			select {
			case <-sm.Events:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := sm.RunContext(ctx); err == nil || !strings.Contains(err.Error(), "token_revoked") {
		t.Errorf("RunContext with a revoked token returned %v, want token_revoked", err)
	}
	f.SetAuthError("")
	if _, _, err := newAPI(f, BotToken).StartSocketModeContext(ctx); err != nil {
		t.Errorf("after clearing the auth error: %v", err)
	}
}

func TestPingsAndSocketLimit(t *testing.T) {
	ctx := testCtx(t)
	f := New(t, Options{PingInterval: 10 * time.Millisecond, MaxSockets: 1})
	api := newAPI(f, BotToken)
	_, u1, err := api.StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c1, _, err := dial(t, ctx, u1)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	pings := make(chan struct{}, 8)
	c1.SetPingHandler(func(string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return nil
	})
	go func() {
		for {
			if _, _, err := c1.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for range 3 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatal("no PING from the fake")
		}
	}
	if err := f.AwaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}

	_, u2, err := api.StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := dial(t, ctx, u2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if m := readFrame(t, c2); m["type"] != "disconnect" || m["reason"] != "too_many_websockets" {
		t.Errorf("second socket got %v, want disconnect too_many_websockets", m)
	}
	if n := f.TooManySockets(); n != 1 {
		t.Errorf("TooManySockets() = %d, want 1", n)
	}
}

// rawSocket opens a socket by hand, so a test can send acks slack-go never would.
func rawSocket(t *testing.T, f *Slack) *websocket.Conn {
	t.Helper()
	ctx := testCtx(t)
	_, u, err := newAPI(f, BotToken).StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := dial(t, ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if m := readFrame(t, c); m["type"] != "hello" {
		t.Fatalf("first frame %v, want hello", m)
	}
	return c
}

func writeAck(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func TestAckRulesFailTheTest(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(t)
	f := New(rec, Options{})
	c := rawSocket(t, f)

	id := f.SlashCommand("U1", "C1", "x")
	env := readFrame(t, c)
	if env["envelope_id"] != id || env["type"] != "slash_commands" || env["accepts_response_payload"] != true {
		t.Fatalf("envelope frame %v", env)
	}
	writeAck(t, c, map[string]any{"envelope_id": id})
	if _, err := f.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if len(rec.failures()) != 0 {
		t.Fatalf("a valid ack was reported: %q", rec.failures())
	}

	writeAck(t, c, map[string]any{"envelope_id": id})
	rec.await(ctx, t, "duplicate ack")

	writeAck(t, c, map[string]any{"envelope_id": "no-such-envelope"})
	rec.await(ctx, t, "unknown envelope_id")

	big := f.SlashCommand("U1", "C1", "y")
	readFrame(t, c)
	writeAck(t, c, map[string]any{"envelope_id": big, "payload": map[string]any{"text": strings.Repeat("x", maxAckBytes)}})
	rec.await(ctx, t, "20 KiB or more")

	click, err := f.ClickEphemeral("U1", id, "nope", "v")
	if err == nil {
		t.Errorf("ClickEphemeral on a reply-less envelope returned %s", click)
	}
}

func TestLateAndMissingAcksFailTheTest(t *testing.T) {
	t.Run("late", func(t *testing.T) {
		ctx := testCtx(t)
		rec := newRecorder(t)
		f := New(rec, Options{AckDeadline: time.Nanosecond, AllowMissingAcks: true})
		c := rawSocket(t, f)
		id := f.SlashCommand("U1", "C1", "x")
		readFrame(t, c)
		writeAck(t, c, map[string]any{"envelope_id": id})
		rec.await(ctx, t, "after delivery; the deadline is")
	})
	t.Run("missing", func(t *testing.T) {
		ctx := testCtx(t)
		rec := newRecorder(t)
		f := New(rec, Options{AckDeadline: 20 * time.Millisecond})
		c := rawSocket(t, f)
		id := f.SlashCommand("U1", "C1", "x")
		readFrame(t, c)
		rec.await(ctx, t, "was not acked within")
		if got := f.Unacked(); !cmp.Equal(got, []string{id}) {
			t.Errorf("Unacked() = %v, want [%s]", got, id)
		}
	})
}
