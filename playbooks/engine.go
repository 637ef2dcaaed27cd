package playbooks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// Defaults of Config.
const (
	DefaultBackoff             = time.Second
	DefaultMaxAttempts         = 5
	DefaultProviderTimeout     = time.Minute
	DefaultProviderConcurrency = 8
	// maxBackoff caps the exponential backoff between attempts.
	maxBackoff = 5 * time.Minute
	// maxConflicts bounds compare-and-swap retries of one update.
	maxConflicts = 100
)

// Log keys (STYLE.md).
const (
	logRunID    = "run_id"
	logStep     = "step"
	logUserID   = "user_id"
	logProvider = "provider"
)

// ActorSystem is the audit actor of transitions the engine makes by itself.
const ActorSystem = "system"

// Config configures an Engine. Store and Inventory are required; every other
// field has a usable zero value.
type Config struct {
	Store     Store               // runs and audit (a *storage.DB)
	Inventory *sessions.Inventory // the identity providers
	Notifier  Notifier            // nil: nobody is told anything
	Directory Directory           // nil: "manager" and "group:" approvers do not resolve
	// Approvers are the fallback approvers (WARDEN_APPROVERS): Slack user
	// ids (U…) and user-group ids (S…). They are asked when a step's own
	// approvers resolve to nobody, and added when a request escalates.
	Approvers       []string
	SecurityChannel string              // channel id for escalations and notify_channel
	Playbooks       map[string]Playbook // nil: Builtins()
	Now             func() time.Time    // default time.Now
	Logger          *slog.Logger        // default: discard
	Metrics         *Metrics            // nil: no metrics
	Backoff         time.Duration       // first retry wait, doubled per attempt; default 1s
	MaxAttempts     int                 // attempts of an executor before the step fails; default 5
	// ProviderTimeout bounds each call to a provider (find the user, revoke,
	// verify), not the wait for a slot; a revoke step's timeout overrides
	// it. Default 1m.
	ProviderTimeout time.Duration
	// ProviderConcurrency bounds the calls in flight at one provider, so a
	// mass revoke queues here (without a deadline running) rather than in a
	// connector's pacer. Default 8.
	ProviderConcurrency int
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("store is required")
	}
	if c.Inventory == nil {
		return errors.New("inventory is required")
	}
	if c.Backoff < 0 || c.MaxAttempts < 0 || c.ProviderTimeout < 0 || c.ProviderConcurrency < 0 {
		return errors.New("negative backoff, attempts, timeout or concurrency")
	}
	for _, a := range c.Approvers {
		if !userRE.MatchString(a) && !groupRE.MatchString(a) {
			return fmt.Errorf("approver %q is not a Slack user (U…) or user group (S…) id", a)
		}
	}
	if c.SecurityChannel != "" && !channelRE.MatchString(c.SecurityChannel) {
		return fmt.Errorf("security channel %q is not a channel id", c.SecurityChannel)
	}
	for name, p := range c.Playbooks {
		if name != p.Name {
			return fmt.Errorf("playbook %q is filed under %q", p.Name, name)
		}
		if err := p.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// executor runs one step kind. It is idempotent and says whether its error
// is worth retrying.
type executor func(ctx context.Context, r *Run, step int) (recoverable bool, err error)

// Engine runs playbooks durably. It is safe for concurrent use.
type Engine struct {
	store       Store
	inv         *sessions.Inventory
	notifier    Notifier
	dir         Directory
	approvers   []string
	channel     string
	playbooks   map[string]Playbook
	now         func() time.Time
	log         *slog.Logger
	metrics     *Metrics
	backoff     time.Duration
	maxAttempts int
	provTimeout time.Duration
	sems        map[string]chan struct{} // per provider
	executors   map[string]executor

	locks keyedMutex // serialises notifications per run and message

	mu      sync.Mutex
	serving bool
	active  map[string]chan struct{} // wake channel of each run's driver
	// publishing holds the runs whose progress message is being sent; true
	// when it changed again meanwhile.
	publishing map[string]bool
	queue      []string // runs to drive, handed to Run's loop
	signal     chan struct{}
	wg         sync.WaitGroup
}

// New returns an Engine. It fails when Store or Inventory is missing, a
// fallback approver or the security channel is not a Slack id, or a playbook
// is invalid.
func New(cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	e := &Engine{
		store:       cfg.Store,
		inv:         cfg.Inventory,
		notifier:    cfg.Notifier,
		dir:         cfg.Directory,
		approvers:   slices.Clone(cfg.Approvers),
		channel:     cfg.SecurityChannel,
		playbooks:   cfg.Playbooks,
		now:         cfg.Now,
		log:         cfg.Logger,
		metrics:     cfg.Metrics,
		backoff:     cmp.Or(cfg.Backoff, DefaultBackoff),
		maxAttempts: cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		provTimeout: cmp.Or(cfg.ProviderTimeout, DefaultProviderTimeout),
		sems:        map[string]chan struct{}{},
		active:      map[string]chan struct{}{},
		publishing:  map[string]bool{},
		signal:      make(chan struct{}, 1),
	}
	if e.playbooks == nil {
		e.playbooks = Builtins()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	conc := cmp.Or(cfg.ProviderConcurrency, DefaultProviderConcurrency)
	for _, p := range e.inv.Providers() {
		e.sems[p.Name()] = make(chan struct{}, conc)
	}
	e.executors = map[string]executor{
		KindRevokeSessions: e.revokeSessions,
		KindRevokeTokens:   e.revokeTokens,
		KindNotifyUser:     e.notifyUser,
		KindNotifyChannel:  e.notifyChannel,
	}
	return e, nil
}

// Playbook returns the playbook named name.
func (e *Engine) Playbook(name string) (Playbook, bool) {
	p, ok := e.playbooks[name]
	return p, ok
}

// StartRequest asks for a run of a playbook.
type StartRequest struct {
	Playbook  string
	Requester string // Slack user id of who asked, or "system"
	Subject   Subject
	Reason    string
	Targets   []Target // sessions named by the request (scope listed/device)
	Channel   string   // where to show progress; "" = DM the requester
	Evidence  *Evidence
}

// Start validates req, saves a new run with its "run.start" audit record in
// one transaction, and hands it to the engine, which drives it while Run is
// serving. It returns ErrUnknownPlaybook, or ErrInvalidRequest when the
// subject has no email and the playbook needs one, or a listed scope has no
// targets.
func (e *Engine) Start(ctx context.Context, req StartRequest) (Run, error) {
	pb, ok := e.playbooks[req.Playbook]
	if !ok {
		return Run{}, fmt.Errorf("start %q: %w", req.Playbook, ErrUnknownPlaybook)
	}
	if err := e.checkRequest(pb, &req); err != nil {
		return Run{}, fmt.Errorf("start %s: %w", pb.Name, err)
	}
	if req.Subject.SlackID == "" && req.Subject.Email != "" && e.dir != nil {
		// Best effort: knowing the subject's Slack id keeps them from
		// approving their own run and lets notify_user reach them.
		if id, err := e.dir.UserByEmail(ctx, req.Subject.Email); err == nil {
			req.Subject.SlackID = id
		}
	}
	now := e.now().UTC()
	r := Run{
		ID:        uuid.NewString(),
		Playbook:  pb.Name,
		State:     RunRunning,
		Requester: req.Requester,
		Subject:   req.Subject,
		Reason:    req.Reason,
		Channel:   req.Channel,
		Targets:   slices.Clone(req.Targets),
		Evidence:  req.Evidence,
		Created:   now,
		Updated:   now,
	}
	for _, s := range pb.Steps {
		s.Approvers = slices.Clone(s.Approvers)
		r.Steps = append(r.Steps, Step{Spec: s, Status: StepPending})
	}
	details := map[string]string{"playbook": pb.Name}
	if req.Reason != "" {
		details["reason"] = req.Reason
	}
	if len(req.Targets) > 0 {
		details["targets"] = strconv.Itoa(len(req.Targets))
	}
	if err := e.save(ctx, &r, []storage.Record{{Actor: req.Requester, Action: "run.start", Outcome: string(RunRunning), Details: details}}); err != nil {
		return Run{}, fmt.Errorf("start %s: %w", pb.Name, err)
	}
	e.metrics.saved("", &r, nil)
	e.log.InfoContext(ctx, "run started", logRunID, r.ID, "playbook", pb.Name, logUserID, req.Requester)
	e.kick(r.ID)
	return r.clone(), nil
}

func (e *Engine) checkRequest(pb Playbook, req *StartRequest) error {
	req.Subject.Email = strings.TrimSpace(req.Subject.Email)
	switch {
	case req.Requester == "":
		return fmt.Errorf("no requester: %w", ErrInvalidRequest)
	case req.Subject.Email == "" && req.Subject.SlackID == "":
		return fmt.Errorf("no subject: %w", ErrInvalidRequest)
	case req.Subject.Email == "" && pb.needsEmail():
		return fmt.Errorf("subject has no email to look up at providers: %w", ErrInvalidRequest)
	case len(req.Targets) == 0 && pb.needsTargets():
		return fmt.Errorf("no sessions named: %w", ErrInvalidRequest)
	}
	for _, t := range req.Targets {
		if t.SessionID == "" {
			return fmt.Errorf("target without a session id: %w", ErrInvalidRequest)
		}
		if _, ok := e.inv.Provider(t.Provider); !ok {
			return fmt.Errorf("target at unknown provider %q: %w", t.Provider, ErrInvalidRequest)
		}
	}
	return nil
}

// Get returns the run with id, or ErrNotFound.
func (e *Engine) Get(ctx context.Context, id string) (Run, error) {
	if id == "" {
		return Run{}, fmt.Errorf("get run: %w", ErrNotFound)
	}
	it, err := e.store.Get(ctx, storage.Runs, id)
	if errors.Is(err, storage.ErrNotFound) {
		return Run{}, fmt.Errorf("get run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("get run: %w", err)
	}
	r, err := decodeRun(it)
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// List returns the runs, oldest first; with open, only those not finished.
func (e *Engine) List(ctx context.Context, open bool) ([]Run, error) {
	items, err := e.store.List(ctx, storage.Runs, "")
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []Run
	for _, it := range items {
		r, err := decodeRun(it)
		if err != nil {
			e.log.ErrorContext(ctx, "skipping unreadable run", logRunID, it.Key, "error", err)
			continue
		}
		if open && r.State.Finished() {
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Run) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// storedRun is the JSON value kept in storage.Runs.
type storedRun struct {
	V int `json:"v"`
	Run
}

const runFormat = 1

func decodeRun(it storage.Item) (Run, error) {
	var s storedRun
	if err := json.Unmarshal(it.Value, &s); err != nil {
		return Run{}, fmt.Errorf("decode run: %w", err)
	}
	if s.V != runFormat {
		return Run{}, fmt.Errorf("decode run: unknown format %d", s.V)
	}
	s.Run.Version = it.Version
	return s.Run, nil
}

// save writes r with compare-and-swap on r.Version and appends recs in the
// same transaction; on success r.Version is the new version.
func (e *Engine) save(ctx context.Context, r *Run, recs []storage.Record) error {
	data, err := json.Marshal(storedRun{V: runFormat, Run: *r})
	if err != nil {
		return fmt.Errorf("encode run: %w", err)
	}
	now := e.now().UTC()
	for i := range recs {
		recs[i].RunID = r.ID
		if recs[i].Subject == "" {
			recs[i].Subject = r.auditSubject()
		}
		if recs[i].Actor == "" {
			recs[i].Actor = ActorSystem
		}
		if recs[i].Time.IsZero() {
			recs[i].Time = now
		}
	}
	v, err := e.store.Put(ctx, storage.Runs, r.ID, r.Version, data, recs...)
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	r.Version = v
	return nil
}

// errNoChange makes update return without writing.
var errNoChange = errors.New("no change")

// update re-reads the run, applies fn and saves it with the records fn
// returns, starting again from a fresh copy on a version conflict. fn must
// decide from the run it is given. changed is false when fn returned
// errNoChange.
func (e *Engine) update(ctx context.Context, id string, fn func(r *Run) ([]storage.Record, error)) (r Run, changed bool, err error) {
	for range maxConflicts {
		r, err = e.Get(ctx, id)
		if err != nil {
			return Run{}, false, err
		}
		prev := r.State
		recs, err := fn(&r)
		if errors.Is(err, errNoChange) {
			return r, false, nil
		}
		if err != nil {
			return r, false, err
		}
		r.Updated = e.now().UTC()
		err = e.save(ctx, &r, recs)
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return Run{}, false, err
		}
		e.metrics.saved(prev, &r, recs)
		return r, true, nil
	}
	return Run{}, false, fmt.Errorf("update run %s: too many concurrent changes: %w", id, storage.ErrConflict)
}

// transition is update followed by a progress notice when something changed.
func (e *Engine) transition(ctx context.Context, id string, fn func(r *Run) ([]storage.Record, error)) (Run, bool, error) {
	r, changed, err := e.update(ctx, id, fn)
	if err == nil && changed {
		e.progress(ctx, id)
	}
	return r, changed, err
}

// skipError is returned by an executor whose step cannot apply to this run
// (nobody to tell): the step is skipped, with the reason shown, and the run
// goes on. Revocations never skip.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// progressTimeout bounds one publication of a progress message.
const progressTimeout = 30 * time.Second

// progress marks run id's progress message stale and makes sure one
// publisher is sending it. The run never waits for Slack's pacing, and a
// burst of transitions collapses into one edit showing the latest state
// (notify always rebuilds from the stored run).
func (e *Engine) progress(ctx context.Context, id string) {
	e.mu.Lock()
	if _, busy := e.publishing[id]; busy {
		e.publishing[id] = true // publish again when the current one ends
		e.mu.Unlock()
		return
	}
	e.publishing[id] = false
	e.mu.Unlock()
	pctx := context.WithoutCancel(ctx)
	e.wg.Go(func() {
		for {
			nctx, cancel := context.WithTimeout(pctx, progressTimeout)
			_ = e.notify(nctx, id, Notice{Kind: NoticeProgress, Step: -1, Key: keyProgress})
			cancel()
			e.mu.Lock()
			if !e.publishing[id] {
				delete(e.publishing, id)
				e.mu.Unlock()
				return
			}
			e.publishing[id] = false
			e.mu.Unlock()
		}
	})
}

// Message keys in Run.Messages.
const keyProgress = "progress"

func keyApproval(step int, user string) string { return fmt.Sprintf("approval/%d/%s", step, user) }
func keyStep(step int) string                  { return fmt.Sprintf("step/%d", step) }

// notify sends n about the run's latest state, after its transaction has
// committed, and stores the message it returns under n.Key. Notices for
// one message are sent one at a time, so it is posted once and then edited. Errors are logged and returned (notify steps retry them); they
// never undo a transition.
func (e *Engine) notify(ctx context.Context, id string, n Notice) error {
	if e.notifier == nil {
		return nil
	}
	// One notification per message at a time, so a message is posted once
	// and then edited; different messages of a run do not wait for each
	// other (each channel is paced separately).
	unlock := e.locks.lock(id + "\x00" + cmp.Or(n.Key, string(n.Kind)))
	defer unlock()
	r, err := e.Get(ctx, id)
	if err != nil {
		e.log.WarnContext(ctx, "notify: reading run", logRunID, id, "error", err)
		return err
	}
	if n.To == "" && (n.Kind == NoticeProgress || n.Kind == NoticeExpired) {
		n.To = cmp.Or(r.Channel, r.Requester)
	}
	if n.Key != "" {
		n.Ref = r.Messages[n.Key]
	}
	if n.Key != "" && n.Ref.TS == "" {
		// A new post. Slack has no idempotency key, so first record that a
		// post is under way: if the process dies after Slack took the post
		// but before its ts is saved, the next attempt finds that message
		// (by its metadata) and edits it instead of posting it twice.
		if r.Posting[n.Key] {
			n.Recover = true
		} else if _, _, err := e.update(context.WithoutCancel(ctx), id, func(r *Run) ([]storage.Record, error) {
			if r.Posting == nil {
				r.Posting = map[string]bool{}
			}
			r.Posting[n.Key] = true
			return nil, nil
		}); err != nil {
			e.log.WarnContext(ctx, "marking a post under way", logRunID, id, "error", err)
			return fmt.Errorf("notify %s: %w", n.Kind, err)
		}
	}
	ref, err := e.notifier.Notify(ctx, r.clone(), n)
	if err != nil {
		e.log.WarnContext(ctx, "notify failed", logRunID, id, "kind", string(n.Kind), logStep, n.Step, "error", err)
		return fmt.Errorf("notify %s: %w", n.Kind, err)
	}
	if n.Key == "" || ref == (MessageRef{}) || ref == n.Ref {
		return nil
	}
	_, _, err = e.update(context.WithoutCancel(ctx), id, func(r *Run) ([]storage.Record, error) {
		if r.Messages[n.Key] == ref && !r.Posting[n.Key] {
			return nil, errNoChange
		}
		if r.Messages == nil {
			r.Messages = map[string]MessageRef{}
		}
		r.Messages[n.Key] = ref
		delete(r.Posting, n.Key)
		return nil, nil
	})
	if err != nil {
		e.log.WarnContext(ctx, "storing message ref", logRunID, id, "error", err)
	}
	return nil
}

// keyedMutex is a mutex per key, freed when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// Run resumes every unfinished run from the store, then drives runs and
// serves their timers until ctx is done. It waits for every goroutine it
// started before returning nil, or returns the error that kept it from
// resuming. A step left running is run again (executors are idempotent);
// a pending approval keeps waiting and its timers fire from the persisted
// deadlines.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.serving {
		e.mu.Unlock()
		return ErrRunning
	}
	e.serving = true
	e.mu.Unlock()
	defer func() {
		e.wg.Wait()
		e.mu.Lock()
		e.serving = false
		clear(e.active)
		e.queue = nil
		e.mu.Unlock()
	}()

	open, err := e.List(ctx, true)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began
		}
		return fmt.Errorf("resume runs: %w", err)
	}
	e.metrics.resumed(open)
	for _, r := range open {
		e.log.InfoContext(ctx, "resuming run", logRunID, r.ID, "state", string(r.State))
		e.spawn(ctx, r.ID)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.signal:
			e.mu.Lock()
			q := e.queue
			e.queue = nil
			e.mu.Unlock()
			for _, id := range q {
				e.spawn(ctx, id)
			}
		}
	}
}

