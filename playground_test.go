package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/playground"
)

// signalBuffer is a buffer that says when it was written to, so a test can
// wait for output without sleeping.
type signalBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func newSignalBuffer() *signalBuffer { return &signalBuffer{written: make(chan struct{}, 1)} }

func (s *signalBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.written <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *signalBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// await waits until re matches the output and returns the first submatch.
func (s *signalBuffer) await(ctx context.Context, re *regexp.Regexp) (string, bool) {
	for {
		if m := re.FindStringSubmatch(s.String()); m != nil {
			return m[1], true
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-s.written:
		}
	}
}

// playgroundProc is a running `warden playground`.
type playgroundProc struct {
	url    string
	stderr *syncBuffer
	done   chan int
	stop   context.CancelFunc
}

var pageURLRe = regexp.MustCompile(`Warden playground: (http://\S+/)\n`)

// startPlayground runs `warden playground` with env (WARDEN_PLAYGROUND_ADDR
// defaults to a free loopback port) and returns once its page is up.
func startPlayground(t *testing.T, args []string, env map[string]string) *playgroundProc {
	t.Helper()
	all := map[string]string{"WARDEN_PLAYGROUND_ADDR": "127.0.0.1:0", "WARDEN_LOG_LEVEL": "warn"}
	for k, v := range env {
		all[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &playgroundProc{stderr: &syncBuffer{}, done: make(chan int, 1), stop: cancel}
	stdout := newSignalBuffer()
	go func() {
		p.done <- run(ctx, append([]string{"playground"}, args...), envconfig.MapLookuper(all), stdout, p.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-p.done:
			if code != exitOK {
				t.Errorf("warden playground exited %d\n%s", code, p.stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("warden playground did not stop within 15 s\n%s", p.stderr.String())
		}
	})
	wait, cancelWait := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancelWait()
	u, ok := stdout.await(wait, pageURLRe)
	if !ok {
		t.Fatalf("warden playground printed no URL: %q\n%s", stdout.String(), p.stderr.String())
	}
	p.url = u
	return p
}

func (p *playgroundProc) post(t *testing.T, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url+strings.TrimPrefix(path, "/"), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s = %d %s", path, resp.StatusCode, msg)
	}
}

// events follows the page's event stream for one person.
type events struct{ states chan playground.State }

func (p *playgroundProc) events(t *testing.T, as string) *events {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"events?as="+url.QueryEscape(as), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &events{states: make(chan playground.State, 256)}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(e.states)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var st playground.State
			if json.Unmarshal([]byte(data), &st) != nil {
				return
			}
			select {
			case e.states <- st:
			case <-ctx.Done():
				return
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return e
}

func (e *events) await(t *testing.T, what string, ok func(playground.State) bool) playground.State {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case st, open := <-e.states:
			if !open {
				t.Fatalf("event stream ended before %s", what)
			}
			if ok(st) {
				return st
			}
		case <-timeout.C:
			t.Fatalf("the page never showed %s", what)
		}
	}
}

var (
	articleRe = regexp.MustCompile(`(?s)<article class="msg[^"]*" data-kind="(\w+)" data-channel="[^"]*" data-ts="([0-9.]+)">.*?<div class="msg-body">(.*?)</div>\n</article>`)
	tagRe     = regexp.MustCompile(`<[^>]*>`)
)

// lastReply is the text and timestamp of the newest message in a pane.
func lastReply(pane string) (text, ts string) {
	all := articleRe.FindAllStringSubmatch(pane, -1)
	if len(all) == 0 {
		return "", ""
	}
	m := all[len(all)-1]
	return html.UnescapeString(tagRe.ReplaceAllString(m[3], "")), m[2]
}

func countArticles(pane string) int { return len(articleRe.FindAllString(pane, -1)) }

// slackShown is a reply's text as Slack shows it: markers gone, entities decoded.
func slackShown(text string) string {
	text = strings.NewReplacer("`", "", "*", "").Replace(text)
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
}

func TestPlaygroundListensOnLoopbackAndPrintsTheURL(t *testing.T) {
	p := startPlayground(t, []string{"--addr", "127.0.0.1:0"}, map[string]string{"WARDEN_PLAYGROUND_ADDR": "192.0.2.1:1"})
	u, err := url.Parse(p.url)
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("URL %q: --addr must win over the environment and bind 127.0.0.1", p.url)
	}
	resp, err := http.Get(p.url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Warden <span>playground</span>") {
		t.Errorf("GET / = %d %.200s", resp.StatusCode, body)
	}
	if defaultPlaygroundAddr != "127.0.0.1:8088" {
		t.Errorf("default address %q is not loopback:8088", defaultPlaygroundAddr)
	}
}

func TestPlaygroundRefusesBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	env := envconfig.MapLookuper(map[string]string{})
	if code := run(t.Context(), []string{"playground", "extra"}, env, io.Discard, &stderr); code != exitUsage {
		t.Errorf("extra argument: exit %d, want %d", code, exitUsage)
	}
	stderr.Reset()
	env = envconfig.MapLookuper(map[string]string{"WARDEN_PLAYGROUND_ADDR": "nonsense"})
	if code := run(t.Context(), []string{"playground"}, env, io.Discard, &stderr); code != exitConfig || !strings.Contains(stderr.String(), "WARDEN_PLAYGROUND_ADDR") {
		t.Errorf("bad address: exit %d %q", code, stderr.String())
	}
	stderr.Reset()
	env = envconfig.MapLookuper(map[string]string{"WARDEN_PLAYGROUND_ADDR": "127.0.0.1:0", "WARDEN_PLAYGROUND_STEP_TIMEOUT": "soon"})
	if code := run(t.Context(), []string{"playground"}, env, io.Discard, &stderr); code != exitConfig || !strings.Contains(stderr.String(), "WARDEN_PLAYGROUND_STEP_TIMEOUT") {
		t.Errorf("bad step timeout: exit %d %q", code, stderr.String())
	}
}

