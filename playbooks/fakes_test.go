package playbooks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

const (
	subjectEmail = "dana@example.com"
	subjectID    = "USUBJ"
	requesterID  = "UREQ"
	managerEmail = "mia@example.com"
	managerID    = "UMGR"
	secChannel   = "CSEC"
)

// idp is a fake identity provider: users with live sessions, call counters,
// and a hook to script errors or block a call.
type idp struct {
	name string
	caps sessions.Capabilities

	mu        sync.Mutex
	users     map[string]sessions.User // by email
	live      map[string][]string      // user id -> live session ids
	calls     map[string]int           // "find", "list", "revoke_all", "revoke:<id>", "tokens"
	effective int                      // revocations that ended at least one live session
	survivor  string                   // a session id RevokeAll does not end
	// hook runs before every call with the op and its 1-based count; an
	// error it returns is the call's error.
	hook func(ctx context.Context, op string, n int) error
	// after runs after the call took effect; an error it returns is the
	// call's error (the effect stays, like a lost answer).
	after func(ctx context.Context, op string, n int) error
}

// tokenIdP also revokes tokens.
type tokenIdP struct{ *idp }

func (p tokenIdP) RevokeTokens(ctx context.Context, u sessions.User) error {
	return p.call(ctx, "tokens", nil)
}

func newIdP(name string, caps sessions.Capabilities) *idp {
	p := &idp{name: name, caps: caps, users: map[string]sessions.User{}, live: map[string][]string{}, calls: map[string]int{}}
	p.addUser(subjectEmail, "s1", "s2")
	return p
}

// listing can list live sessions and end one or all (Kratos, Keycloak).
var listing = sessions.Capabilities{ListSessions: true, RevokeOne: true, RevokeAll: true}

// blind cannot list; "sign out everywhere" takes minutes (Entra).
var blind = sessions.Capabilities{ListSignIns: true, RevokeAll: true, EffectWithin: 5 * time.Minute}

// oneByOne can list and end single sessions only.
var oneByOne = sessions.Capabilities{ListSessions: true, RevokeOne: true}

func (p *idp) addUser(email string, sessionIDs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.name + "-" + email
	p.users[email] = sessions.User{Provider: p.name, ID: id, Email: email, ManagerEmail: managerEmail}
	p.live[id] = slices.Clone(sessionIDs)
}

func (p *idp) call(ctx context.Context, op string, fn func()) error {
	p.mu.Lock()
	p.calls[op]++
	n := p.calls[op]
	hook, after := p.hook, p.after
	p.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, op, n); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if fn != nil {
		p.mu.Lock()
		fn()
		p.mu.Unlock()
	}
	if after != nil {
		return after(ctx, op, n)
	}
	return nil
}

func (p *idp) count(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

func (p *idp) effectiveRevokes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.effective
}

func (p *idp) liveSessions(email string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.live[p.users[email].ID])
}

func (p *idp) Name() string                        { return p.name }
func (p *idp) Capabilities() sessions.Capabilities { return p.caps }

func (p *idp) FindUser(ctx context.Context, email string) (sessions.User, error) {
	var u sessions.User
	var ok bool
	err := p.call(ctx, "find", func() { u, ok = p.users[email] })
	if err != nil {
		return sessions.User{}, err
	}
	if !ok {
		return sessions.User{}, sessions.ErrNoAccount
	}
	return u, nil
}

func (p *idp) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	var out []sessions.Session
	err := p.call(ctx, "list", func() {
		for _, id := range p.live[u.ID] {
			out = append(out, sessions.Session{Provider: p.name, ID: id, Kind: sessions.KindSession, Active: true})
		}
	})
	return out, err
}

func (p *idp) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	if !p.caps.RevokeOne {
		return sessions.ErrNotSupported
	}
	return p.call(ctx, "revoke:"+id, func() {
		if i := slices.Index(p.live[u.ID], id); i >= 0 {
			p.live[u.ID] = slices.Delete(p.live[u.ID], i, i+1)
			p.effective++
		}
	})
}

func (p *idp) RevokeAll(ctx context.Context, u sessions.User) error {
	if !p.caps.RevokeAll {
		return sessions.ErrNotSupported
	}
	return p.call(ctx, "revoke_all", func() {
		var keep []string
		for _, id := range p.live[u.ID] {
			if id == p.survivor {
				keep = append(keep, id)
			}
		}
		if len(p.live[u.ID]) > len(keep) {
			p.effective++
		}
		p.live[u.ID] = keep
	})
}

// recorder is a Notifier that records every notice with the run's state,
// posts a message per key (returning a ref) and edits it afterwards.
type recorder struct {
	mu      sync.Mutex
	notices []noticeAt
	posted  int
	fail    func(Notice) error
}