// kick asks for run id to be driven: its driver is woken, or one is started
// by Run's loop. When Run is not serving, the run waits to be resumed.
func (e *Engine) kick(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.serving {
		return
	}
	if w, ok := e.active[id]; ok {
		poke(w)
		return
	}
	e.queue = append(e.queue, id)
	poke(e.signal)
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// spawn starts the driver of run id unless one is running.
func (e *Engine) spawn(ctx context.Context, id string) {
	e.mu.Lock()
	if w, ok := e.active[id]; ok {
		poke(w)
		e.mu.Unlock()
		return
	}
	wake := make(chan struct{}, 1)
	e.active[id] = wake
	e.mu.Unlock()
	e.wg.Go(func() {
		defer func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.active[id] == wake {
				delete(e.active, id)
			}
			// A kick that arrived after the driver's last look is not lost.
			select {
			case <-wake:
				if ctx.Err() == nil {
					e.queue = append(e.queue, id)
					poke(e.signal)
				}
			default:
			}
		}()
		e.drive(ctx, id, wake)
	})
}

// drive advances one run until it finishes or ctx ends, sleeping until its
// next deadline or a kick.
func (e *Engine) drive(ctx context.Context, id string, wake <-chan struct{}) {
	wait := e.backoff
	resumed := true
	for {
		next, done, err := e.advance(ctx, id, resumed)
		resumed = false
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrNotFound) {
			return
		}
		if err != nil {
			e.log.ErrorContext(ctx, "advancing run", logRunID, id, "error", err)
			next = e.now().Add(wait)
			wait = min(2*wait, maxBackoff)
		} else {
			wait = e.backoff
		}
		if done {
			return
		}
		if !sleep(ctx, next.Sub(e.now()), !next.IsZero(), wake) {
			return
		}
	}
}

