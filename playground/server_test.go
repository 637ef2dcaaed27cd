package playground

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sec/warden/internal/slackfake"
	"github.com/warden-sec/warden/sessions"
)

// newServer starts a playground with no bot connected: commands and
// clicks queue in the fake, and tests post Warden's messages through the
// fake's Web API themselves.
func newServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// slackAPI calls a Web API method of the fake as the bot would.
func slackAPI(t *testing.T, s *Server, method string, args map[string]any) map[string]any {
	t.Helper()
	args["token"] = slackfake.BotToken
	body, _ := json.Marshal(args)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.Slack().APIURL()+method, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+slackfake.BotToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out["ok"] != true {
		t.Fatalf("%s: %v %v", method, out, err)
	}
	return out
}

func postJSON(t *testing.T, ts *httptest.Server, path string, body any, mod ...func(*http.Request)) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	for _, m := range mod {
		m(req)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got)
}

func TestAPIRefusesBadRequests(t *testing.T) {
	s, ts := newServer(t, Config{})
	slackAPI(t, s, "chat.postMessage", map[string]any{"channel": "U0BOB", "text": "for bob only",
		"blocks": []any{map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "action_id": "dev.deny", "value": "r/1", "text": map[string]any{"type": "plain_text", "text": "Not me"}}}}}})
	bobDM := s.Slack().DMChannel("U0BOB")
	bobTS := s.Slack().Messages(bobDM)[0].TS

	tests := []struct {
		name   string
		path   string
		body   any
		mod    func(*http.Request)
		status int
		want   string
	}{
		{"unknown person", "/api/command", map[string]string{"as": "U0MALLORY", "text": "help"}, nil, 400, "unknown person"},
		{"not JSON", "/api/command", "help", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, "send JSON"},
		{"cross-site post", "/api/command", map[string]string{"as": "U0ALICE", "text": "help"}, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 403, "cross-origin"},
		{"rebound host name", "/api/command", map[string]string{"as": "U0ALICE", "text": "help"}, func(r *http.Request) { r.Host = "evil.example:8088" }, 403, "IP address or localhost"},
		{"unknown field", "/api/command", map[string]string{"as": "U0ALICE", "text": "help", "user": "U0BOB"}, nil, 400, "bad JSON"},
		{"too large", "/api/command", map[string]string{"as": "U0ALICE", "text": strings.Repeat("x", maxRequestBytes)}, nil, 413, "too large"},
		{"someone else's DM", "/api/click", clickRequest{As: "U0ALICE", Kind: "message", Channel: bobDM, TS: bobTS, ActionID: "dev.deny", Value: "r/1"}, nil, 403, "not yours"},
		{"no such message", "/api/click", clickRequest{As: "U0ALICE", Kind: "message", Channel: DefaultChannel, TS: "1.2", ActionID: "x"}, nil, 404, "gone"},
		{"no such ephemeral", "/api/click", clickRequest{As: "U0ALICE", Kind: "ephemeral", TS: "1.2", ActionID: "x"}, nil, 404, "gone"},
		{"bad kind", "/api/click", clickRequest{As: "U0ALICE", Kind: "view"}, nil, 400, "kind"},
		{"no such view", "/api/submit", submitRequest{As: "U0ALICE", View: "V1", Values: map[string]string{"reason": "x"}}, nil, 404, "closed"},
		{"close no view", "/api/close", closeRequest{As: "U0ALICE", View: "V1"}, nil, 404, "closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mods := []func(*http.Request){}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			status, body := postJSON(t, ts, tc.path, tc.body, mods...)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%s = %d %s, want %d containing %q", tc.path, status, body, tc.status, tc.want)
			}
		})
	}
	if n := s.Slack().Pending(); n != 0 {
		t.Errorf("%d envelopes reached Slack from refused requests", n)
	}
	for _, path := range []string{"/api/state?as=nobody", "/events?as=nobody"} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", path, resp.StatusCode)
		}
	}
}

