package playbooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
	"github.com/warden-sec/warden/storage"
)

// benchRate is each fake provider's limit, and each connector's pace.
const benchRate = 20

// throttledIdP is an httptest identity provider that allows benchRate
// requests a second (a token bucket) and answers 429 + Retry-After beyond.
type throttledIdP struct {
	srv       *httptest.Server
	limit     *rate.Limiter
	served    atomic.Int64 // requests answered other than 429
	throttled atomic.Int64 // 429s

	mu       sync.Mutex
	sessions map[string][]string // user id -> live session ids
}

func newThrottledIdP(users int) *throttledIdP {
	p := &throttledIdP{limit: rate.NewLimiter(benchRate, benchRate), sessions: map[string][]string{}}
	for i := range users {
		id := "u" + strconv.Itoa(i)
		p.sessions[id] = []string{id + "-a", id + "-b"}
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

func (p *throttledIdP) serve(w http.ResponseWriter, r *http.Request) {
	if !p.limit.Allow() {
		p.throttled.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	p.served.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/users":
		email := r.URL.Query().Get("email")
		num, ok := strings.CutPrefix(email, "user")
		num, _, _ = strings.Cut(num, "@")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"id": "u" + strconv.Itoa(n)})
	case strings.HasPrefix(r.URL.Path, "/users/") && strings.HasSuffix(r.URL.Path, "/sessions"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/users/"), "/sessions")
		if r.Method == http.MethodDelete {
			delete(p.sessions, id)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		out := []map[string]any{}
		for _, s := range p.sessions[id] {
			out = append(out, map[string]any{"id": s, "active": true})
		}
		json.NewEncoder(w).Encode(out)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (p *throttledIdP) left() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// httpIdP is a minimal connector: every call goes through httpclient at
// benchRate requests a second.
type httpIdP struct {
	name string
	c    *httpclient.Client
}

func (p *httpIdP) Name() string { return p.name }
func (p *httpIdP) Capabilities() sessions.Capabilities {
	return sessions.Capabilities{ListSessions: true, RevokeAll: true}
}

func (p *httpIdP) FindUser(ctx context.Context, email string) (sessions.User, error) {
	var out struct{ ID string }
	_, err := p.c.JSON(ctx, http.MethodGet, "/users", url.Values{"email": {email}}, nil, &out)
	if errors.Is(err, sessions.ErrNotFound) {
		return sessions.User{}, fmt.Errorf("find user: %w", sessions.ErrNoAccount)
	}
	if err != nil {
		return sessions.User{}, fmt.Errorf("find user: %w", err)
	}
	return sessions.User{Provider: p.name, ID: out.ID, Email: email}, nil
}

func (p *httpIdP) ListSessions(ctx context.Context, u sessions.User) ([]sessions.Session, error) {
	var out []struct {
		ID     string
		Active bool
	}
	if _, err := p.c.JSON(ctx, http.MethodGet, "/users/"+u.ID+"/sessions", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	ss := make([]sessions.Session, len(out))
	for i, s := range out {
		ss[i] = sessions.Session{Provider: p.name, ID: s.ID, Kind: sessions.KindSession, Active: s.Active}
	}
	return ss, nil
}

func (p *httpIdP) RevokeSession(ctx context.Context, u sessions.User, id string) error {
	return sessions.ErrNotSupported
}

func (p *httpIdP) RevokeAll(ctx context.Context, u sessions.User) error {
	if _, err := p.c.JSON(ctx, http.MethodDelete, "/users/"+u.ID+"/sessions", nil, nil, nil); err != nil {
		return fmt.Errorf("revoke all: %w", err)
	}
	return nil
}

// finishNotifier reports each run once when it finishes.
type finishNotifier struct {
	mu   sync.Mutex
	seen map[string]bool
	done chan Run
}

func (n *finishNotifier) Notify(ctx context.Context, run Run, no Notice) (MessageRef, error) {
	if no.Kind == NoticeProgress && run.State.Finished() {
		n.mu.Lock()
		first := !n.seen[run.ID]
		n.seen[run.ID] = true
		n.mu.Unlock()
		if first {
			n.done <- run
		}
	}
	return MessageRef{Channel: "D1", TS: "1.0"}, nil
}

// BenchmarkMassRevoke revokes every session of WARDEN_BENCH_USERS (default
// 500) users at 3 providers that each allow 20 requests a second, one
// "revoke" run per user, all started at once. It reports ratio = elapsed /
// floor, where floor is the busiest provider's requests at 20 a second,
// and failed = revocations not verified.
func BenchmarkMassRevoke(b *testing.B) {
	users := 500
	if s := os.Getenv("WARDEN_BENCH_USERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("WARDEN_BENCH_USERS=%q", s)
		}
		users = n
	}
	for range b.N {
		ratio, failed, throttled, perProvider := massRevoke(b, users)
		b.ReportMetric(ratio, "ratio")
		b.ReportMetric(float64(failed), "failed")
		b.ReportMetric(float64(throttled), "429s")
		b.ReportMetric(float64(perProvider), "req/provider")
		b.ReportMetric(float64(users), "users")
	}
}

func massRevoke(b *testing.B, users int) (ratio float64, failed int, throttled, perProvider int64) {
	ctx := b.Context()
	db, err := storage.Open(filepath.Join(b.TempDir(), "warden.db"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var idps []*throttledIdP
	var provs []sessions.Provider
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	defer transport.CloseIdleConnections()
	for i := range 3 {
		s := newThrottledIdP(users)
		defer s.srv.Close()
		c, err := httpclient.New(httpclient.Config{
			Provider: fmt.Sprintf("idp%d", i),
			BaseURL:  s.srv.URL,
			HTTP:     &http.Client{Transport: transport, Timeout: 30 * time.Second},
			Rate:     benchRate,
			Burst:    1,
			Signal:   httpclient.RetryAfter,
		})
		if err != nil {
			b.Fatal(err)
		}
		idps = append(idps, s)
		provs = append(provs, &httpIdP{name: fmt.Sprintf("idp%d", i), c: c})
	}
	inv, err := sessions.NewInventory(sessions.InventoryConfig{Providers: provs})
	if err != nil {
		b.Fatal(err)
	}
	note := &finishNotifier{seen: map[string]bool{}, done: make(chan Run, users)}
	eng, err := New(Config{Store: db, Inventory: inv, Notifier: note})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- eng.Run(runCtx) }()
	defer func() {
		cancel()
		<-stopped
	}()

	start := time.Now()
	if os.Getenv("WARDEN_BENCH_TRACE") != "" {
		go func() {
			for range time.Tick(time.Second) {
				fmt.Fprintf(os.Stderr, "%v: served %d %d %d\n", time.Since(start).Round(time.Second), idps[0].served.Load(), idps[1].served.Load(), idps[2].served.Load())
			}
		}()
	}
	for i := range users {
		_, err := eng.Start(ctx, StartRequest{Playbook: PlaybookRevoke, Requester: "UBENCH",
			Subject: Subject{SlackID: fmt.Sprintf("U%05d", i), Email: fmt.Sprintf("user%04d@example.com", i)}})
		if err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.After(time.Duration(users)*3*time.Second/benchRate*3 + time.Minute)
	for range users {
		select {
		case r := <-note.done:
			if r.State != RunSucceeded {
				failed++
				continue
			}
			for _, pr := range r.Steps[0].Results {
				if pr.Status != ResultVerified {
					failed++
				}
			}
		case <-deadline:
			b.Fatalf("runs did not finish in time")
		}
	}
	elapsed := time.Since(start)
	for _, s := range idps {
		perProvider = max(perProvider, s.served.Load())
		throttled += s.throttled.Load()
		failed += s.left()
	}
	floor := time.Duration(perProvider) * time.Second / benchRate
	b.Logf("users %d: elapsed %v, floor %v, %d requests at the busiest provider, %d throttled", users, elapsed.Round(time.Millisecond), floor, perProvider, throttled)
	return elapsed.Seconds() / floor.Seconds(), failed, throttled, perProvider
}
