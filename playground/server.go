// Package playground lets people try Warden in a browser without a Slack
// workspace: an in-process Slack (internal/slackfake) that the real bot
// connects to, and a web page that plays the Slack client for five demo
// people. The page types slash commands, clicks buttons (confirm dialogs
// included), fills modals, and watches each person's DMs, their ephemeral
// replies and the security channel live, over Server-Sent Events fed by the
// fake's change notifications. A scripted scenario plays an incident
// against the demo identity provider.
//
// Everything the page shows is rendered from Block Kit on the server with
// html/template, so nothing a message carries can inject markup.
package playground

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-sec/warden/internal/slackfake"
)

//go:embed web
var webFS embed.FS

const (
	maxRequestBytes = 64 << 10
	maxProblems     = 50
	heartbeat       = 15 * time.Second
)

// Config configures a Server. The zero value is usable.
type Config struct {
	People          []Person // default DefaultPeople()
	Channel         string   // where commands are typed; default DefaultChannel
	SecurityChannel string   // default DefaultSecurityChannel
	// StepTimeout is how long a scenario step waits for what it expects
	// before it fails; default 15s.
	StepTimeout time.Duration
	// NewDeviceTimeout is how long the scenario waits for Warden to notice
	// the new device and DM its owner: one poll interval of the watcher
	// and then some. Default StepTimeout.
	NewDeviceTimeout time.Duration
	// WebhookURL and WebhookSecret are Warden's generic login-event
	// webhook and its bearer secret. The scenario tells Warden about the
	// new device there, as an identity provider would; when empty, Warden
	// finds it at its next poll.
	WebhookURL, WebhookSecret string
	// Slack configures the in-process Slack; PingInterval defaults to 5s.
	Slack  slackfake.Options
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if len(c.People) == 0 {
		c.People = DefaultPeople()
	}
	seen := map[string]bool{}
	for _, p := range c.People {
		if p.ID == "" || p.Name == "" || seen[p.ID] {
			return fmt.Errorf("person %q: id and name are required and ids are unique", p.Name)
		}
		seen[p.ID] = true
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.SecurityChannel == "" {
		c.SecurityChannel = DefaultSecurityChannel
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = 15 * time.Second
	}
	if c.NewDeviceTimeout == 0 {
		c.NewDeviceTimeout = c.StepTimeout
	}
	if c.StepTimeout < 0 || c.NewDeviceTimeout < 0 {
		return errors.New("step timeouts must be positive")
	}
	if c.Slack.PingInterval == 0 {
		c.Slack.PingInterval = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is the playground: the in-process Slack and the web page.
type Server struct {
	cfg   Config
	log   *slog.Logger
	slack *slackfake.Slack
	rend  *renderer
	page  *template.Template

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	changed  chan struct{} // closed when the playground's own state changes
	inv      Inventory
	invReady chan struct{} // closed by the first SetInventory
	problems []string
	scenario []StepState
	running  bool
	cancel   context.CancelFunc
}

// New starts the in-process Slack with the people in it. Connect the bot
// to Slack().APIURL() with slackfake.BotToken and slackfake.AppToken, then
// serve Handler(). Close stops everything.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("playground config: %w", err)
	}
	rend, err := newRenderer(cfg)
	if err != nil {
		return nil, fmt.Errorf("playground templates: %w", err)
	}
	page, err := template.New("index.html").ParseFS(webFS, "web/index.html")
	if err != nil {
		return nil, fmt.Errorf("playground templates: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		page:     page,
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		invReady: make(chan struct{}),
	}
	s.rend = rend
	fake, err := slackfake.Start(cfg.Slack, s.problem)
	if err != nil {
		return nil, fmt.Errorf("playground: %w", err)
	}
	s.slack = fake
	var responders []string
	for _, p := range cfg.People {
		fake.AddUser(slackfake.User{ID: p.ID, Name: p.Name, RealName: p.RealName, Email: p.Email})
		if p.Responder {
			responders = append(responders, p.ID)
		}
	}
	fake.AddGroup(ResponderGroup, responders...)
	return s, nil
}

// channelName is how the page names the playground's channels.
func channelName(id string) string {
	switch id {
	case DefaultChannel:
		return "incident"
	case DefaultSecurityChannel:
		return "security"
	}
	return strings.ToLower(id)
}

// Slack is the in-process Slack the bot must connect to.
func (s *Server) Slack() *slackfake.Slack { return s.slack }

// SetInventory hands the scenario the identity provider the running
// Warden uses (the demo provider).
func (s *Server) SetInventory(inv Inventory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inv == nil {
		close(s.invReady)
	}
	s.inv = inv
	s.notifyLocked()
}

// inventory waits until SetInventory was called, or ctx ends.
func (s *Server) inventory(ctx context.Context) (Inventory, error) {
	select {
	case <-s.invReady:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inv, nil
}

// Close stops the scenario, ends every event stream and stops the
// in-process Slack. Stop the bot first: it would otherwise see Slack go.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.done) // under mu: StartScenario checks it there
		if s.cancel != nil {
			s.cancel()
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.slack.Close()
	})
}

// problem records a Slack rule the bot broke, as the fake reports it.
func (s *Server) problem(msg string) {
	s.log.Warn("playground: slack rule broken", "problem", msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, msg)
	if len(s.problems) > maxProblems {
		s.problems = slices.Delete(s.problems, 0, len(s.problems)-maxProblems)
	}
	s.notifyLocked()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) ownChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Server) person(id string) (Person, bool) {
	for _, p := range s.cfg.People {
		if p.ID == id {
			return p, true
		}
	}
	return Person{}, false
}

