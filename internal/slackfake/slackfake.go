// Package slackfake is an in-process Slack for Warden's tests.
//
// The real slack-go client (slack.New plus socketmode.New) talks to it over
// HTTP and a WebSocket, exactly as it talks to Slack: apps.connections.open
// hands out single-use socket tickets, the socket says hello, sends PINGs and
// delivers envelopes round-robin, and the Web API keeps channels, messages,
// views and response_url replies as state that tests can inspect and await.
//
// The fake fails the test (t.Errorf) when the app breaks a Slack rule that
// real Slack would punish: a late, duplicate, unknown or oversized ack, a
// Block Kit limit, an over-used response_url or an unknown Web API method.
// It never sleeps; every Await* call wakes on a state change.
//
// Typical use:
//
//	f := slackfake.New(t, slackfake.Options{})
//	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(f.APIURL()),
//		slack.OptionAppLevelToken(slackfake.AppToken))
//	// … start the bot with socketmode.New(api, …) …
//	env := f.SlashCommand("U0RESP", "C0INCIDENT", "list <@U0ALICE>")
//	ack, err := f.WaitAck(ctx, env)
//	reply, err := f.AwaitResponse(ctx, env)
//
// Semantics worth knowing:
//   - Connections counts sockets that can take envelopes; a socket that was
//     sent a disconnect no longer counts, and gets no more envelopes.
//   - Envelopes pushed while no socket is live wait in a queue (Pending).
//   - Responses holds response_url posts only. A slash command's ack payload
//     reply is in Ack.Payload, and its buttons can be clicked with
//     ClickEphemeral like those of a response_url reply.
//   - A response_url post with replace_original or delete_original for a
//     Click envelope edits or deletes that channel message; in_channel
//     replies become channel messages; ephemeral ones stay out of Messages.
package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Tokens the fake accepts. Any xoxb- token is accepted for the Web API and
// any xapp- token for apps.connections.open; these are the canonical ones.
const (
	BotToken = "xoxb-fake-bot-token"
	AppToken = "xapp-fake-app-token"
)

// Identifiers the fake uses for the bot itself and its defaults.
const (
	// BotUserID is the user ID auth.test reports and messages are posted as.
	BotUserID = "UFAKEBOT"
	// BotID is the bot ID auth.test reports.
	BotID = "BFAKEBOT"
	// DefaultAppID is the app ID used when Options.AppID is empty.
	DefaultAppID = "AFAKEAPP"
	// DefaultTeamID is the team ID used when Options.TeamID is empty.
	DefaultTeamID = "TFAKETEAM"
	// SlashCommandName is the command SlashCommand sends.
	SlashCommandName = "/sessions"
	// VerificationToken is the (deprecated) token field of every payload.
	VerificationToken = "fake-verification-token"
)

const (
	maxAckBytes        = 20 * 1024 // Slack drops an ack frame of this size or larger.
	maxResponseURLUses = 5
	socketReadLimit    = 1 << 20
	socketWriteTimeout = 5 * time.Second
	maxBodyBytes       = 4 << 20
)

// Options configures the fake. The zero value is usable.
type Options struct {
	// PingInterval is how often each socket gets a WebSocket PING. Default 500ms.
	PingInterval time.Duration
	// AppID and TeamID default to DefaultAppID and DefaultTeamID.
	AppID, TeamID string
	// AckDeadline is how long after delivery an ack may arrive. A later (or
	// missing) ack fails the test. Default 3s.
	AckDeadline time.Duration
	// MaxSockets is how many sockets may be open at once; one more is told
	// too_many_websockets and closed. Default 10.
	MaxSockets int
	// TriggerTTL is how long a trigger_id stays usable after its envelope is
	// delivered. Default 3s.
	TriggerTTL time.Duration
	// AllowMissingAcks stops the fake from failing the test when a delivered
	// envelope is never acked within AckDeadline (for tests that kill the app
	// on purpose mid-flight). Late, duplicate and unknown acks still fail.
	AllowMissingAcks bool
}

func (o *Options) setDefaults() {
	if o.PingInterval <= 0 {
		o.PingInterval = 500 * time.Millisecond
	}
	if o.AppID == "" {
		o.AppID = DefaultAppID
	}
	if o.TeamID == "" {
		o.TeamID = DefaultTeamID
	}
	if o.AckDeadline <= 0 {
		o.AckDeadline = 3 * time.Second
	}
	if o.MaxSockets <= 0 {
		o.MaxSockets = 10
	}
	if o.TriggerTTL <= 0 {
		o.TriggerTTL = 3 * time.Second
	}
}

// User is a workspace member known to users.info and users.lookupByEmail.
type User struct {
	ID, Name, RealName, Email string
	IsBot                     bool
	Deleted                   bool
}

// Ack is one ack frame received from the app.
type Ack struct {
	EnvelopeID string
	// Type is the envelope type: slash_commands or interactive.
	Type string
	// Payload is the ack's payload, nil for a plain ack.
	Payload json.RawMessage
	// Sent is when the envelope was written to a socket; Acked when the ack arrived.
	Sent, Acked time.Time
	// Socket is the socket the ack arrived on; DeliveredOn the one the
	// envelope was sent on. They differ when an ack crosses a reconnect.
	Socket      int
	DeliveredOn int
}

