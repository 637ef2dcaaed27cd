// Package watch notices new devices. Every poll interval it lists the
// sessions of watched people, compares each session's coarse device
// fingerprint with the devices Warden knows for that person, and starts the
// new-device playbook ("was this you?") for a device it has not seen. Login
// events from webhooks go through the same check at once. A risky account
// change (MFA factor added, password or recovery changed) soon after a new
// device marks that run high risk.
//
// The first time Warden sees a person it learns their devices silently.
package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// Store is the part of storage the watcher uses: one record per person in
// storage.Devices, and event ids in storage.Dedupe.
type Store interface {
	Get(ctx context.Context, b storage.Bucket, key string) (storage.Item, error)
	Put(ctx context.Context, b storage.Bucket, key string, expect uint64, value []byte, audit ...storage.Record) (uint64, error)
}

// Engine starts and flags runs (a *playbooks.Engine).
type Engine interface {
	Start(ctx context.Context, req playbooks.StartRequest) (playbooks.Run, error)
	MarkRisk(ctx context.Context, runID, why string) (playbooks.Run, error)
}

// Directory maps people between Slack and email (bot implements it).
type Directory interface {
	UserByEmail(ctx context.Context, email string) (string, error)
	UserEmail(ctx context.Context, userID string) (string, error)
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Gauges receive the hygiene counts of every poll (commands.Metrics).
type Gauges interface {
	SetHygiene(stale, unmanaged int)
}

// Config configures a Watcher. Store, Inventory and Engine are required.
type Config struct {
	Store      Store
	Inventory  *sessions.Inventory
	Engine     Engine
	Directory  Directory     // nil: no Slack ids, no groups in Watch
	Watch      []string      // emails and Slack user-group ids (S…), besides everyone a provider lists org-wide
	Interval   time.Duration // default 5m
	RiskWindow time.Duration // default 1h
	StaleAfter time.Duration // for the hygiene gauges; default 30 days
	Hygiene    Gauges        // nil: no gauges
	Now        func() time.Time
	Logger     *slog.Logger
}

var groupRe = regexp.MustCompile(`^S[A-Z0-9]{2,20}$`)

func (c *Config) validate() error {
	if c.Store == nil || c.Inventory == nil || c.Engine == nil {
		return errors.New("store, inventory and engine are required")
	}
	for _, w := range c.Watch {
		if !groupRe.MatchString(w) && !strings.Contains(w, "@") {
			return fmt.Errorf("watch entry %q is neither an email nor a user-group id", w)
		}
	}
	if c.Interval == 0 {
		c.Interval = 5 * time.Minute
	}
	if c.RiskWindow == 0 {
		c.RiskWindow = time.Hour
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = sessions.DefaultStaleAfter
	}
	if c.Interval < 0 || c.RiskWindow < 0 {
		return errors.New("interval and risk window must be positive")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Watcher finds new devices. It is safe for concurrent use.
type Watcher struct {
	cfg   Config
	log   *slog.Logger
	locks sync.Map // email → *sync.Mutex: one check per person at a time

	mu   sync.Mutex
	snap Snapshot
}

// New returns a Watcher.
func New(cfg Config) (*Watcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new watcher: %w", err)
	}
	return &Watcher{cfg: cfg, log: cfg.Logger}, nil
}

// Snapshot is what the last poll saw, for the hygiene report.
type Snapshot struct {
	At     time.Time
	People map[string][]sessions.Session // by email
	Errors map[string]string             // by provider: why it could not be asked
}

// Snapshot returns the last poll's view (zero At when none has run).
func (w *Watcher) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

// Run polls at once and then every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "poll for new devices", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll lists every watched person's sessions once and checks them.
func (w *Watcher) Poll(ctx context.Context) error {
	people := map[string][]sessions.Session{}
	errs := map[string]string{}
	for _, p := range w.cfg.Inventory.Providers() {
		l, ok := p.(sessions.Lister)
		if !ok {
			continue
		}
		ss, users, err := l.ListAll(ctx)
		if err != nil {
			errs[p.Name()] = err.Error()
			w.log.WarnContext(ctx, "list all sessions", "provider", p.Name(), "err", err)
			continue
		}
		for i, s := range ss {
			if i < len(users) && users[i].Email != "" {
				email := strings.ToLower(users[i].Email)
				people[email] = append(people[email], s)
			}
		}
	}
	for _, email := range w.watched(ctx) {
		res := w.cfg.Inventory.Lookup(ctx, email)
		people[email] = people[email][:0:0]
		for _, pr := range res.Providers {
			if pr.Err != nil {
				errs[pr.Provider] = pr.Err.Error()
			}
			people[email] = append(people[email], pr.Sessions...)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	emails := make([]string, 0, len(people))
	for e := range people {
		emails = append(emails, e)
	}
	sort.Strings(emails)
	var firstErr error
	for _, email := range emails {
		if err := w.observe(ctx, email, people[email]); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	w.mu.Lock()
	w.snap = Snapshot{At: w.cfg.Now().UTC(), People: people, Errors: errs}
	w.mu.Unlock()
	if w.cfg.Hygiene != nil {
		stale, unmanaged := 0, 0
		for _, list := range people {
			for _, s := range list {
				if sessions.IsStale(s, w.cfg.Now(), w.cfg.StaleAfter) {
					stale++
				}
				if sessions.IsUnmanaged(s) {
					unmanaged++
				}
			}
		}
		w.cfg.Hygiene.SetHygiene(stale, unmanaged)
	}
	w.log.InfoContext(ctx, "new-device poll done", "people", len(people), "providers_failed", len(errs))
	return firstErr
}

// watched expands Config.Watch into emails.
func (w *Watcher) watched(ctx context.Context) []string {
	seen := map[string]bool{}
	var out []string
	add := func(e string) {
		e = strings.ToLower(strings.TrimSpace(e))
		if e != "" && !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, entry := range w.cfg.Watch {
		if !groupRe.MatchString(entry) {
			add(entry)
			continue
		}
		if w.cfg.Directory == nil {
			continue
		}
		members, err := w.cfg.Directory.GroupMembers(ctx, entry)
		if err != nil {
			w.log.WarnContext(ctx, "watch group", "group", entry, "err", err)
			continue
		}
		for _, m := range members {
			if email, err := w.cfg.Directory.UserEmail(ctx, m); err == nil {
				add(email)
			}
		}
	}
	return out
}

// Device states.
const (
	stateKnown   = "known"   // seen at the first look, or confirmed by the person
	statePending = "pending" // asked; waiting for the answer
	stateDenied  = "denied"  // the person said "not me": seeing it again asks again
)

// device is one known device of a person.
type device struct {
	State     string    `json:"state"`
	FirstSeen time.Time `json:"first_seen"`
	Provider  string    `json:"provider,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	RunID     string    `json:"run_id,omitempty"`
}

// riskEvent is a risky account change, kept for RiskWindow.
type riskEvent struct {
	Type sessions.EventType `json:"type"`
	At   time.Time          `json:"at"`
}

// person is the stored record of one person: their devices and recent
// risky changes.
type person struct {
	V       int                `json:"v"`
	Learned time.Time          `json:"learned"`
	Devices map[string]*device `json:"devices"` // by fingerprint
	Risks   []riskEvent        `json:"risks,omitempty"`
}

func personKey(email string) string { return "person/" + email }
func runKey(runID string) string    { return "run/" + runID }

func (w *Watcher) lock(email string) func() {
	m, _ := w.locks.LoadOrStore(email, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (w *Watcher) load(ctx context.Context, email string) (person, uint64, error) {
	it, err := w.cfg.Store.Get(ctx, storage.Devices, personKey(email))
	if errors.Is(err, storage.ErrNotFound) {
		return person{V: 1, Devices: map[string]*device{}}, 0, nil
	}
	if err != nil {
		return person{}, 0, fmt.Errorf("load devices: %w", err)
	}
	var p person
	if err := json.Unmarshal(it.Value, &p); err != nil {
		return person{}, 0, fmt.Errorf("decode devices of %s: %w", email, err)
	}
	if p.Devices == nil {
		p.Devices = map[string]*device{}
	}
	return p, it.Version, nil
}

func (w *Watcher) save(ctx context.Context, email string, p person, version uint64, audit ...storage.Record) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode devices: %w", err)
	}
	if _, err := w.cfg.Store.Put(ctx, storage.Devices, personKey(email), version, b, audit...); err != nil {
		return fmt.Errorf("save devices: %w", err)
	}
	return nil
}

// observe checks one person's sessions against their known devices.
func (w *Watcher) observe(ctx context.Context, email string, list []sessions.Session) error {
	unlock := w.lock(email)
	defer unlock()
	p, version, err := w.load(ctx, email)
	if err != nil {
		return err
	}
	now := w.cfg.Now().UTC()
	if p.Learned.IsZero() {
		// First look: learn silently.
		p.Learned = now
		n := 0
		for _, s := range list {
			if fp := sessions.Fingerprint(s); fp != "" && p.Devices[fp] == nil {
				p.Devices[fp] = &device{State: stateKnown, FirstSeen: now, Provider: s.Provider, SessionID: s.ID}
				n++
			}
		}
		return w.save(ctx, email, p, version, storage.Record{Actor: "system", Action: "device.learn", Subject: email,
			Outcome: "learned", Details: map[string]string{"devices": fmt.Sprint(n)}})
	}
	// New devices, one run per fingerprint.
	seen := map[string]bool{}
	for _, s := range list {
		fp := sessions.Fingerprint(s)
		if fp == "" || seen[fp] || !s.Active && s.Kind == sessions.KindSession {
			continue
		}
		seen[fp] = true
		if d := p.Devices[fp]; d != nil && d.State != stateDenied {
			continue
		}
		run, err := w.ask(ctx, email, s)
		if err != nil {
			return err
		}
		p.Devices[fp] = &device{State: statePending, FirstSeen: now, Provider: s.Provider, SessionID: s.ID, RunID: run.ID}
		if err := w.save(ctx, email, p, version, storage.Record{Actor: "system", Action: "device.new", Subject: email,
			Provider: s.Provider, RunID: run.ID, Outcome: "asked", Details: map[string]string{"session": s.ID}}); err != nil {
			return err
		}
		if _, err := w.cfg.Store.Put(ctx, storage.Devices, runKey(run.ID), 0, []byte(email)); err != nil {
			w.log.WarnContext(ctx, "index run", "run_id", run.ID, "err", err)
		}
		if p, version, err = w.load(ctx, email); err != nil {
			return err
		}
		if why := recentRisk(p.Risks, now, w.cfg.RiskWindow); why != "" {
			if _, err := w.cfg.Engine.MarkRisk(ctx, run.ID, why); err != nil {
				w.log.WarnContext(ctx, "mark risk", "run_id", run.ID, "err", err)
			}
		}
	}
	return nil
}

// ask starts the run that asks the person about a new device, or, for a
// Slack session, alerts security without asking over Slack.
func (w *Watcher) ask(ctx context.Context, email string, s sessions.Session) (playbooks.Run, error) {
	var slackID string
	if w.cfg.Directory != nil {
		if id, err := w.cfg.Directory.UserByEmail(ctx, email); err == nil {
			slackID = id
		}
	}
	at := s.LastActive
	if at.IsZero() {
		at = s.Created
	}
	d := s.Device
	if d == (sessions.Device{}) && s.UserAgent != "" {
		d = sessions.ParseUserAgent(s.UserAgent)
	}
	var label []string
	for _, part := range []string{d.Client, d.Browser, d.OS} {
		if part != "" {
			label = append(label, part)
		}
	}
	book := playbooks.PlaybookNewDevice
	targets := []playbooks.Target{{Provider: s.Provider, SessionID: s.ID}}
	if _, ok := w.cfg.Inventory.Provider(s.Provider); !ok || s.Provider == "slack" || slackID == "" {
		// Asking over Slack is pointless (no Slack account), unsafe (the
		// intruder may hold the Slack session), or Warden could not act on
		// the answer (a provider it is not connected to): alert instead.
		book, targets = playbooks.PlaybookSlackSession, nil
	}
	run, err := w.cfg.Engine.Start(ctx, playbooks.StartRequest{
		Playbook:  book,
		Requester: "system",
		Subject:   playbooks.Subject{SlackID: slackID, Email: email},
		Reason:    "new device",
		Targets:   targets,
		Evidence: &playbooks.Evidence{Provider: s.Provider, SessionID: s.ID, Device: strings.Join(label, " · "),
			IP: s.IP, Location: s.Location, UserAgent: s.UserAgent, At: at},
	})
	if err != nil {
		return playbooks.Run{}, fmt.Errorf("ask about new device: %w", err)
	}
	w.log.InfoContext(ctx, "new device", "run_id", run.ID, "provider", s.Provider, "playbook", book)
	return run, nil
}

var riskWords = map[sessions.EventType]string{
	sessions.EventMFAAdded:        "an MFA factor was added",
	sessions.EventPasswordChanged: "the password was changed",
	sessions.EventRecoveryChanged: "the recovery email or phone was changed",
}

// recentRisk describes the latest risky change within window of now.
func recentRisk(risks []riskEvent, now time.Time, window time.Duration) string {
	for i := len(risks) - 1; i >= 0; i-- {
		if d := now.Sub(risks[i].At); d >= -window && d <= window {
			return fmt.Sprintf("%s within %s of a new device", riskWords[risks[i].Type], window)
		}
	}
	return ""
}

// HandleEvent takes one login event from a webhook (intake.Sink). Events
// are de-duplicated by provider and id; a login goes through the new-device
// check at once; a risky change flags any run about a device first seen
// within the risk window.
func (w *Watcher) HandleEvent(ctx context.Context, ev sessions.LoginEvent) error {
	if ev.ID != "" {
		_, err := w.cfg.Store.Put(ctx, storage.Dedupe, "event/"+ev.Provider+"/"+ev.ID, 0, []byte("1"))
		if errors.Is(err, storage.ErrConflict) {
			return nil // a redelivery
		}
		if err != nil {
			return fmt.Errorf("dedupe event: %w", err)
		}
	}
	email := strings.ToLower(ev.Email)
	switch {
	case ev.Type == sessions.EventLogin:
		id := ev.SessionID
		if id == "" {
			id = "event:" + ev.ID
		}
		return w.observe(ctx, email, []sessions.Session{{
			Provider: ev.Provider, ID: id, Kind: sessions.KindSignIn, Active: true,
			Created: ev.Time, LastActive: ev.Time, IP: ev.IP, UserAgent: ev.UserAgent, Device: ev.Device,
			Location: ev.Location, Country: ev.Country,
		}})
	case ev.Type.HighRisk():
		return w.risk(ctx, email, ev)
	}
	return nil
}

// risk records a risky change and flags runs about devices first seen
// within the window.
func (w *Watcher) risk(ctx context.Context, email string, ev sessions.LoginEvent) error {
	unlock := w.lock(email)
	defer unlock()
	p, version, err := w.load(ctx, email)
	if err != nil {
		return err
	}
	at := ev.Time
	if at.IsZero() {
		at = w.cfg.Now()
	}
	now := w.cfg.Now()
	kept := p.Risks[:0]
	for _, r := range p.Risks {
		if now.Sub(r.At) <= w.cfg.RiskWindow {
			kept = append(kept, r)
		}
	}
	p.Risks = append(kept, riskEvent{Type: ev.Type, At: at.UTC()})
	if err := w.save(ctx, email, p, version, storage.Record{Actor: "system", Action: "account." + string(ev.Type),
		Subject: email, Provider: ev.Provider, Outcome: "recorded"}); err != nil {
		return err
	}
	for _, d := range p.Devices {
		if d.RunID == "" {
			continue // learned at the first look, not a new device
		}
		if gap := at.Sub(d.FirstSeen); gap >= -w.cfg.RiskWindow && gap <= w.cfg.RiskWindow {
			why := fmt.Sprintf("%s within %s of a new device", riskWords[ev.Type], w.cfg.RiskWindow)
			if _, err := w.cfg.Engine.MarkRisk(ctx, d.RunID, why); err != nil {
				w.log.WarnContext(ctx, "mark risk", "run_id", d.RunID, "err", err)
			}
		}
	}
	return nil
}

// Answered records the person's answer to "was this you?": yes makes the
// device known, no marks it denied so that seeing it again asks again.
func (w *Watcher) Answered(ctx context.Context, runID, actor string, yes bool) error {
	it, err := w.cfg.Store.Get(ctx, storage.Devices, runKey(runID))
	if errors.Is(err, storage.ErrNotFound) {
		return nil // not a new-device run
	}
	if err != nil {
		return fmt.Errorf("find run's device: %w", err)
	}
	email := string(it.Value)
	unlock := w.lock(email)
	defer unlock()
	p, version, err := w.load(ctx, email)
	if err != nil {
		return err
	}
	for _, d := range p.Devices {
		if d.RunID != runID || d.State != statePending {
			continue
		}
		action, state := "device.confirm", stateKnown
		if !yes {
			action, state = "device.deny", stateDenied
		}
		d.State = state
		return w.save(ctx, email, p, version, storage.Record{Actor: actor, Action: action, Subject: email,
			Provider: d.Provider, RunID: runID, Outcome: state})
	}
	return nil
}
