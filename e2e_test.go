package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/internal/slackfake"
	"github.com/warden-sec/warden/playground"
)

// Slack users of the end-to-end tests. Their emails match the demo provider's
// seeded people.
var (
	alice = slackfake.User{ID: "U0ALICE", Name: "alice", Email: "alice.responder@example.com"}
	bob   = slackfake.User{ID: "U0BOB", Name: "bob", Email: "bob.engineer@example.com"}
	carol = slackfake.User{ID: "U0CAROL", Name: "carol", Email: "carol.manager@example.com"}
	dave  = slackfake.User{ID: "U0DAVE", Name: "dave", Email: "dave.contractor@example.com"}
	erin  = slackfake.User{ID: "U0ERIN", Name: "erin", Email: "erin.sales@example.com"}
)

// warden is a running `warden serve` wired to an in-process Slack.
type warden struct {
	slack  *slackfake.Slack
	data   string
	stderr *syncBuffer
	done   chan int
	stop   context.CancelFunc
}

// startWarden runs serve against a fresh fake Slack with the demo provider.
// extra overrides or adds environment variables.
func startWarden(t *testing.T, extra map[string]string) *warden {
	t.Helper()
	return startWardenOn(t, newSlack(t), extra)
}

// newSlack is an in-process Slack with the test users; alice is in the
// responders' user group S0IR.
func newSlack(t *testing.T) *slackfake.Slack {
	t.Helper()
	s := slackfake.New(t, slackfake.Options{})
	for _, u := range []slackfake.User{alice, bob, carol, dave, erin} {
		s.AddUser(u)
	}
	s.AddGroup("S0IR", alice.ID)
	return s
}

// startWardenOn runs serve against the Slack s (shared across restarts).
func startWardenOn(t *testing.T, s *slackfake.Slack, extra map[string]string) *warden {
	t.Helper()
	w := &warden{slack: s, data: filepath.Join(t.TempDir(), "warden.db"), stderr: &syncBuffer{}, done: make(chan int, 1)}
	env := map[string]string{
		"SLACK_BOT_TOKEN":   slackfake.BotToken,
		"SLACK_APP_TOKEN":   slackfake.AppToken,
		"SLACK_API_URL":     s.APIURL(),
		"WARDEN_DATA":       w.data,
		"WARDEN_HTTP_ADDR":  "127.0.0.1:0",
		"WARDEN_RESPONDERS": "S0IR",
		"WARDEN_LOG_LEVEL":  "debug",
	}
	for k, v := range extra {
		env[k] = v
	}
	w.data = env["WARDEN_DATA"]
	opened := s.ConnectionsOpened()
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() { w.done <- run(ctx, []string{"serve"}, envconfig.MapLookuper(env), &bytes.Buffer{}, w.stderr) }()
	t.Cleanup(func() { w.shutdown(t) })
	wait, cancelWait := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelWait()
	if err := s.Await(wait, func() bool { return s.ConnectionsOpened() > opened && s.Connections() >= 1 }); err != nil {
		t.Fatalf("warden did not connect to Slack: %v\n%s", err, w.stderr.String())
	}
	return w
}

// shutdown stops warden as SIGTERM would and returns its exit code.
func (w *warden) shutdown(t *testing.T) int {
	t.Helper()
	if w.stop == nil {
		return -1
	}
	w.stop()
	w.stop = nil
	select {
	case code := <-w.done:
		// Let the Slack notice the closed socket before another warden
		// connects to it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.slack.Await(ctx, func() bool { return w.slack.Connections() == 0 })
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("warden did not stop within 10 s\n%s", w.stderr.String())
		return -1
	}
}

// command types a slash command and returns warden's answer to it.
func (w *warden) command(t *testing.T, user, text string) slackfake.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	env := w.slack.SlashCommand(user, "C0INCIDENT", text)
	if _, err := w.slack.WaitAck(ctx, env); err != nil {
		t.Fatalf("/sessions %s: no ack: %v", text, err)
	}
	r, err := w.slack.AwaitResponse(ctx, env)
	if err != nil {
		t.Fatalf("/sessions %s: no answer: %v\n%s", text, err, w.stderr.String())
	}
	return r
}

// visible is everything a person would read in a response, as Slack got it
// (mrkdwn, escaping included); blocks must be JSON.
func visible(t *testing.T, text string, blocks json.RawMessage) string {
	t.Helper()
	if len(blocks) > 0 && !json.Valid(blocks) {
		t.Fatalf("blocks are not JSON: %s", blocks)
	}
	return playground.MessageText(text, blocks)
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share;
// a test can wait for a line to be written.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// awaitLog waits until the log contains want.
func (s *syncBuffer) awaitLog(ctx context.Context, want string) error {
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), want) {
			s.mu.Unlock()
			return nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHelpRoundTrip(t *testing.T) {
	w := startWarden(t, nil)
	r := w.command(t, bob.ID, "help")
	got := visible(t, r.Text, r.Blocks)
	for _, want := range []string{"/sessions mine", "/sessions revoke", "/sessions offboard"} {
		if !strings.Contains(got, want) {
			t.Errorf("help does not mention %q:\n%s", want, got)
		}
	}
	if r.ResponseType == "in_channel" {
		t.Errorf("help was posted to the channel; want ephemeral")
	}
}

func TestBadInputGetsOneUsageLine(t *testing.T) {
	w := startWarden(t, nil)
	r := w.command(t, bob.ID, "revoke")
	if !strings.Contains(r.Text, "Usage:") || strings.Contains(strings.ToLower(r.Text), "error:") {
		t.Errorf("bad input answer = %q, want a usage line", r.Text)
	}
}

func TestGracefulShutdownExitsZero(t *testing.T) {
	w := startWarden(t, nil)
	w.command(t, bob.ID, "help")
	if code := w.shutdown(t); code != exitOK {
		t.Errorf("exit code after shutdown = %d, want 0\n%s", code, w.stderr.String())
	}
}

func TestSecondWardenIsRefusedTheDataFile(t *testing.T) {
	w := startWarden(t, nil)
	var stderr syncBuffer
	code := run(t.Context(), []string{"serve"}, envconfig.MapLookuper(map[string]string{
		"SLACK_BOT_TOKEN": slackfake.BotToken, "SLACK_APP_TOKEN": slackfake.AppToken,
		"SLACK_API_URL": w.slack.APIURL(), "WARDEN_DATA": w.data, "WARDEN_HTTP_ADDR": "127.0.0.1:0",
	}), &bytes.Buffer{}, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "data file in use by another warden") {
		t.Errorf("second warden: exit %d, log %q", code, stderr.String())
	}
	// The first one still answers.
	w.command(t, bob.ID, "help")
}

// awaitDM waits for a message in user's DM with Warden whose visible text
// contains want, and returns it.
func (w *warden) awaitDM(t *testing.T, user, want string) slackfake.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	m, err := w.slack.AwaitMessage(ctx, w.slack.DMChannel(user), func(m slackfake.Message) bool {
		return strings.Contains(visible(t, m.Text, m.Blocks), want)
	})
	if err != nil {
		var seen []string
		for _, m := range w.slack.Messages(w.slack.DMChannel(user)) {
			seen = append(seen, visible(t, m.Text, m.Blocks))
		}
		t.Fatalf("no DM to %s containing %q: %v\nDMs: %q\n%s", user, want, err, seen, w.stderr.String())
	}
	return m
}