func TestAPISendsWhatSlackWould(t *testing.T) {
	s, ts := newServer(t, Config{})
	// A command goes to Slack as the Slack client would send it.
	status, body := postJSON(t, ts, "/api/command", commandRequest{As: "U0ALICE", Text: "list @bob <b>"})
	if status != http.StatusAccepted || !strings.Contains(body, "envelope") {
		t.Fatalf("command = %d %s", status, body)
	}
	// Clicks on a channel message and on one's own DM are delivered, with
	// the value as sent (forged or not).
	button := func(value string) []any {
		return []any{map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "action_id": "pb.approve", "value": value, "text": map[string]any{"type": "plain_text", "text": "Approve"}}}}}
	}
	ch := slackAPI(t, s, "chat.postMessage", map[string]any{"channel": DefaultChannel, "text": "approve?", "blocks": button("run/0")})
	dm := slackAPI(t, s, "chat.postMessage", map[string]any{"channel": "U0CAROL", "text": "approve?", "blocks": button("run/0")})
	for _, c := range []clickRequest{
		{As: "U0BOB", Kind: "message", Channel: DefaultChannel, TS: ch["ts"].(string), ActionID: "pb.approve", Value: "forged/9"},
		{As: "U0CAROL", Kind: "message", Channel: dm["channel"].(string), TS: dm["ts"].(string), ActionID: "pb.approve", Value: "run/0"},
	} {
		if status, body := postJSON(t, ts, "/api/click", c); status != http.StatusAccepted {
			t.Errorf("click %+v = %d %s", c, status, body)
		}
	}
	if n := s.Slack().Pending(); n != 3 {
		t.Errorf("Slack holds %d envelopes for Warden, want 3 (a command, two clicks)", n)
	}
}

// sse reads a Server-Sent Events stream and hands over each state.
type sse struct {
	states chan State
	done   chan struct{}
}

func openEvents(t *testing.T, ts *httptest.Server, as string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events?as="+url.QueryEscape(as), nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	e := &sse{states: make(chan State, 64), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(e.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "state":
				var st State
				data := strings.TrimPrefix(line, "data: ")
				if err := json.Unmarshal([]byte(data), &st); err != nil {
					if ctx.Err() != nil {
						// The test is over and cancelled the stream: the
						// scanner hands over the cut-off last line.
						return
					}
					var se *json.SyntaxError
					if errors.As(err, &se) {
						lo, hi := max(0, int(se.Offset)-80), min(len(data), int(se.Offset)+80)
						t.Errorf("event data: %v at %d of %d: …%q…", err, se.Offset, len(data), data[lo:hi])
					} else {
						t.Errorf("event data: %v", err)
					}
					return
				}
				select {
				case e.states <- st:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return e
}

// await returns the first state for which ok holds.
func (e *sse) await(t *testing.T, what string, ok func(State) bool) State {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case st := <-e.states:
			if ok(st) {
				return st
			}
		case <-e.done:
			t.Fatalf("event stream ended before %s", what)
		case <-timeout.C:
			t.Fatalf("no event showed %s within 10s", what)
		}
	}
}

func TestEventsStreamEveryChange(t *testing.T) {
	s, ts := newServer(t, Config{})
	alice := openEvents(t, ts, "U0ALICE")
	bob := openEvents(t, ts, "U0BOB")

	first := alice.await(t, "the first state", func(State) bool { return true })
	for _, pane := range []string{"people", "channel", "dm", "security", "modal", "scenario", "problems"} {
		if _, ok := first.Panes[pane]; !ok {
			t.Errorf("state has no %s pane", pane)
		}
	}
	if !strings.Contains(string(first.Panes["channel"]), "Nothing here yet") {
		t.Errorf("empty channel pane = %s", first.Panes["channel"])
	}

	slackAPI(t, s, "chat.postMessage", map[string]any{"channel": DefaultSecurityChannel, "text": "Alert: *new device* for <@U0BOB>"})
	alice.await(t, "the security alert", func(st State) bool {
		return strings.Contains(string(st.Panes["security"]), "<strong>new device</strong> for <span class=\"mention\" data-id=\"U0BOB\">@bob</span>")
	})

	slackAPI(t, s, "chat.postEphemeral", map[string]any{"channel": DefaultChannel, "user": "U0BOB", "text": "only for bob"})
	slackAPI(t, s, "chat.postMessage", map[string]any{"channel": "U0BOB", "text": "was this you?"})
	got := bob.await(t, "bob's ephemeral and DM", func(st State) bool {
		return strings.Contains(string(st.Panes["channel"]), "only for bob") && strings.Contains(string(st.Panes["dm"]), "was this you?")
	})
	if !strings.Contains(string(got.Panes["channel"]), "Only visible to you") {
		t.Errorf("bob's ephemeral is not marked as his alone: %s", got.Panes["channel"])
	}
	st := alice.await(t, "bob's DM badge", func(st State) bool {
		return strings.Contains(string(st.Panes["people"]), `data-person="U0BOB" aria-pressed="false"><span class="pname">bob</span> <span class="role">engineer</span> <span class="badge"`)
	})
	if strings.Contains(string(st.Panes["channel"]), "only for bob") || strings.Contains(string(st.Panes["dm"]), "was this you?") {
		t.Errorf("alice sees bob's ephemeral or DM:\n%s\n%s", st.Panes["channel"], st.Panes["dm"])
	}

	// The playground's own changes stream too.
	s.SetInventory(&fakeInventory{})
	if !s.StartScenario() {
		t.Fatal("scenario did not start")
	}
	alice.await(t, "the scenario's steps", func(st State) bool {
		return strings.Contains(string(st.Panes["scenario"]), "A new device signs in as bob")
	})

	// Close ends the streams.
	s.Close()
	select {
	case <-alice.done:
	case <-time.After(10 * time.Second):
		t.Fatal("event stream still open after Close")
	}
}