// Response is one post to an envelope's response_url.
type Response struct {
	EnvelopeID                      string
	Text                            string
	Blocks                          json.RawMessage
	ResponseType                    string
	ReplaceOriginal, DeleteOriginal bool
	At                              time.Time
}

// Message is the current state of one message in a channel.
type Message struct {
	Channel, TS, Text string
	Blocks            json.RawMessage
	// ThreadTS is set for replies in a thread.
	ThreadTS  string
	Ephemeral bool
	// User is, for an ephemeral message, the only user who sees it.
	User string
	// Edits counts chat.update calls and response_url replacements.
	Edits int
	// Metadata is the message metadata the app attached, if any.
	Metadata json.RawMessage
}

// View is a modal or Home tab the app opened.
type View struct {
	ID, CallbackID, PrivateMetadata, User string
	Blocks                                json.RawMessage
	Open                                  bool
	// Type is "modal" or "home".
	Type string
	// Title is the modal title text.
	Title string
	// Errors holds the errors of the last response_action "errors" ack.
	Errors map[string]string
	// PreviousViewID is set for pushed views.
	PreviousViewID string
	// Submit and Close are the labels of the modal's buttons ("" when absent).
	Submit, Close string
}

// Call is one Web API request.
type Call struct {
	Method string
	// Values holds form (and query) values; JSON the body of a JSON request.
	Values url.Values
	JSON   json.RawMessage
	At     time.Time
}

// Slack is the fake. Create it with New.
type Slack struct {
	report   func(problem string) // where broken Slack rules go
	opts     Options
	srv      *httptest.Server
	upgrader websocket.Upgrader
	wg       sync.WaitGroup
	stop     chan struct{}
	kick     chan struct{}

	failMu     sync.Mutex
	failClosed bool

	mu      sync.Mutex
	closed  bool
	changed chan struct{}
	seq     int

	// Socket Mode.
	tickets       map[string]bool // issued ticket -> used
	sockets       []*socket       // open sockets, in open order
	rr            int
	opened        int
	rejectedDials int
	tooMany       int
	queue         []*envelope
	envs          map[string]*envelope
	envOrder      []*envelope
	acks          []Ack
	authErr       string
	connGate      chan struct{} // non-nil: apps.connections.open waits for it

	// Web API.
	calls     []Call
	throttles map[string]*throttle
	users     map[string]User
	groups    map[string][]string
	chans     map[string][]*message
	dms       map[string]string
	tsSeq     int64
	triggers  map[string]*trigger
	views     []*view
	viewByID  map[string]*view
	homeViews map[string]*view
}

type throttle struct {
	n          int
	retryAfter time.Duration
}

type message struct {
	Message
	deleted bool
}

type trigger struct {
	user    string
	issued  time.Time // zero until the envelope is delivered
	used    bool
	viewTop string // view the trigger came from, for views.push
}

// New starts a fake Slack on 127.0.0.1. t.Cleanup closes every socket and
// stops the server. A broken Slack rule fails t.
func New(t testing.TB, opts Options) *Slack {
	t.Helper()
	s := newSlack(opts, func(problem string) { t.Errorf("%s", problem) })
	s.srv = httptest.NewServer(s.mux())
	s.start()
	t.Cleanup(s.close)
	return s
}

func newSlack(opts Options, report func(string)) *Slack {
	opts.setDefaults()
	if report == nil {
		report = func(string) {}
	}
	return &Slack{
		report: report,
		opts:   opts,
		upgrader: websocket.Upgrader{
			CheckOrigin: func(*http.Request) bool { return true },
		},
		stop:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		changed:   make(chan struct{}),
		tickets:   map[string]bool{},
		envs:      map[string]*envelope{},
		throttles: map[string]*throttle{},
		users:     map[string]User{},
		groups:    map[string][]string{},
		chans:     map[string][]*message{},
		dms:       map[string]string{},
		triggers:  map[string]*trigger{},
		viewByID:  map[string]*view{},
		homeViews: map[string]*view{},
	}
}

func (s *Slack) mux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/link/", s.handleLink)
	mux.HandleFunc("/response/", s.handleResponseURL)
	return mux
}

// start runs the envelope dispatcher once s.srv serves.
func (s *Slack) start() {
	s.wg.Add(1)
	go s.dispatch()
}

func (s *Slack) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	socks := slices.Clone(s.sockets)
	for _, sock := range socks {
		s.removeSocketLocked(sock)
	}
	for _, env := range s.envOrder {
		if env.timer != nil {
			env.timer.Stop()
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	close(s.stop)
	s.srv.Close()
	s.wg.Wait()
	s.failMu.Lock()
	s.failClosed = true
	s.failMu.Unlock()
}

// fail reports a broken Slack rule on the test. It may be called with s.mu held.
func (s *Slack) fail(format string, args ...any) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failClosed {
		return
	}
	s.report(fmt.Sprintf("slackfake: "+format, args...))
}