// sleep waits for d (when timed), a wake or the end of ctx; false when ctx
// ended.
func sleep(ctx context.Context, d time.Duration, timed bool, wake <-chan struct{}) bool {
	var timer <-chan time.Time
	if timed {
		t := time.NewTimer(max(0, d))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-timer:
	}
	return true
}

// advance moves the run as far as it can go now. It returns when the run is
// finished (done), or waits for a person or a timer (next: the earliest
// deadline, zero for none).
func (e *Engine) advance(ctx context.Context, id string, resumed bool) (next time.Time, done bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, false, err
		}
		// Only a step found waiting on the driver's first look may have
		// lost its requests to a crash.
		firstLook := resumed
		resumed = false
		r, err := e.Get(ctx, id)
		if err != nil {
			return time.Time{}, false, err
		}
		if firstLook {
			e.refreshDecided(ctx, r)
		}
		if r.State.Finished() {
			return time.Time{}, true, nil
		}
		i := r.Current()
		if i == len(r.Steps) {
			if _, _, err := e.transition(ctx, id, finishRun); err != nil {
				return time.Time{}, false, err
			}
			continue
		}
		s := r.Steps[i]
		switch s.Status {
		case StepFailed, StepDenied:
			// A step ended the run but the run was not marked (older data).
			_, _, err = e.transition(ctx, id, func(r *Run) ([]storage.Record, error) {
				if r.State.Finished() {
					return nil, errNoChange
				}
				r.State = RunFailed
				return []storage.Record{{Action: "run.failed", Outcome: string(RunFailed)}}, nil
			})
		case StepPending:
			switch s.Spec.Kind {
			case KindApproval:
				err = e.beginApproval(ctx, r, i)
			case KindConfirmUser:
				err = e.beginConfirm(ctx, r, i)
			case KindWait:
				err = e.beginWait(ctx, r, i)
			default:
				err = e.execute(ctx, id, i)
			}
		case StepRunning:
			if s.Spec.Kind == KindWait {
				if e.now().Before(s.Deadline) {
					return s.Deadline, false, nil
				}
				err = e.endWait(ctx, id, i)
				break
			}
			err = e.execute(ctx, id, i)
		case StepAwaitingApproval, StepAwaitingUser:
			if firstLook {
				e.renotify(ctx, r, i)
			}
			var acted bool
			next, acted, err = e.timers(ctx, r, i)
			if err == nil && !acted {
				return next, false, nil
			}
		default:
			err = fmt.Errorf("step %d in unexpected status %q", i, s.Status)
		}
		if err != nil {
			return time.Time{}, false, err
		}
	}
}

