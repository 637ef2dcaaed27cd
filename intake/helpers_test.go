package intake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sec/warden/sessions"
)

// Test secrets: each at least MinSecretLen long.
const (
	genericSecret = "gen-secret-0123456789"
	oktaSecret    = "okta-hook-secret-abcdef"
	auth0Token    = "auth0-stream-token-xyz"
)

// testNow is the Handler's clock in every test.
var testNow = time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)

// fakeSink is a Sink whose behaviour is its func field.
type fakeSink struct {
	HandleEventFn func(ctx context.Context, ev sessions.LoginEvent) error
}

func (f *fakeSink) HandleEvent(ctx context.Context, ev sessions.LoginEvent) error {
	return f.HandleEventFn(ctx, ev)
}

// recorder records what reached the sink; failAfter >= 0 makes the call with
// that index (and every later one) fail.
type recorder struct {
	mu     sync.Mutex
	events []sessions.LoginEvent
}

func (r *recorder) sink(failAfter int, err error) *fakeSink {
	return &fakeSink{HandleEventFn: func(_ context.Context, ev sessions.LoginEvent) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if failAfter >= 0 && len(r.events) >= failAfter {
			return err
		}
		r.events = append(r.events, ev)
		return nil
	}}
}

func (r *recorder) got() []sessions.LoginEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sessions.LoginEvent(nil), r.events...)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type server struct {
	*httptest.Server
	h    *Handler
	rec  *recorder
	logs *syncBuffer
}

// newServer starts the Handler behind a real HTTP server. mod may adjust the
// config (the sink is already set to a recorder).
func newServer(t *testing.T, sink func(*recorder) Sink, mod func(*Config)) *server {
	t.Helper()
	rec := &recorder{}
	logs := &syncBuffer{}
	cfg := Config{
		GenericSecret: genericSecret,
		OktaSecret:    oktaSecret,
		Auth0Token:    auth0Token,
		Now:           func() time.Time { return testNow },
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if sink != nil {
		cfg.Sink = sink(rec)
	} else {
		cfg.Sink = rec.sink(-1, nil)
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &server{Server: srv, h: h, rec: rec, logs: logs}
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request; body may be a string or an io.Reader (sent chunked,
// with no Content-Length).
func (s *server) do(t *testing.T, method, path, auth string, body any, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := body.(io.Reader); ok {
		req.ContentLength = -1
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: strings.TrimSpace(string(b))}
}

// refused sends a request the Handler must turn down, and checks that it
// answered status with {"error": reason} and that nothing reached the sink.
// An empty method means POST.
func (s *server) refused(t *testing.T, method, path, auth string, body any, status int, reason string) response {
	t.Helper()
	if method == "" {
		method = http.MethodPost
	}
	r := s.do(t, method, path, auth, body)
	want := fmt.Sprintf(`{"error":%q}`, reason)
	if r.status != status || r.body != want {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, want)
	}
	if got := s.rec.got(); len(got) != 0 {
		t.Errorf("sink got %d events, want none: %+v", len(got), got)
	}
	return r
}

// ts formats a time relative to testNow.
func ts(d time.Duration) string { return testNow.Add(d).Format(time.RFC3339) }