// Handler serves the page, its event stream and its JSON API.
func (s *Server) Handler() http.Handler {
	static, _ := fs.Sub(webFS, "web")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /api/state", s.stateJSON)
	mux.HandleFunc("POST /api/command", s.command)
	mux.HandleFunc("POST /api/click", s.click)
	mux.HandleFunc("POST /api/submit", s.submit)
	mux.HandleFunc("POST /api/close", s.closeView)
	mux.HandleFunc("POST /api/scenario", s.play)
	return guard(mux)
}

// guard keeps other web sites out: requests must name the server by an IP
// address or localhost (no DNS rebinding), and a POST must be JSON from
// this origin (no cross-site form posts).
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host != "localhost" && net.ParseIP(host) == nil {
			writeError(w, http.StatusForbidden, "open the playground by IP address or localhost")
			return
		}
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				writeError(w, http.StatusUnsupportedMediaType, "send JSON")
				return
			}
			if o := r.Header.Get("Origin"); o != "" {
				u, err := url.Parse(o)
				if err != nil || u.Host != r.Host {
					writeError(w, http.StatusForbidden, "cross-origin request refused")
					return
				}
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads a JSON request body into v, answering the error itself.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request too large")
		} else {
			writeError(w, http.StatusBadRequest, "bad JSON")
		}
		return false
	}
	return true
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	as := s.cfg.People[0].ID
	if q := r.URL.Query().Get("as"); q != "" {
		for _, p := range s.cfg.People {
			if p.ID == q || strings.EqualFold(p.Name, q) {
				as = p.ID
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := s.page.Execute(w, map[string]string{
		"As": as, "ChannelName": channelName(s.cfg.Channel), "SecurityName": channelName(s.cfg.SecurityChannel),
	})
	if err != nil {
		s.log.Error("playground: page", "err", err)
	}
}

// commandRequest is a slash command as typed on the page.
type commandRequest struct {
	As   string `json:"as"`
	Text string `json:"text"`
}

func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	var req commandRequest
	if !decode(w, r, &req) {
		return
	}
	if _, ok := s.person(req.As); !ok {
		writeError(w, http.StatusBadRequest, "unknown person")
		return
	}
	env := s.slack.SlashCommand(req.As, s.cfg.Channel, clientText(req.Text, s.cfg.People))
	writeJSON(w, http.StatusAccepted, map[string]string{"envelope": env})
}

// clickRequest is a click on a button of a message the person sees.
type clickRequest struct {
	As       string `json:"as"`
	Kind     string `json:"kind"` // "message" or "ephemeral"
	Channel  string `json:"channel"`
	TS       string `json:"ts"`
	ActionID string `json:"action_id"`
	Value    string `json:"value"` // sent as is: Slack lets a person forge it too
}

func (s *Server) click(w http.ResponseWriter, r *http.Request) {
	var req clickRequest
	if !decode(w, r, &req) {
		return
	}
	if _, ok := s.person(req.As); !ok {
		writeError(w, http.StatusBadRequest, "unknown person")
		return
	}
	var (
		env string
		err error
	)
	switch req.Kind {
	case "message":
		if !s.canSee(req.As, req.Channel) {
			writeError(w, http.StatusForbidden, "that conversation is not yours")
			return
		}
		env, err = s.slack.Click(req.As, req.Channel, req.TS, req.ActionID, req.Value)
	case "ephemeral":
		env, err = s.slack.ClickEphemeralAt(req.As, req.TS, req.ActionID, req.Value)
	default:
		writeError(w, http.StatusBadRequest, "kind must be message or ephemeral")
		return
	}
	if err != nil {
		writeError(w, http.StatusNotFound, "that message or button is gone")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"envelope": env})
}

