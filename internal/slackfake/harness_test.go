package slackfake

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// testBot is the real slack-go Socket Mode client wired to a fake.
type testBot struct {
	api    *slack.Client
	sm     *socketmode.Client
	events chan socketmode.Event // slash_commands and interactive, after the ack
	hellos chan socketmode.Event
}

func discard() *log.Logger { return log.New(io.Discard, "", 0) }

func newAPI(f *Slack, botToken string) *slack.Client {
	return slack.New(botToken,
		slack.OptionAPIURL(f.APIURL()),
		slack.OptionAppLevelToken(AppToken),
		slack.OptionLog(discard()))
}

// startBot runs a socketmode client that acks every envelope at once (with
// ackPayload's answer, if set) and then hands it to the test.
func startBot(t *testing.T, f *Slack, ackPayload func(socketmode.Event) any) *testBot {
	t.Helper()
	b := &testBot{
		api:    newAPI(f, BotToken),
		events: make(chan socketmode.Event, 64),
		hellos: make(chan socketmode.Event, 16),
	}
	b.sm = socketmode.New(b.api, socketmode.OptionLog(discard()))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = b.sm.RunContext(ctx)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-b.sm.Events:
				switch evt.Type {
				case socketmode.EventTypeHello:
					select {
					case b.hellos <- evt:
					default:
					}
				case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive:
					var payload any
					if ackPayload != nil {
						payload = ackPayload(evt)
					}
					actx, acancel := context.WithTimeout(ctx, 2*time.Second)
					if err := b.sm.AckCtx(actx, evt.Request.EnvelopeID, payload); err != nil {
						t.Errorf("ack %s: %v", evt.Request.EnvelopeID, err)
					}
					acancel()
					b.events <- evt
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return b
}

// next returns the next envelope the bot received.
func (b *testBot) next(ctx context.Context, t *testing.T) socketmode.Event {
	t.Helper()
	select {
	case evt := <-b.events:
		return evt
	case <-ctx.Done():
		t.Fatalf("no envelope reached the bot: %v", ctx.Err())
		return socketmode.Event{}
	}
}

// recorder is a testing.TB that keeps the fake's failures instead of
// failing the test, so tests can assert the fake would have failed it.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
	ch   chan string
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{TB: t, ch: make(chan string, 64)}
}

func (r *recorder) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.errs = append(r.errs, msg)
	r.mu.Unlock()
	select {
	case r.ch <- msg:
	default:
	}
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// await waits for a failure containing sub.
func (r *recorder) await(ctx context.Context, t *testing.T, sub string) {
	t.Helper()
	for _, e := range r.failures() {
		if strings.Contains(e, sub) {
			return
		}
	}
	for {
		select {
		case msg := <-r.ch:
			if strings.Contains(msg, sub) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the fake never reported a failure containing %q; got %q", sub, r.failures())
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