// fakeInventory is a demo provider stand-in with function fields.
type fakeInventory struct {
	mu    sync.Mutex
	added []string // emails AddSession was called with
	users map[string][]sessions.Session
}

func (f *fakeInventory) FindUser(_ context.Context, email string) (sessions.User, error) {
	return sessions.User{Provider: "demo", ID: email, Email: email}, nil
}

func (f *fakeInventory) ListSessions(_ context.Context, u sessions.User) ([]sessions.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[u.Email], nil
}

func (f *fakeInventory) AddSession(_ context.Context, email string, s sessions.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.users == nil {
		f.users = map[string][]sessions.Session{}
	}
	f.added = append(f.added, email)
	f.users[email] = append(f.users[email], s)
	return nil
}

// awaitScenario waits (on the playground's change channel) until the
// scenario stops.
func awaitScenario(t *testing.T, s *Server) []StepState {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		ch := s.ScenarioChanged()
		steps, running := s.Scenario()
		if !running && len(steps) > 0 {
			return steps
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("scenario still running after 20s: %+v", steps)
		}
	}
}

// TestScenarioFailsClearlyInsteadOfHanging runs the script with nobody
// answering in Slack: every step must end, the first must pass, and every
// failure must say what was missing.
func TestScenarioFailsClearlyInsteadOfHanging(t *testing.T) {
	s, _ := newServer(t, Config{StepTimeout: 200 * time.Millisecond})
	inv := &fakeInventory{}
	s.SetInventory(inv)
	if !s.StartScenario() {
		t.Fatal("scenario did not start")
	}
	if s.StartScenario() {
		t.Error("a second play started while the first runs")
	}
	steps := awaitScenario(t, s)
	want := []struct{ status, detail string }{
		{StepPassed, "from 198.51.100.250"},
		{StepFailed, "Warden did not answer alice's “/sessions list @bob” within 200ms"},
		{StepSkipped, "earlier step"},
		{StepSkipped, "earlier step"},
		{StepSkipped, "earlier step"},
		{StepFailed, "Warden did not answer alice's “/sessions offboard @dave contract ended” within 200ms"},
		{StepSkipped, "earlier step"},
		{StepSkipped, "earlier step"},
		{StepFailed, "Warden did not answer alice's “/sessions report”"},
	}
	if len(steps) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i, w := range want {
		if steps[i].Status != w.status || !strings.Contains(steps[i].Detail, w.detail) {
			t.Errorf("step %d %q = %s %q, want %s containing %q", i+1, steps[i].Title, steps[i].Status, steps[i].Detail, w.status, w.detail)
		}
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if fmt.Sprint(inv.added) != "[bob.engineer@example.com]" {
		t.Errorf("AddSession calls = %v, want one for bob", inv.added)
	}
}

func TestScenarioWithoutProviderSaysSo(t *testing.T) {
	s, _ := newServer(t, Config{StepTimeout: 100 * time.Millisecond})
	s.StartScenario()
	steps := awaitScenario(t, s)
	if steps[0].Status != StepFailed || !strings.Contains(steps[0].Detail, "no handle on the demo provider") {
		t.Errorf("first step = %+v, want a failure naming the missing provider", steps[0])
	}
}

func TestPageNamesTheChosenPerson(t *testing.T) {
	_, ts := newServer(t, Config{})
	for q, want := range map[string]string{"": `data-as="U0ALICE"`, "?as=bob": `data-as="U0BOB"`, "?as=U0CAROL": `data-as="U0CAROL"`, "?as=%3Cscript%3E": `data-as="U0ALICE"`} {
		resp, err := ts.Client().Get(ts.URL + "/" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET /%s = %d, want a page with %s", q, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("page CSP = %q", csp)
		}
	}
	for _, path := range []string{"/static/app.js", "/static/style.css"} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
}