// canSee reports whether person sees channel: the shared channels and
// their own DM with Warden.
func (s *Server) canSee(person, channel string) bool {
	return channel == s.cfg.Channel || channel == s.cfg.SecurityChannel || channel == s.slack.DMChannel(person)
}

type submitRequest struct {
	As     string            `json:"as"`
	View   string            `json:"view"`
	Values map[string]string `json:"values"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	var req submitRequest
	if !decode(w, r, &req) {
		return
	}
	if _, ok := s.person(req.As); !ok {
		writeError(w, http.StatusBadRequest, "unknown person")
		return
	}
	env, err := s.slack.Submit(req.As, req.View, req.Values)
	if err != nil {
		writeError(w, http.StatusNotFound, "that form is closed or has no such field")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"envelope": env})
}

type closeRequest struct {
	As   string `json:"as"`
	View string `json:"view"`
}

func (s *Server) closeView(w http.ResponseWriter, r *http.Request) {
	var req closeRequest
	if !decode(w, r, &req) {
		return
	}
	if err := s.slack.CloseView(req.As, req.View); err != nil {
		writeError(w, http.StatusNotFound, "that form is already closed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{})
}

func (s *Server) play(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if !decode(w, r, &req) {
		return
	}
	if !s.StartScenario() {
		writeError(w, http.StatusConflict, "the scenario is already playing")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{})
}

// events streams the page's state for one person: one "state" event now
// and one after every change of the fake Slack or the playground. Nothing
// polls; the stream waits on the change channels.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	as := r.URL.Query().Get("as")
	if _, ok := s.person(as); !ok {
		writeError(w, http.StatusBadRequest, "unknown person")
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var last []byte
	for {
		slackCh, ownCh := s.slack.Changed(), s.ownChanged() // before reading: no change slips by
		st, err := s.State(as)
		if err != nil {
			s.log.Error("playground: state", "err", err)
			return
		}
		b, err := json.Marshal(st)
		if err != nil {
			return
		}
		if string(b) != string(last) {
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
				return
			}
			flusher.Flush()
			last = b
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-slackCh:
		case <-ownCh:
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

func (s *Server) stateJSON(w http.ResponseWriter, r *http.Request) {
	as := r.URL.Query().Get("as")
	if _, ok := s.person(as); !ok {
		writeError(w, http.StatusBadRequest, "unknown person")
		return
	}
	st, err := s.State(as)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "render failed")
		return
	}
	writeJSON(w, http.StatusOK, st)
}