type noticeAt struct {
	Notice
	State RunState
	At    time.Time
}

func (n *recorder) Notify(ctx context.Context, run Run, no Notice) (MessageRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		if err := n.fail(no); err != nil {
			return MessageRef{}, err
		}
	}
	n.notices = append(n.notices, noticeAt{Notice: no, State: run.State, At: time.Now()})
	if no.Ref != (MessageRef{}) {
		return no.Ref, nil
	}
	n.posted++
	return MessageRef{Channel: no.To, TS: fmt.Sprintf("%d.000100", n.posted)}, nil
}

func (n *recorder) of(kind NoticeKind) []noticeAt {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []noticeAt
	for _, x := range n.notices {
		if x.Kind == kind {
			out = append(out, x)
		}
	}
	return out
}

// directory is a fake Slack directory.
type directory struct {
	users  map[string]string   // email -> id
	groups map[string][]string // S… -> members
	err    error
}

func (d *directory) UserByEmail(ctx context.Context, email string) (string, error) {
	if d.err != nil {
		return "", d.err
	}
	if id, ok := d.users[email]; ok {
		return id, nil
	}
	return "", errors.New("users_not_found")
}

func (d *directory) GroupMembers(ctx context.Context, id string) ([]string, error) {
	if d.err != nil {
		return nil, d.err
	}
	return d.groups[id], nil
}

// env is an engine over a real bbolt file that can be stopped and started
// again on the same file, like a process restart.
type env struct {
	t     *testing.T
	path  string
	db    *storage.DB
	idps  []*idp
	provs []sessions.Provider
	note  *recorder
	dir   *directory
	mod   func(*Config)
	eng   *Engine
	stop  func()
}

func newEnv(t *testing.T, provs ...sessions.Provider) *env {
	t.Helper()
	v := &env{
		t:     t,
		path:  filepath.Join(t.TempDir(), "warden.db"),
		provs: provs,
		note:  &recorder{},
		dir: &directory{
			users:  map[string]string{managerEmail: managerID, subjectEmail: subjectID},
			groups: map[string][]string{"S0SEC": {"U1", "U2", "U3", requesterID}},
		},
	}
	for _, p := range provs {
		switch p := p.(type) {
		case *idp:
			v.idps = append(v.idps, p)
		case tokenIdP:
			v.idps = append(v.idps, p.idp)
		}
	}
	v.open()
	return v
}

func (v *env) open() {
	v.t.Helper()
	db, err := storage.Open(v.path, storage.Options{})
	if err != nil {
		v.t.Fatal(err)
	}
	v.db = db
}

// start builds an engine and runs it until stop.
func (v *env) start() *Engine {
	v.t.Helper()
	inv, err := sessions.NewInventory(sessions.InventoryConfig{Providers: v.provs})
	if err != nil {
		v.t.Fatal(err)
	}
	cfg := Config{
		Store:           v.db,
		Inventory:       inv,
		Notifier:        v.note,
		Directory:       v.dir,
		SecurityChannel: secChannel,
		Backoff:         time.Second,
	}
	if v.mod != nil {
		v.mod(&cfg)
	}
	eng, err := New(cfg)
	if err != nil {
		v.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(v.t.Context())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	v.eng = eng
	v.stop = func() {
		cancel()
		if err := <-done; err != nil {
			v.t.Errorf("Run: %v", err)
		}
		v.stop = func() {}
	}
	return eng
}

// restart stops the engine, closes and reopens the data file, and starts a
// new engine on it.
func (v *env) restart() *Engine {
	v.t.Helper()
	v.stop()
	if err := v.db.Close(); err != nil {
		v.t.Fatal(err)
	}
	v.open()
	return v.start()
}

func (v *env) close() {
	if v.stop != nil {
		v.stop()
	}
	v.db.Close()
}

func (v *env) get(id string) Run {
	v.t.Helper()
	r, err := v.eng.Get(v.t.Context(), id)
	if err != nil {
		v.t.Fatal(err)
	}
	return r
}

// actions returns the audit actions about the subject, oldest first.
func (v *env) actions() []string {
	v.t.Helper()
	recs, err := v.db.AuditBySubject(v.t.Context(), subjectID, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		a := recs[i].Action
		if recs[i].Provider != "" {
			a += "@" + recs[i].Provider + ":" + recs[i].Outcome
		}
		out = append(out, a)
	}
	return out
}

func startReq(playbook string) StartRequest {
	return StartRequest{Playbook: playbook, Requester: requesterID,
		Subject: Subject{SlackID: subjectID, Email: subjectEmail}, Reason: "incident 42"}
}
