package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultProviderTimeout is the per-provider deadline of a Lookup when
// InventoryConfig.Timeout is zero.
const DefaultProviderTimeout = 5 * time.Second

// abandonGrace is how long past its deadline a provider may take to return
// what it has (a user found before ListSessions timed out) before Lookup
// stops waiting for it.
const abandonGrace = 100 * time.Millisecond

// logKeyProvider is the log key naming a provider (STYLE.md: "provider").
const logKeyProvider = "provider"

// Inventory errors.
var (
	// ErrTimeout means a provider did not answer within its deadline. The
	// error carrying it is a *TimeoutError whose message names the deadline
	// ("timed out after 5s"); it also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("timed out")
	// ErrProviderPanic means a provider panicked; the panic is logged, not
	// shown.
	ErrProviderPanic = errors.New("provider panicked")
	// ErrInvalidEmail means Lookup was given something that is not an email
	// address; no provider is asked.
	ErrInvalidEmail = errors.New("invalid email")
)

// TimeoutError is the error of a provider that missed its deadline.
// errors.Is matches it with ErrTimeout and context.DeadlineExceeded.
type TimeoutError struct {
	After time.Duration // the deadline that passed
}

func (e *TimeoutError) Error() string { return "timed out after " + e.After.String() }

// Is makes errors.Is(err, ErrTimeout) and errors.Is(err,
// context.DeadlineExceeded) true.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// InventoryConfig configures an Inventory. The zero value is an inventory
// with no providers.
type InventoryConfig struct {
	Providers []Provider    // asked in this order; names must be unique
	Timeout   time.Duration // per provider, FindUser and ListSessions together; default 5s
	Logger    *slog.Logger  // default: discard
}

func (c *InventoryConfig) validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v is negative", c.Timeout)
	}
	seen := make(map[string]bool, len(c.Providers))
	for i, p := range c.Providers {
		if p == nil {
			return fmt.Errorf("provider %d is nil", i)
		}
		name := p.Name()
		if name == "" {
			return fmt.Errorf("provider %d has no name", i)
		}
		if seen[name] {
			return fmt.Errorf("provider %q configured twice", name)
		}
		seen[name] = true
	}
	return nil
}

// Inventory asks every configured provider at once where a person is signed
// in. It is safe for concurrent use.
type Inventory struct {
	providers []Provider
	timeout   time.Duration
	log       *slog.Logger
}

// NewInventory returns an Inventory over cfg.Providers. It fails when a
// provider is nil, unnamed or configured twice, or the timeout is negative.
func NewInventory(cfg InventoryConfig) (*Inventory, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new inventory: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultProviderTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Inventory{
		providers: slices.Clone(cfg.Providers),
		timeout:   cfg.Timeout,
		log:       cfg.Logger,
	}, nil
}

// Providers returns the configured providers, in configured order.
func (inv *Inventory) Providers() []Provider { return slices.Clone(inv.providers) }

// Provider returns the provider named name.
func (inv *Inventory) Provider(name string) (Provider, bool) {
	for _, p := range inv.providers {
		if p.Name() == name {
			return p, true
		}
	}
	return nil, false
}

// Result is what every provider said about one person.
type Result struct {
	Email     string
	Providers []ProviderResult // in configured order, one per provider
}

// ProviderResult is one provider's answer.
type ProviderResult struct {
	Provider string
	Caps     Capabilities
	User     User      // set when Found
	Found    bool      // false: no account there (not an error), or FindUser failed
	Sessions []Session // most recently active first
	// Err is nil, or why this provider's answer is missing or partial:
	// wraps ErrTimeout (a *TimeoutError), ErrProviderPanic, ErrInvalidEmail,
	// the caller's context error, or the provider's own error.
	Err     error
	Elapsed time.Duration
}

