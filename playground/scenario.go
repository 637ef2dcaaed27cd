package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/warden-sec/warden/commands"
	"github.com/warden-sec/warden/internal/slackfake"
	"github.com/warden-sec/warden/sessions"
)

// Inventory is what the scenario needs from the identity provider the
// running Warden uses. *demo.Provider implements it.
type Inventory interface {
	FindUser(ctx context.Context, email string) (sessions.User, error)
	ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error)
	AddSession(ctx context.Context, email string, s sessions.Session) error
}

// Statuses of a scenario step.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepPassed  = "passed"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// StepState is how far one step of the scenario got.
type StepState struct {
	Title  string `json:"title"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// step is one scripted move of the incident. A step waits, with a
// deadline, for what it expects; when a feature of Warden is missing the
// deadline passes and the step fails saying which.
type step struct {
	title string
	// act groups steps that build on each other: after a failure, the rest
	// of the act is skipped and the next act starts.
	act int
	// slow steps wait NewDeviceTimeout instead of StepTimeout.
	slow bool
	run  func(r *scenarioRun, ctx context.Context) (detail string, err error)
}

// scenarioRun is one play of the scenario: the people and what earlier
// steps found.
type scenarioRun struct {
	s                    *Server
	inv                  Inventory
	responder, user, mgr Person
	contractor           Person

	newSession string // id of the device that "appears" for bob
	newIP      string
	askDM      found // the "was this you?" message
}

// StartScenario plays the incident in the background. It reports false
// when a play is already running.
func (s *Server) StartScenario() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
	}
	steps := s.steps()
	s.scenario = make([]StepState, len(steps))
	for i, st := range steps {
		s.scenario[i] = StepState{Title: st.title, Status: StepPending}
	}
	s.running = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.notifyLocked()
	s.wg.Go(func() {
		defer cancel()
		s.runScenario(ctx, steps)
	})
	return true
}

// Scenario returns the steps of the current (or last) play.
func (s *Server) Scenario() (steps []StepState, running bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.scenario), s.running
}

// ScenarioChanged returns a channel closed at the next change of the
// playground's own state (scenario progress, problems, inventory).
func (s *Server) ScenarioChanged() <-chan struct{} { return s.ownChanged() }

func (s *Server) setStep(i int, status, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scenario[i].Status, s.scenario[i].Detail = status, detail
	s.notifyLocked()
}

func (s *Server) runScenario(ctx context.Context, steps []step) {
	defer func() {
		s.mu.Lock()
		s.running = false
		s.cancel = nil
		s.notifyLocked()
		s.mu.Unlock()
	}()
	r := &scenarioRun{s: s}
	r.responder, r.user, r.mgr, r.contractor = s.castAs("responder"), s.castAs("engineer"), s.castAs("manager"), s.castAs("contractor")
	failedAct := -1
	for i, st := range steps {
		if st.act == failedAct {
			s.setStep(i, StepSkipped, "an earlier step of this part failed")
			continue
		}
		s.setStep(i, StepRunning, "")
		limit := s.cfg.StepTimeout
		if st.slow {
			limit = s.cfg.NewDeviceTimeout
		}
		sctx, cancel := context.WithTimeout(ctx, limit)
		detail, err := st.run(r, sctx)
		cancel()
		if ctx.Err() != nil {
			s.setStep(i, StepFailed, "stopped")
			return
		}
		if err != nil {
			failedAct = st.act
			s.setStep(i, StepFailed, err.Error())
			s.log.Info("playground: scenario step failed", "step", st.title, "err", err)
			continue
		}
		s.setStep(i, StepPassed, detail)
	}
}

// castAs finds the person playing a role (their Role), else the first.
func (s *Server) castAs(role string) Person {
	for _, p := range s.cfg.People {
		if p.Role == role {
			return p
		}
	}
	return s.cfg.People[0]
}

// steps is the script.
func (s *Server) steps() []step {
	return []step{
		{act: 1, title: "A new device signs in as bob", run: (*scenarioRun).newDevice},
		{act: 1, title: "alice lists bob's sessions and sees it", run: (*scenarioRun).responderSees},
		{act: 1, slow: true, title: "Warden asks bob “was this you?”", run: (*scenarioRun).askedUser},
		{act: 1, title: "bob answers “Not me”", run: (*scenarioRun).notMe},
		{act: 1, title: "The device is revoked and verified gone", run: (*scenarioRun).revokedVerified},
		{act: 2, title: "alice starts offboarding dave", run: (*scenarioRun).offboard},
		{act: 2, title: "carol, dave's manager, approves", run: (*scenarioRun).approve},
		{act: 2, title: "dave's sessions and tokens are revoked", run: (*scenarioRun).contractorGone},
		{act: 3, title: "/sessions report shows the offboarding", run: (*scenarioRun).report},
	}
}

// waited turns an expired deadline into the step's explanation.
func waited(ctx context.Context, err error, missing string) error {
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New(missing)
	}
	return err
}

func (r *scenarioRun) fake() *slackfake.Slack { return r.s.slack }

func (r *scenarioRun) timeout() string { return r.s.cfg.StepTimeout.String() }

func (r *scenarioRun) newDevice(ctx context.Context) (string, error) {
	inv, err := r.s.inventory(ctx)
	if err != nil {
		return "", waited(ctx, err, fmt.Sprintf("the playground got no handle on the demo provider the running Warden uses within %s (serve did not hand it over), so no device can appear", r.timeout()))
	}
	r.inv = inv
	r.newSession = "ds-bob-new-" + uuid.NewString()[:8]
	r.newIP = "198.51.100.250"
	err = r.inv.AddSession(ctx, r.user.Email, sessions.Session{
		ID:        r.newSession,
		IP:        r.newIP,
		UserAgent: newDeviceUA,
		Location:  "Lagos, NG",
		Country:   "NG",
		Managed:   sessions.ManagedNo,
	})
	if err != nil {
		return "", fmt.Errorf("add a session for bob at the demo provider: %w", err)
	}
	detail := fmt.Sprintf("session %s from %s (Lagos, NG), unmanaged Linux laptop", r.newSession, r.newIP)
	if r.s.cfg.WebhookURL == "" {
		return detail + "; Warden will find it at its next poll", nil
	}
	if status, err := r.tellWarden(ctx, map[string]any{
		"id": "pg-" + r.newSession, "provider": "demo", "type": "login", "email": r.user.Email,
		"session_id": r.newSession, "ip": r.newIP, "user_agent": newDeviceUA, "location": "Lagos, NG", "country": "NG",
		"time": time.Now().UTC().Format(time.RFC3339),
	}); err != nil || status/100 != 2 {
		return detail + fmt.Sprintf("; Warden's login webhook did not take the event (%d %v), so it will find the device at its next poll", status, err), nil
	}
	return detail + "; the provider told Warden's login webhook", nil
}

// newDeviceUA is the browser of the device that appears for bob.
const newDeviceUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36"

// tellWarden posts a login event to Warden's generic webhook, as an
// identity provider would, and returns the HTTP status.
func (r *scenarioRun) tellWarden(ctx context.Context, event map[string]any) (int, error) {
	body, err := json.Marshal(event)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.s.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.s.cfg.WebhookSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, errors.New("unreachable")
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// command types a slash command as person p and returns what Warden
// answered, as a person would read it.
func (r *scenarioRun) command(ctx context.Context, p Person, text string) (string, error) {
	f := r.fake()
	env := f.SlashCommand(p.ID, r.s.cfg.Channel, clientText(text, r.s.cfg.People))
	var got string
	err := f.Await(ctx, func() bool {
		for _, resp := range f.Responses(env) {
			if !resp.DeleteOriginal {
				got = visible(resp.Text, resp.Blocks)
				return true
			}
		}
		for _, a := range f.Acks() {
			if a.EnvelopeID != env || len(a.Payload) == 0 {
				continue
			}
			var m struct {
				Text   string          `json:"text"`
				Blocks json.RawMessage `json:"blocks"`
			}
			if json.Unmarshal(a.Payload, &m) == nil && (m.Text != "" || len(m.Blocks) > 0) {
				got = visible(m.Text, m.Blocks)
				return true
			}
		}
		return false
	})
	if err != nil {
		return "", waited(ctx, err, fmt.Sprintf("Warden did not answer %s's “/sessions %s” within %s", p.Name, text, r.timeout()))
	}
	return got, nil
}

// unavailable reports whether a reply says the command is not built yet.
func unavailable(reply string) bool {
	return strings.Contains(strings.ToLower(reply), "not available")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:157] + "…"
	}
	return s
}

func (r *scenarioRun) responderSees(ctx context.Context) (string, error) {
	text := "list @" + r.user.Name
	reply, err := r.command(ctx, r.responder, text)
	if err != nil {
		return "", err
	}
	if !strings.Contains(reply, r.newIP) {
		return "", fmt.Errorf("the list does not show the new device (%s); Warden answered: “%s”", r.newIP, firstLine(reply))
	}
	return "the list shows " + r.newIP, nil
}

// found is a button found in a message.
type found struct {
	channel, ts, value string
	edits              int
}

// awaitButton waits for a message in one of channels that carries a
// button with actionID (and, when about is set, names that person).
func (r *scenarioRun) awaitButton(ctx context.Context, channels []string, actionID string, about *Person) (found, error) {
	f := r.fake()
	var got found
	err := f.Await(ctx, func() bool {
		for _, ch := range channels {
			for _, m := range f.Messages(ch) {
				if m.Ephemeral {
					continue
				}
				v, ok := buttonValue(m.Blocks, actionID)
				if ok && (about == nil || mentions(*about, visible(m.Text, m.Blocks))) {
					got = found{channel: ch, ts: m.TS, value: v, edits: m.Edits}
					return true
				}
			}
		}
		return false
	})
	return got, err
}

// clickAndAwait clicks as p and waits for Warden to react: a reply to the
// click, or the message edited in place.
func (r *scenarioRun) clickAndAwait(ctx context.Context, p Person, b found, actionID string) (string, error) {
	f := r.fake()
	env, err := f.Click(p.ID, b.channel, b.ts, actionID, b.value)
	if err != nil {
		return "", fmt.Errorf("click: %w", err)
	}
	var got string
	err = f.Await(ctx, func() bool {
		if rs := f.Responses(env); len(rs) > 0 {
			got = visible(rs[0].Text, rs[0].Blocks)
			return true
		}
		for _, m := range f.Messages(b.channel) {
			if m.TS == b.ts && m.Edits > b.edits {
				got = "Warden updated the message: " + visible(m.Text, m.Blocks)
				return true
			}
		}
		return false
	})
	return got, err
}

func (r *scenarioRun) askedUser(ctx context.Context) (string, error) {
	dm := r.fake().DMChannel(r.user.ID)
	b, err := r.awaitButton(ctx, []string{dm}, commands.ActDeviceNo, nil)
	if err != nil {
		return "", waited(ctx, err, fmt.Sprintf("no “was this you?” DM with a “Not me” button reached bob within %s: Warden did not ask (the new-device watcher is not in this build yet, or it first looked at bob after the device appeared and learned it silently)", r.s.cfg.NewDeviceTimeout))
	}
	r.askDM = b
	return "bob got a DM with “It was me” / “Not me”", nil
}

func (r *scenarioRun) notMe(ctx context.Context) (string, error) {
	reply, err := r.clickAndAwait(ctx, r.user, r.askDM, commands.ActDeviceNo)
	if err != nil {
		return "", waited(ctx, err, fmt.Sprintf("Warden did not react to bob's “Not me” within %s", r.timeout()))
	}
	return firstLine(reply), nil
}

// awaitProvider waits until cond holds. The provider has no change feed:
// cond is checked on every change of the fake Slack (Warden says what it
// did there) and, as a backstop, every 250 ms.
func (r *scenarioRun) awaitProvider(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := r.fake().Changed()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-tick.C:
		}
	}
}

// sessionsOf lists p's sessions at the provider; ok is false on an error.
func (r *scenarioRun) sessionsOf(ctx context.Context, p Person) ([]sessions.Session, bool) {
	u, err := r.inv.FindUser(ctx, p.Email)
	if err != nil {
		return nil, false
	}
	ss, err := r.inv.ListSessions(ctx, u)
	return ss, err == nil
}

// said reports whether Warden told p (DM, their ephemeral replies) or the
// security channel something containing want.
func (r *scenarioRun) said(p Person, want string) bool {
	f := r.fake()
	var texts []string
	for _, ch := range []string{f.DMChannel(p.ID), r.s.cfg.SecurityChannel, r.s.cfg.Channel} {
		for _, m := range f.Messages(ch) {
			texts = append(texts, visible(m.Text, m.Blocks))
		}
	}
	for _, e := range f.Ephemerals(p.ID) {
		texts = append(texts, visible(e.Text, e.Blocks))
	}
	for _, t := range texts {
		if strings.Contains(strings.ToLower(t), want) {
			return true
		}
	}
	return false
}

func (r *scenarioRun) revokedVerified(ctx context.Context) (string, error) {
	gone := false
	err := r.awaitProvider(ctx, func() bool {
		ss, ok := r.sessionsOf(ctx, r.user)
		gone = ok && !slices.ContainsFunc(ss, func(s sessions.Session) bool { return s.ID == r.newSession })
		return gone && r.said(r.user, "verified")
	})
	switch {
	case err == nil:
		return "the session is gone at the provider and Warden said it verified that", nil
	case !gone:
		return "", waited(ctx, err, fmt.Sprintf("bob's new session is still at the provider after %s: nothing revoked it (the “unknown-device” playbook is not in this build yet)", r.timeout()))
	default:
		return "", waited(ctx, err, "the session is gone, but no message told bob or #security that it was verified gone")
	}
}

func (r *scenarioRun) offboard(ctx context.Context) (string, error) {
	text := "offboard @" + r.contractor.Name + " contract ended"
	reply, err := r.command(ctx, r.responder, text)
	if err != nil {
		return "", err
	}
	if unavailable(reply) {
		return "", fmt.Errorf("“/sessions offboard” is not in this build yet; Warden answered: “%s”", firstLine(reply))
	}
	return firstLine(reply), nil
}

func (r *scenarioRun) approve(ctx context.Context) (string, error) {
	f := r.fake()
	channels := []string{f.DMChannel(r.mgr.ID), r.s.cfg.SecurityChannel, r.s.cfg.Channel}
	b, err := r.awaitButton(ctx, channels, commands.ActApprove, &r.contractor)
	if err != nil {
		return "", waited(ctx, err, fmt.Sprintf("no Approve button about dave reached carol within %s: offboarding approvals are not in this build yet", r.timeout()))
	}
	reply, err := r.clickAndAwait(ctx, r.mgr, b, commands.ActApprove)
	if err != nil {
		return "", waited(ctx, err, fmt.Sprintf("Warden did not react to carol's Approve within %s", r.timeout()))
	}
	return firstLine(reply), nil
}

func (r *scenarioRun) contractorGone(ctx context.Context) (string, error) {
	if r.inv == nil {
		return "", errors.New("the playground has no handle on the demo provider")
	}
	left := -1
	err := r.awaitProvider(ctx, func() bool {
		ss, ok := r.sessionsOf(ctx, r.contractor)
		if ok {
			left = len(ss)
		}
		return ok && len(ss) == 0
	})
	if err != nil {
		return "", waited(ctx, err, fmt.Sprintf("dave still has %d sessions or tokens at the provider after %s", left, r.timeout()))
	}
	return "dave has no sessions or tokens left", nil
}

func (r *scenarioRun) report(ctx context.Context) (string, error) {
	reply, err := r.command(ctx, r.responder, "report")
	if err != nil {
		return "", err
	}
	if unavailable(reply) {
		return "", fmt.Errorf("“/sessions report” is not in this build yet; Warden answered: “%s”", firstLine(reply))
	}
	if !mentions(r.contractor, reply) && !strings.Contains(strings.ToLower(reply), "offboard") {
		return "", fmt.Errorf("the report does not mention dave's offboarding: “%s”", firstLine(reply))
	}
	return firstLine(reply), nil
}

// mentions reports whether text names p: a mention, their name, full name
// or email.
func mentions(p Person, text string) bool {
	low := strings.ToLower(text)
	for _, s := range []string{"<@" + p.ID, p.Name, p.RealName, p.Email} {
		if s != "" && strings.Contains(low, strings.ToLower(s)) {
			return true
		}
	}
	return false
}

// visible is everything a person reads in a message, with Slack's escaping
// decoded.
func visible(text string, blocks json.RawMessage) string {
	return slackUnescape.Replace(MessageText(text, blocks))
}

// MessageText is a message's text and the text of its blocks (sections,
// fields, buttons, confirm dialogs), as Slack received it: mrkdwn, escaping
// included. Blocks that are not JSON add nothing.
func MessageText(text string, blocks json.RawMessage) string {
	var b strings.Builder
	b.WriteString(text)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				b.WriteString("\n" + s)
			}
			for _, k := range []string{"text", "fields", "elements", "accessory", "confirm", "title"} {
				if c, ok := x[k]; ok {
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	var v any
	if len(blocks) > 0 && json.Unmarshal(blocks, &v) == nil {
		walk(v)
	}
	return b.String()
}

// buttonValue finds the button with actionID (or actionID~N, the bot's
// de-duplicated form) in blocks and returns its value.
func buttonValue(raw json.RawMessage, actionID string) (string, bool) {
	bs, err := decodeBlocks(raw)
	if err != nil {
		return "", false
	}
	match := func(el *element) bool {
		return el != nil && el.Type == "button" && el.ActionID == actionID
	}
	for _, b := range bs {
		if match(b.Accessory) {
			return b.Accessory.Value, true
		}
		for i := range b.Elements {
			if match(&b.Elements[i]) {
				return b.Elements[i].Value, true
			}
		}
	}
	return "", false
}
