package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/demo"
	"github.com/warden-sec/warden/storage"
)

const chromiumPath = "/usr/bin/chromium"

// cdp is a minimal Chrome DevTools protocol client: one websocket to the
// browser, commands to one page session (flattened), replies matched by id.
type cdp struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpReply
	session string
	errs    chan string // JavaScript exceptions and dialogs on the page
	done    chan struct{}
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func dialCDP(ctx context.Context, wsURL string) (*cdp, error) {
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("dial devtools: %w", err)
	}
	c := &cdp{conn: conn, pending: map[int]chan cdpReply{}, errs: make(chan string, 16), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *cdp) read() {
	defer close(c.done)
	for {
		var m struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if err := c.conn.ReadJSON(&m); err != nil {
			return
		}
		switch {
		case m.ID != 0:
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m.cdpReply
			}
		case m.Method == "Runtime.exceptionThrown", m.Method == "Page.javascriptDialogOpening":
			select {
			case c.errs <- m.Method + " " + string(m.Params):
			default:
			}
		}
	}
}

// call sends a command (to the page session unless browser is set) and
// decodes its result into out.
func (c *cdp) call(ctx context.Context, browser bool, method string, params, out any) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpReply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if !browser && c.session != "" {
		msg["sessionId"] = c.session
	}
	c.wmu.Lock()
	err := c.conn.WriteJSON(msg)
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("%s: devtools connection closed", method)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// eval runs JavaScript in the page, awaiting a promise, and decodes the
// value into out.
func (c *cdp) eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := c.call(ctx, false, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("%s %s", r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	t   *testing.T
	cdp *cdp
	ctx context.Context
}

var devtoolsRe = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

func startChromium(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s is absent: install Debian's chromium package to run the browser test", chromiumPath)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	profile := t.TempDir()
	cmd := exec.Command(chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1440,1000", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers go with it
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	// Chromium says where DevTools listens on stderr once it is ready; the
	// same address is in DevToolsActivePort.
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	var wsURL string
	select {
	case wsURL = <-listening:
	case <-exited:
		t.Fatal("chromium exited before DevTools listened")
	case <-ctx.Done():
		t.Fatal("chromium did not start DevTools within 60 s")
	}
	// DevToolsActivePort holds the port and the browser's path; Chromium
	// may write it just after the stderr line, which is then the source.
	if port, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
		if lines := strings.Split(strings.TrimSpace(string(port)), "\n"); len(lines) == 2 {
			wsURL = "ws://127.0.0.1:" + lines[0] + lines[1]
		}
	}
	c, err := dialCDP(ctx, wsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.call(context.Background(), true, "Browser.close", map[string]any{}, nil)
		_ = c.conn.Close()
	})
	return &browser{t: t, cdp: c, ctx: ctx}
}