// finishRun marks a run whose steps are all complete as succeeded.
func finishRun(r *Run) ([]storage.Record, error) {
	if r.State.Finished() || r.Current() != len(r.Steps) {
		return nil, errNoChange
	}
	r.State = RunSucceeded
	return []storage.Record{{Action: "run.succeeded", Outcome: string(RunSucceeded)}}, nil
}

// skipRest marks every pending step after i skipped.
func skipRest(r *Run, i int) {
	for j := i + 1; j < len(r.Steps); j++ {
		if r.Steps[j].Status == StepPending {
			r.Steps[j].Status = StepSkipped
		}
	}
}

func stepDetails(r *Run, i int, kv ...string) map[string]string {
	d := map[string]string{"step": strconv.Itoa(i), "kind": r.Steps[i].Spec.Kind}
	for j := 0; j+1 < len(kv); j += 2 {
		d[kv[j]] = kv[j+1]
	}
	return d
}

// execute runs step i's executor: save running with the attempt number,
// run, save the result with its audit record; retry with exponential
// backoff while the executor says its error is recoverable. When ctx ends
// mid-way the step stays running, to be run again on resume.
func (e *Engine) execute(ctx context.Context, id string, i int) error {
	for try := 1; ; try++ {
		var kind string
		r, changed, err := e.transition(ctx, id, func(r *Run) ([]storage.Record, error) {
			s := &r.Steps[i]
			if r.State.Finished() || (s.Status != StepPending && s.Status != StepRunning) {
				return nil, errNoChange
			}
			s.Status = StepRunning
			s.Attempts++
			s.Error = ""
			r.State = RunRunning
			e.initResults(r, i)
			return []storage.Record{{Action: "step.running", Outcome: string(StepRunning),
				Details: stepDetails(r, i, "attempt", strconv.Itoa(s.Attempts))}}, nil
		})
		if err != nil || !changed {
			return err
		}
		kind = r.Steps[i].Spec.Kind
		exec, ok := e.executors[kind]
		if !ok {
			return fmt.Errorf("step %d: no executor for %q", i, kind)
		}
		recoverable, xerr := exec(ctx, &r, i)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Completed work is recorded even if the engine is stopping.
		wctx := context.WithoutCancel(ctx)
		if xerr == nil {
			_, _, err := e.transition(wctx, id, func(r *Run) ([]storage.Record, error) {
				s := &r.Steps[i]
				if s.Status != StepRunning {
					return nil, errNoChange
				}
				s.Status = StepDone
				s.Error = ""
				return []storage.Record{{Action: "step.done", Outcome: string(StepDone),
					Details: stepDetails(r, i, "attempt", strconv.Itoa(s.Attempts))}}, nil
			})
			return err
		}
		if skip, ok := errors.AsType[*skipError](xerr); ok {
			_, _, err := e.transition(wctx, id, func(r *Run) ([]storage.Record, error) {
				s := &r.Steps[i]
				if s.Status != StepRunning {
					return nil, errNoChange
				}
				s.Status = StepSkipped
				s.Error = skip.reason
				return []storage.Record{{Action: "step.skipped", Outcome: string(StepSkipped),
					Details: stepDetails(r, i, "reason", skip.reason)}}, nil
			})
			return err
		}
		attempts := r.Steps[i].Attempts
		if !recoverable || try >= e.maxAttempts {
			e.log.WarnContext(ctx, "step failed", logRunID, id, logStep, i, "attempt", attempts, "error", xerr)
			_, _, err := e.transition(wctx, id, func(r *Run) ([]storage.Record, error) {
				s := &r.Steps[i]
				if s.Status != StepRunning {
					return nil, errNoChange
				}
				s.Status = StepFailed
				s.Error = short(xerr)
				r.State = RunFailed
				skipRest(r, i)
				return []storage.Record{
					{Action: "step.failed", Outcome: string(StepFailed),
						Details: stepDetails(r, i, "attempt", strconv.Itoa(s.Attempts), "error", s.Error)},
					{Action: "run.failed", Outcome: string(RunFailed)},
				}, nil
			})
			return err
		}
		wait := e.backoffFor(try)
		e.log.WarnContext(ctx, "step will be retried", logRunID, id, logStep, i, "attempt", attempts, "wait", wait, "error", xerr)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoffFor is the wait after the try-th failed attempt: Backoff doubled
// per attempt, capped.
func (e *Engine) backoffFor(try int) time.Duration {
	d := e.backoff
	for range try - 1 {
		d *= 2
		if d >= maxBackoff {
			return maxBackoff
		}
	}
	return d
}

// short is an error's text cut to a length fit for a Slack field. Provider
// errors never carry response bodies (httpclient), so this is only length.
func short(err error) string {
	s := err.Error()
	if len(s) <= 300 {
		return s
	}
	cut := 297
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Retry re-runs a failed step of a failed run: a revoke step runs again for
// the providers that did not finish only, and the steps after it follow.
// It returns ErrNotFound, ErrFinished when the run did not fail (or expired
// or was denied), and ErrNotRetryable when the step is not the failed one.
func (e *Engine) Retry(ctx context.Context, runID string, step int, actor string) (Run, error) {
	r, _, err := e.transition(ctx, runID, func(r *Run) ([]storage.Record, error) {
		if step < 0 || step >= len(r.Steps) {
			return nil, fmt.Errorf("step %d: %w", step, ErrNotFound)
		}
		if r.State != RunFailed {
			return nil, ErrFinished
		}
		s := &r.Steps[step]
		if s.Status != StepFailed {
			return nil, ErrNotRetryable
		}
		s.Status = StepPending
		s.Error = ""
		for j := step + 1; j < len(r.Steps); j++ {
			if r.Steps[j].Status == StepSkipped {
				r.Steps[j].Status = StepPending
			}
		}
		r.State = RunRunning
		return []storage.Record{{Actor: actor, Action: "step.retry", Outcome: string(StepPending), Details: stepDetails(r, step)}}, nil
	})
	if err != nil {
		return Run{}, fmt.Errorf("retry run %s: %w", runID, err)
	}
	e.kick(runID)
	return r.clone(), nil
}