// Lookup asks every provider concurrently for the person with this email:
// FindUser, then ListSessions, under one deadline per provider. It waits for
// every provider but not much longer than the deadline, so a slow, hung or
// panicking provider costs only its own entry. A provider that ignores its
// context is abandoned 100ms after the deadline; its call finishes in the
// background and its answer is dropped.
func (inv *Inventory) Lookup(ctx context.Context, email string) Result {
	email = strings.TrimSpace(email)
	res := Result{Email: email, Providers: make([]ProviderResult, len(inv.providers))}
	if !plausibleEmail(email) {
		for i, p := range inv.providers {
			res.Providers[i] = ProviderResult{
				Provider: p.Name(),
				Caps:     safeCaps(p),
				Err:      fmt.Errorf("lookup: %w", ErrInvalidEmail),
			}
		}
		return res
	}
	var wg sync.WaitGroup
	for i, p := range inv.providers {
		wg.Go(func() {
			res.Providers[i] = inv.ask(ctx, p, email)
		})
	}
	wg.Wait()
	return res
}

// answer is what the call goroutine hands back to ask.
type answer struct {
	op       string // the step that failed: "find user" or "list sessions"
	user     User
	found    bool
	sessions []Session
	err      error
}

// ask runs one provider under its deadline.
func (inv *Inventory) ask(ctx context.Context, p Provider, email string) ProviderResult {
	name := p.Name()
	start := time.Now()
	pr := ProviderResult{Provider: name}
	pctx, cancel := context.WithTimeout(ctx, inv.timeout)
	defer cancel()

	// Buffered: a call that outlives its deadline must not block forever.
	done := make(chan answer, 1)
	go func() { done <- inv.call(pctx, p, email) }()

	var a answer
	select {
	case a = <-done:
	case <-pctx.Done():
		// A provider that honours its context returns at once with what it
		// has; one that ignores it is abandoned after a short grace.
		grace := time.NewTimer(abandonGrace)
		select {
		case a = <-done:
		case <-grace.C:
			a = answer{err: pctx.Err()}
		}
		grace.Stop()
	}
	pr.Elapsed = time.Since(start)
	pr.Caps = safeCaps(p)
	pr.User, pr.Found, pr.Sessions = a.user, a.found, a.sessions
	pr.Err = inv.classify(ctx, pctx, a)
	if pr.Err != nil {
		inv.log.WarnContext(ctx, "provider lookup failed",
			logKeyProvider, name, "elapsed", pr.Elapsed, "error", pr.Err)
	}
	return pr
}

// classify turns a deadline the provider missed into a *TimeoutError and a
// cancelled caller into the caller's context error.
func (inv *Inventory) classify(ctx, pctx context.Context, a answer) error {
	if a.err == nil {
		return nil
	}
	op := a.op
	if op == "" {
		op = "lookup"
	}
	if ctx.Err() != nil {
		// The caller gave up, or its own shorter deadline passed.
		return fmt.Errorf("%s: %w", op, context.Cause(ctx))
	}
	if errors.Is(pctx.Err(), context.DeadlineExceeded) &&
		(errors.Is(a.err, context.DeadlineExceeded) || errors.Is(a.err, context.Canceled)) {
		return fmt.Errorf("%s: %w", op, &TimeoutError{After: inv.timeout})
	}
	return fmt.Errorf("%s: %w", op, a.err)
}

// call runs FindUser then ListSessions, turning a panic into an error.
func (inv *Inventory) call(ctx context.Context, p Provider, email string) (a answer) {
	op := "find user"
	defer func() {
		if r := recover(); r != nil {
			inv.log.ErrorContext(ctx, "provider panicked",
				logKeyProvider, p.Name(), "op", op, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			a.op, a.err = op, ErrProviderPanic
		}
	}()
	u, err := p.FindUser(ctx, email)
	if errors.Is(err, ErrNoAccount) {
		return answer{}
	}
	if err != nil {
		return answer{op: op, err: err}
	}
	if u.Provider == "" {
		u.Provider = p.Name()
	}
	a.user, a.found = u, true
	op = "list sessions"
	ss, err := p.ListSessions(ctx, u)
	if err != nil {
		a.op, a.err = op, err
		return a
	}
	ss = slices.Clone(ss)
	for i := range ss {
		if ss[i].Provider == "" {
			ss[i].Provider = p.Name()
		}
	}
	SortByActivity(ss)
	a.sessions = ss
	return a
}

// safeCaps returns p.Capabilities(), or the zero value if it panics.
func safeCaps(p Provider) (c Capabilities) {
	defer func() { _ = recover() }()
	return p.Capabilities()
}

// plausibleEmail rejects what cannot be an email address: empty, no '@',
// spaces or control characters. Providers validate the rest.
func plausibleEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || len(s) > 254 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