// open creates a tab at url and attaches to it.
func (b *browser) open(url string) {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.cdp.call(b.ctx, true, "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		b.t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.cdp.call(b.ctx, true, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		b.t.Fatal(err)
	}
	b.cdp.session = att.SessionID
	for _, m := range []string{"Runtime.enable", "Page.enable"} {
		if err := b.cdp.call(b.ctx, false, m, map[string]any{}, nil); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := b.cdp.call(b.ctx, false, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		b.t.Fatal(err)
	}
	if err := b.cdp.call(b.ctx, false, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		b.t.Fatal(err)
	}
}

// js evaluates expr and fails the test on an exception.
func (b *browser) js(expr string, out any) {
	b.t.Helper()
	if err := b.cdp.eval(b.ctx, expr, out); err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	b.noPageErrors()
}

func (b *browser) noPageErrors() {
	b.t.Helper()
	select {
	case e := <-b.cdp.errs:
		b.t.Fatalf("the page raised: %s", e)
	default:
	}
}

// waitFor waits, inside the page, until the JavaScript condition cond is
// true: a MutationObserver re-checks it on every DOM change.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	expr := fmt.Sprintf(`new Promise((resolve, reject) => {
  const check = () => { try { return !!(%s); } catch (e) { return false; } };
  if (check()) { resolve(true); return; }
  const obs = new MutationObserver(() => { if (check()) { obs.disconnect(); resolve(true); } });
  obs.observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  setTimeout(() => { obs.disconnect(); reject(new Error("timed out")); }, 20000);
})`, cond)
	if err := b.cdp.eval(b.ctx, expr, nil); err != nil {
		var text string
		_ = b.cdp.eval(b.ctx, `document.querySelector("main").innerText`, &text)
		b.t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, text)
	}
	b.noPageErrors()
}

// command types a slash command the way a person does, and sends it.
func (b *browser) command(text string) {
	b.t.Helper()
	b.js(`document.getElementById("command-text").focus()`, nil)
	if err := b.cdp.call(b.ctx, false, "Input.insertText", map[string]any{"text": text}, nil); err != nil {
		b.t.Fatal(err)
	}
	b.js(`document.querySelector("#command button[type=submit]").click()`, nil)
}

func (b *browser) be(person string) {
	b.t.Helper()
	b.js(fmt.Sprintf(`document.querySelector('[data-person=%q]').click()`, person), nil)
	b.waitFor(person+" selected", fmt.Sprintf(`document.querySelector('[data-person=%q]').classList.contains("current") && document.getElementById("me").textContent !== ""`, person))
}

func (b *browser) screenshot(path string) {
	b.t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	if err := b.cdp.call(b.ctx, false, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		b.t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) < 1000 {
		b.t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// seedHostileSession gives erin a session whose user agent and location
// carry markup, in a fresh data file.
func seedHostileSession(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := storage.Open(path, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := demo.New(demo.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	err = p.AddSession(t.Context(), demo.ErinEmail, sessions.Session{
		ID:        "ds-erin-hostile",
		UserAgent: `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`,
		Device:    sessions.Device{},
		Location:  `<img src=x onerror="window.__pwned=3">`,
		IP:        "198.51.100.66",
	})
	if err != nil && !errors.Is(err, nil) {
		t.Fatal(err)
	}
	return path
}

// TestPlaygroundInChromium drives the page in a real headless Chromium:
// a responder types commands, markup in data and input stays text, a
// confirm dialog guards Revoke, and a manager approves an offboarding.
func TestPlaygroundInChromium(t *testing.T) {
	b := startChromium(t)
	p := startPlayground(t, nil, map[string]string{"WARDEN_DATA": seedHostileSession(t)})
	b.open(p.url + "?as=alice")
	b.waitFor("the live page", `document.getElementById("conn").textContent === "live" && document.querySelector(".person.current")`)
	b.js(`window.__posts = 0; const f = window.fetch; window.fetch = (...a) => { window.__posts++; return f(...a); }; true`, nil)

	// A responder lists someone's sessions.
	b.command("list @bob")
	b.waitFor("bob's sessions", `document.getElementById("pane-channel").innerText.includes("ds-bob-win-edge")`)
	var shown string
	b.js(`document.getElementById("pane-channel").innerText`, &shown)
	for _, want := range []string{"Sessions of @bob", "Edge 126 · Windows", "192.0.2.10", "Only visible to you"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the list does not show %q:\n%s", want, shown)
		}
	}

	// Markup in a user agent, a location or a command is shown as text.
	b.command("list @erin")
	b.waitFor("erin's sessions", `document.getElementById("pane-channel").innerText.includes("ds-erin-hostile")`)
	b.command(`<script>window.__pwned=4</script><img src=x onerror="window.__pwned=5">`)
	b.waitFor("the unknown-command answer", `document.getElementById("pane-channel").innerText.includes("Unknown command")`)
	var hostile struct {
		Elements int    `json:"elements"`
		Pwned    any    `json:"pwned"`
		Text     string `json:"text"`
	}
	b.js(`({elements: document.querySelectorAll("main script, main img, #pane-channel [onerror]").length,
	        pwned: window.__pwned === undefined ? null : window.__pwned,
	        text: document.getElementById("pane-channel").innerText})`, &hostile)
	if hostile.Elements != 0 || hostile.Pwned != nil {
		t.Errorf("markup became elements (%d) or ran (window.__pwned = %v)", hostile.Elements, hostile.Pwned)
	}
	for _, want := range []string{`<img src=x onerror="window.__pwned=3">`, `<script>window.__pwned=1</script>`} {
		if !strings.Contains(hostile.Text, want) {
			t.Errorf("the page does not show %q as text:\n%s", want, hostile.Text)
		}
	}
	// Warden echoes (the start of) the unknown command; it must read as text.
	if !regexp.MustCompile(`Unknown command ".*script.*window`).MatchString(hostile.Text) {
		t.Errorf("the typed markup is not shown as text:\n%s", hostile.Text)
	}

	// Revoke asks first; Keep it sends nothing, Revoke does.
	b.be("U0BOB")
	b.command("mine")
	b.waitFor("bob's own sessions", `document.querySelector('#pane-channel [data-value="U0BOB|demo|ds-bob-linux-firefox"]')`)
	b.js(`window.__posts = 0; document.querySelector('#pane-channel [data-value="U0BOB|demo|ds-bob-linux-firefox"]').click(); true`, nil)
	b.waitFor("the confirm dialog", `document.getElementById("confirm").open`)
	var dialog string
	b.js(`document.getElementById("confirm").innerText`, &dialog)
	for _, want := range []string{"Revoke this session?", "This signs the device out of Demo immediately.", "Keep it", "Revoke"} {
		if !strings.Contains(dialog, want) {
			t.Errorf("confirm dialog lacks %q: %q", want, dialog)
		}
	}
	b.js(`document.getElementById("confirm-deny").click(); new Promise(r => setTimeout(r, 0)).then(() => window.__posts)`, nil)
	var posts int
	b.js(`window.__posts`, &posts)
	if posts != 0 {
		t.Errorf("Keep it sent %d requests", posts)
	}
	b.js(`document.querySelector('#pane-channel [data-value="U0BOB|demo|ds-bob-linux-firefox"]').click(); true`, nil)
	b.waitFor("the confirm dialog again", `document.getElementById("confirm").open`)
	b.js(`document.getElementById("confirm-ok").click(); true`, nil)
	b.waitFor("the revoke answer", `document.getElementById("pane-channel").innerText.includes("Revoking demo:ds-bob-linux-firefox") && window.__posts === 1`)

	// The responder starts an offboarding; the manager approves it from her DM.
	b.be("U0ALICE")
	b.command("offboard @dave contract ended")
	b.waitFor("the offboarding answer", `document.getElementById("pane-channel").innerText.match(/offboarding/i)`)
	b.be("U0CAROL")
	b.waitFor("the approval request in carol's DM", `document.querySelector('#pane-dm button[data-action-id="pb.approve"]')`)
	b.js(`document.querySelector('#pane-dm button[data-action-id="pb.approve"]').click(); true`, nil)
	b.js(`new Promise(r => setTimeout(r, 0)).then(() => { const d = document.getElementById("confirm"); if (d.open) document.getElementById("confirm-ok").click(); return true; })`, nil)
	b.waitFor("carol's approval taking effect", `document.getElementById("pane-dm").innerText.includes("Approved")`)
	b.be("U0DAVE")
	b.waitFor("dave told his access ended", `document.getElementById("pane-dm").innerText.match(/access has been ended|revoked/i)`)
	b.be("U0CAROL")
	b.command("mine")
	b.waitFor("carol's own sessions", `document.getElementById("pane-channel").innerText.includes("ds-carol-mbp-safari")`)

	b.screenshot(filepath.Join(t.TempDir(), "playground.png"))
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		b.screenshot(filepath.Join("docs", "playground.png"))
	}
}
