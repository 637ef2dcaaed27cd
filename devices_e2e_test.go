package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-sec/warden/internal/slackfake"
)

const webhookSecret = "test-webhook-secret-0123456789"

// startWatching starts warden with the webhook endpoint and waits for the
// first poll, which learns everyone's devices silently.
func startWatching(t *testing.T, extra map[string]string) *warden {
	t.Helper()
	env := map[string]string{"WARDEN_WEBHOOK_SECRET": webhookSecret, "WARDEN_SECURITY_CHANNEL": securityChannel}
	for k, v := range extra {
		env[k] = v
	}
	w := startWarden(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := w.stderr.awaitLog(ctx, "new-device poll done"); err != nil {
		t.Fatalf("first poll did not finish: %v", err)
	}
	return w
}

// httpAddr is the address warden's HTTP server bound.
func (w *warden) httpAddr(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(w.stderr.String(), "\n") {
		var l struct{ Msg, HTTP string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "warden started" {
			return l.HTTP
		}
	}
	t.Fatal("warden did not log its HTTP address")
	return ""
}

// login posts one event to the generic webhook and returns the status.
func (w *warden) login(t *testing.T, ev map[string]any) int {
	t.Helper()
	if _, ok := ev["time"]; !ok {
		ev["time"] = time.Now().UTC().Format(time.RFC3339)
	}
	body, _ := json.Marshal(ev)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+w.httpAddr(t)+"/webhooks/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+webhookSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var eventSeq int

func newLogin(email, ip, ua, location, country string) map[string]any {
	eventSeq++
	return map[string]any{"id": fmt.Sprintf("evt-%d-%d", time.Now().UnixNano(), eventSeq), "provider": "demo", "type": "login",
		"email": email, "session_id": fmt.Sprintf("ds-new-%d", eventSeq), "ip": ip, "user_agent": ua, "location": location, "country": country}
}

const winChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

func TestNotMeEndsEverythingAndAlertsSecurity(t *testing.T) {
	w := startWatching(t, nil)
	if code := w.login(t, newLogin(bob.Email, "198.51.100.250", winChrome, "Lagos, NG", "NG")); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	ask := w.awaitDM(t, bob.ID, "Was this you?")
	got := visible(t, ask.Text, ask.Blocks)
	for _, want := range []string{"198.51.100.250", "Lagos, NG", "Chrome", "Windows"} {
		if !strings.Contains(got, want) {
			t.Errorf("the question does not show %q:\n%s", want, got)
		}
	}
	// Only bob may answer.
	if r := w.click(t, alice.ID, ask, "dev.deny"); !strings.Contains(r.Text, "Only the person this is about") {
		t.Errorf("alice answering bob's question got %q", r.Text)
	}
	if r := w.click(t, bob.ID, ask, "dev.deny"); !strings.Contains(r.Text, "Thanks for telling us") {
		t.Errorf("not me answered %q", r.Text)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	alert, err := w.slack.AwaitMessage(ctx, securityChannel, func(m slackfake.Message) bool {
		return strings.Contains(visible(t, m.Text, m.Blocks), "was not theirs")
	})
	if err != nil {
		t.Fatalf("no alert in the security channel: %v", err)
	}
	if got := visible(t, alert.Text, alert.Blocks); !strings.Contains(got, "198.51.100.250") || !strings.Contains(got, "Lagos") {
		t.Errorf("the alert lacks the evidence:\n%s", got)
	}
	w.awaitDM(t, bob.ID, "Change your password")
	if got := sessionsOf(t, w, bob.ID); strings.Contains(got, "Firefox") || strings.Contains(got, "Edge") {
		t.Errorf("bob still has browser sessions after 'not me':\n%s", got)
	}
	// A late second answer is explained, not applied.
	if r := w.clickStale(t, bob.ID, ask, "dev.confirm"); !strings.Contains(r.Text, "already finished") {
		t.Errorf("late answer got %q", r.Text)
	}
}

func TestYesMakesTheDeviceKnown(t *testing.T) {
	w := startWatching(t, nil)
	ev := newLogin(erin.Email, "203.0.113.150", winChrome, "Austin, US", "US")
	w.login(t, ev)
	ask := w.awaitDM(t, erin.ID, "Was this you?")
	if r := w.click(t, erin.ID, ask, "dev.confirm"); !strings.Contains(r.Text, "remember this device") {
		t.Errorf("yes answered %q", r.Text)
	}
	w.awaitDM(t, erin.ID, "You said it was you")
	// The same device again (a browser update, another address in the same
	// /24): no new question.
	again := newLogin(erin.Email, "203.0.113.151", strings.Replace(winChrome, "126", "127", 1), "Austin, US", "US")
	w.login(t, again)
	// A different device afterwards is asked about; only one question
	// came before it.
	w.login(t, newLogin(erin.Email, "192.0.2.200", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Austin, US", "US"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := w.slack.Await(ctx, func() bool { return countDMs(t, w, erin.ID, "Was this you?") >= 2 }); err != nil {
		t.Fatalf("the different device was not asked about: %v", err)
	}
	if n := countDMs(t, w, erin.ID, "Was this you?"); n != 2 {
		t.Errorf("%d questions, want 2 (the known device must not be asked about again)", n)
	}
	w.shutdown(t)
	var confirmed bool
	for _, rec := range auditOf(t, w.data, erin.Email) {
		if rec.Action == "device.confirm" && rec.Actor == erin.ID {
			confirmed = true
		}
	}
	if !confirmed {
		t.Errorf("the confirmed device was not audited")
	}
}

func countDMs(t *testing.T, w *warden, user, want string) int {
	n := 0
	for _, m := range w.slack.Messages(w.slack.DMChannel(user)) {
		if strings.Contains(visible(t, m.Text, m.Blocks), want) {
			n++
		}
	}
	return n
}

func TestNoAnswerEscalatesAndRiskyChangeIsFlagged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(path, []byte(`playbooks:
  - name: new-device
    description: a short timeout for the test
    steps:
      - kind: confirm_with_user
        name: ask the user
        timeout: 1s
      - kind: revoke_sessions
        name: end every session
        scope: all
`), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWatching(t, map[string]string{"WARDEN_PLAYBOOKS": path})
	w.login(t, newLogin(dave.Email, "198.51.100.77", winChrome, "Kyiv, UA", "UA"))
	w.awaitDM(t, dave.ID, "Was this you?")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if _, err := w.slack.AwaitMessage(ctx, securityChannel, func(m slackfake.Message) bool {
		return strings.Contains(visible(t, m.Text, m.Blocks), "has not said whether this new sign-in was theirs")
	}); err != nil {
		t.Fatalf("no escalation after the confirm timeout: %v", err)
	}
	// An MFA factor added right after: high risk.
	ev := map[string]any{"id": fmt.Sprintf("mfa-%d", time.Now().UnixNano()), "provider": "demo", "type": "mfa_added", "email": dave.Email}
	if code := w.login(t, ev); code != http.StatusOK {
		t.Fatalf("risk event answered %d", code)
	}
	if _, err := w.slack.AwaitMessage(ctx, securityChannel, func(m slackfake.Message) bool {
		got := visible(t, m.Text, m.Blocks)
		return strings.Contains(got, "High risk") && strings.Contains(got, "MFA factor was added")
	}); err != nil {
		t.Fatalf("no high-risk alert: %v", err)
	}
	w.awaitDM(t, dave.ID, "an MFA factor was added")
}

func TestNewSlackSessionIsNotAskedOverSlack(t *testing.T) {
	w := startWatching(t, nil)
	ev := newLogin(carol.Email, "198.51.100.99", "Slack/4.38 (Macintosh)", "Paris, FR", "FR")
	ev["provider"] = "slack"
	w.login(t, ev)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := w.slack.AwaitMessage(ctx, securityChannel, func(m slackfake.Message) bool {
		return strings.Contains(visible(t, m.Text, m.Blocks), "will not ask them about it over Slack")
	}); err != nil {
		t.Fatalf("no alert for a new Slack session: %v\n%s", err, w.stderr.String())
	}
	if n := countDMs(t, w, carol.ID, "Was this you?"); n != 0 {
		t.Errorf("carol was asked over Slack about a new Slack session")
	}
}

func TestWebhookRefusesBadInput(t *testing.T) {
	w := startWatching(t, nil)
	addr := "http://" + w.httpAddr(t) + "/webhooks/events"
	for _, tc := range []struct {
		auth, body string
		want       int
	}{
		{"", `{"events":[]}`, http.StatusUnauthorized},
		{"Bearer wrong-secret-0123456789", `{"events":[]}`, http.StatusUnauthorized},
		{"Bearer " + webhookSecret, `{"events":[{"provider":"demo","type":"login","email":"not-an-email"}]}`, http.StatusBadRequest},
		{"Bearer " + webhookSecret, `{"events":[{"provider":"demo","type":"login","email":"bob.engineer@example.com","surprise":1}]}`, http.StatusBadRequest},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, addr, strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%q with %q: status %d, want %d", tc.body, tc.auth, resp.StatusCode, tc.want)
		}
	}
	if n := countDMs(t, w, bob.ID, "Was this you?"); n != 0 {
		t.Errorf("a refused webhook still asked bob")
	}
}

func TestReportShowsHygiene(t *testing.T) {
	w := startWatching(t, nil)
	r := w.command(t, alice.ID, "revoke <@U0ERIN|erin> all lost laptop")
	startedRun(t, r)
	w.awaitDM(t, alice.ID, "succeeded")
	w.command(t, alice.ID, "offboard <@U0DAVE|dave>")
	w.approvalRequest(t, carol.ID)
	rep := w.command(t, alice.ID, "report")
	got := visible(t, rep.Text, rep.Blocks)
	for _, want := range []string{
		"Stale sessions", "demo:ds-bob-linux-firefox", // bob's 52-day-old Firefox
		"Unmanaged devices", "dave.contractor@example.com",
		"More than one country", "bob.engineer@example.com (BR, DE)",
		"1, 1 waiting for approval", // the offboarding
		"Revocations, last 7 days",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report does not show %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Median time from report to revocation\n—") {
		t.Errorf("report has no median time although erin's sessions were revoked:\n%s", got)
	}
	if r := w.command(t, bob.ID, "report"); !strings.Contains(r.Text, "Only incident responders") {
		t.Errorf("a non-responder saw the report: %q", r.Text)
	}
}