// notifyLocked wakes every waiter. Call with s.mu held.
func (s *Slack) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Slack) nextIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%06d", prefix, s.seq)
}

func (s *Slack) newTSLocked() string {
	s.tsSeq++
	return fmt.Sprintf("%d.%06d", 1700000000+s.tsSeq/1000000, s.tsSeq%1000000)
}

// APIURL is the Web API base URL, with the trailing slash slack.OptionAPIURL needs.
func (s *Slack) APIURL() string { return s.srv.URL + "/api/" }

// URL is the server's base URL (http://127.0.0.1:PORT).
func (s *Slack) URL() string { return s.srv.URL }

// AddUser adds or replaces a workspace member.
func (s *Slack) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
	s.notifyLocked()
}

// AddGroup adds or replaces a user group (S…) and its members.
func (s *Slack) AddGroup(groupID string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[groupID] = slices.Clone(members)
	s.notifyLocked()
}

// Await re-evaluates cond on every state change of the fake until it is
// true or ctx ends. cond may call any method of s.
func (s *Slack) Await(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slackfake: await: %w", context.Cause(ctx))
		case <-ch:
		}
	}
}

// WaitAck waits for the ack of envelope envID.
func (s *Slack) WaitAck(ctx context.Context, envID string) (Ack, error) {
	var got Ack
	err := s.Await(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, a := range s.acks {
			if a.EnvelopeID == envID {
				got = a
				return true
			}
		}
		return false
	})
	if err != nil {
		return Ack{}, fmt.Errorf("wait ack %s: %w", envID, err)
	}
	return got, nil
}

// Acks returns every ack received, in arrival order.
func (s *Slack) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// Unacked returns the IDs of delivered envelopes that have no ack yet.
func (s *Slack) Unacked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, env := range s.envOrder {
		if env.delivered && !env.acked {
			ids = append(ids, env.id)
		}
	}
	return ids
}

// AwaitResponse waits for the first response_url post of envelope envID.
func (s *Slack) AwaitResponse(ctx context.Context, envID string) (Response, error) {
	var got Response
	err := s.Await(ctx, func() bool {
		rs := s.Responses(envID)
		if len(rs) > 0 {
			got = rs[0]
			return true
		}
		return false
	})
	if err != nil {
		return Response{}, fmt.Errorf("await response %s: %w", envID, err)
	}
	return got, nil
}

// Responses returns every response_url post of envelope envID, in order.
func (s *Slack) Responses(envID string) []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	env := s.envs[envID]
	if env == nil {
		return nil
	}
	return slices.Clone(env.responses)
}

// Messages returns the current messages of channel (after updates and
// deletes), in posting order, ephemeral ones included.
func (s *Slack) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.chans[channel] {
		if !m.deleted {
			out = append(out, m.Message)
		}
	}
	return out
}

// AwaitMessage waits until channel holds a message for which pred is true,
// and returns the first such message.
func (s *Slack) AwaitMessage(ctx context.Context, channel string, pred func(Message) bool) (Message, error) {
	var got Message
	err := s.Await(ctx, func() bool {
		for _, m := range s.Messages(channel) {
			if pred(m) {
				got = m
				return true
			}
		}
		return false
	})
	if err != nil {
		return Message{}, fmt.Errorf("await message in %s: %w", channel, err)
	}
	return got, nil
}

// DMChannel returns the D… channel conversations.open returns for user.
func (s *Slack) DMChannel(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dmLocked(user)
}

func (s *Slack) dmLocked(user string) string {
	if id, ok := s.dms[user]; ok {
		return id
	}
	id := fmt.Sprintf("DFAKE%05d", len(s.dms)+1)
	s.dms[user] = id
	return id
}

// Views returns every view opened, pushed or published, in creation order.
func (s *Slack) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.views))
	for _, v := range s.views {
		out = append(out, v.public())
	}
	return out
}

// Throttle makes the next n calls of method answer HTTP 429 with
// Retry-After (whole seconds, rounded up, at least 1) and
// {"ok":false,"error":"ratelimited"}.
func (s *Slack) Throttle(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttles[method] = &throttle{n: n, retryAfter: retryAfter}
}

// SetAuthError makes apps.connections.open answer {"ok":false,"error":code}
// from now on; "" restores normal answers.
func (s *Slack) SetAuthError(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authErr = code
}

// PauseConnects makes apps.connections.open wait until ResumeConnects, so a
// test can act while the app is certainly between sockets.
func (s *Slack) PauseConnects() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connGate == nil {
		s.connGate = make(chan struct{})
	}
}

// ResumeConnects releases apps.connections.open calls held by PauseConnects.
func (s *Slack) ResumeConnects() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connGate != nil {
		close(s.connGate)
		s.connGate = nil
	}
}

// Pending is how many envelopes wait for a socket.
func (s *Slack) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Calls returns every Web API call of method ("" for all), in order.
func (s *Slack) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// ErrNotFound is returned by Click, ClickEphemeral and Submit when the
// message, button, envelope or view does not exist.
var ErrNotFound = errors.New("slackfake: not found")