// TestPlaygroundAnswersLikeSlack sends bad input through the page and the
// same input through Slack (the e2e harness), and expects the same answer.
func TestPlaygroundAnswersLikeSlack(t *testing.T) {
	p := startPlayground(t, nil, nil)
	w := startWarden(t, nil)
	for _, tc := range []struct{ as, typed, wire string }{
		{bob.ID, "frobnicate", "frobnicate"},
		{bob.ID, "", ""},
		{bob.ID, "revoke", "revoke"},
		{bob.ID, "list @alice", "list <@U0ALICE|alice>"},
		{alice.ID, "list nobody", "list nobody"},
	} {
		t.Run(tc.typed, func(t *testing.T) {
			ev := p.events(t, tc.as)
			before := countArticles(string(ev.await(t, "the first state", func(playground.State) bool { return true }).Panes["channel"]))
			p.post(t, "/api/command", map[string]string{"as": tc.as, "text": tc.typed})
			st := ev.await(t, "the answer", func(st playground.State) bool { return countArticles(string(st.Panes["channel"])) > before })
			got, _ := lastReply(string(st.Panes["channel"]))
			r := w.command(t, tc.as, tc.wire)
			want := r.Text
			if len(r.Blocks) > 0 {
				want = visible(t, "", r.Blocks)
			}
			for _, line := range strings.Split(slackShown(want), "\n") {
				if !strings.Contains(got, strings.TrimSpace(line)) {
					t.Errorf("/sessions %s: Slack shows %q; the page does not:\n%s", tc.typed, line, got)
				}
			}
		})
	}

	// A forged button value: bob clicks Revoke with alice's session in it.
	const forged = "U0ALICE|demo|ds-alice-mbp-chrome"
	ev := p.events(t, bob.ID)
	p.post(t, "/api/command", map[string]string{"as": bob.ID, "text": "mine"})
	st := ev.await(t, "bob's sessions", func(st playground.State) bool {
		return strings.Contains(string(st.Panes["channel"]), "ds-bob-win-edge")
	})
	_, ts := lastReply(string(st.Panes["channel"]))
	before := countArticles(string(st.Panes["channel"]))
	p.post(t, "/api/click", map[string]string{"as": bob.ID, "kind": "ephemeral", "ts": ts, "action_id": "ses.revoke", "value": forged})
	st = ev.await(t, "the answer to the forged click", func(st playground.State) bool { return countArticles(string(st.Panes["channel"])) > before })
	got, _ := lastReply(string(st.Panes["channel"]))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	env := w.slack.SlashCommand(bob.ID, "C0INCIDENT", "mine")
	if _, err := w.slack.AwaitResponse(ctx, env); err != nil {
		t.Fatal(err)
	}
	click, err := w.slack.ClickEphemeral(bob.ID, env, "ses.revoke", forged)
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.slack.AwaitResponse(ctx, click)
	if err != nil {
		t.Fatal(err)
	}
	if want := slackShown(r.Text); strings.TrimSpace(got) != strings.TrimSpace(want) || !strings.Contains(got, "your own sessions") {
		t.Errorf("forged click: the page shows %q, Slack %q", got, want)
	}
}

// TestPlaygroundScenario plays the incident against the real serve: every
// step passes (the package's tests cover a Warden that lacks a feature).
func TestPlaygroundScenario(t *testing.T) {
	p := startPlayground(t, nil, map[string]string{"WARDEN_PLAYGROUND_STEP_TIMEOUT": "10s", "WARDEN_LOG_LEVEL": "info"})
	// Warden learns everyone's devices silently at its first look; the
	// incident starts after that, as it would for a person at the page.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.stderr.awaitLog(ctx, "new-device poll done"); err != nil {
		t.Fatalf("warden's first poll did not finish: %v", err)
	}
	ev := p.events(t, carol.ID)
	p.post(t, "/api/scenario", map[string]string{})
	ev.await(t, "the scenario start", func(st playground.State) bool { return st.ScenarioRunning })
	st := ev.await(t, "the scenario end", func(st playground.State) bool { return !st.ScenarioRunning })
	if len(st.Scenario) != 9 {
		t.Fatalf("%d steps, want 9: %+v", len(st.Scenario), st.Scenario)
	}
	for i, s := range st.Scenario {
		if s.Status != playground.StepPassed {
			t.Errorf("step %d %q = %s %q, want passed", i+1, s.Title, s.Status, s.Detail)
		}
	}
	if !strings.Contains(string(st.Panes["dm"]), "contractor-offboarding") {
		t.Errorf("carol's DM does not show the approval request:\n%s", st.Panes["dm"])
	}
	if got := string(st.Panes["scenario"]); strings.Count(got, `data-status="passed"`) != 9 {
		t.Errorf("the scenario pane does not show 9 passed steps:\n%s", got)
	}
}
