package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-sec/warden/internal/slackfake"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/demo"
	"github.com/warden-sec/warden/storage"
)

func TestMineShowsOwnSessionsWithRevokeButtons(t *testing.T) {
	w := startWarden(t, nil)
	r := w.command(t, bob.ID, "mine")
	got := visible(t, r.Text, r.Blocks)
	for _, want := range []string{"Your sessions", "Demo", "Firefox", "stale", "São Paulo", "Revoke"} {
		if !strings.Contains(got, want) {
			t.Errorf("/sessions mine does not show %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Dave") || strings.Contains(got, "dave") {
		t.Errorf("/sessions mine shows someone else's sessions:\n%s", got)
	}
}

func TestListIsForRespondersOnlyAndRefusalIsAudited(t *testing.T) {
	w := startWarden(t, nil)
	r := w.command(t, bob.ID, "list <@U0DAVE|dave>")
	if !strings.Contains(r.Text, "Only incident responders") {
		t.Errorf("non-responder got %q, want a refusal", r.Text)
	}
	if strings.Contains(visible(t, r.Text, r.Blocks), "unmanaged") {
		t.Errorf("refusal leaked dave's sessions")
	}
	// alice is a responder through the S0IR user group.
	r = w.command(t, alice.ID, "list <@U0DAVE|dave>")
	got := visible(t, r.Text, r.Blocks)
	for _, want := range []string{"Sessions of <@U0DAVE>", "unmanaged device", "Revoke all", "immediately"} {
		if !strings.Contains(got, want) {
			t.Errorf("responder's list does not show %q:\n%s", want, got)
		}
	}
	w.shutdown(t)
	recs := auditOf(t, w.data, "U0DAVE")
	var refused bool
	for _, rec := range recs {
		if rec.Actor == bob.ID && rec.Outcome == "refused" {
			refused = true
		}
	}
	if !refused {
		t.Errorf("the refused list by bob was not audited: %+v", recs)
	}
}

func TestListByEmailAndUnknownPerson(t *testing.T) {
	w := startWarden(t, nil)
	r := w.command(t, alice.ID, "list erin.sales@example.com")
	if got := visible(t, r.Text, r.Blocks); !strings.Contains(got, "Sessions of <@U0ERIN>") {
		t.Errorf("list by email:\n%s", got)
	}
	r = w.command(t, alice.ID, "list nobody@example.com")
	if got := visible(t, r.Text, r.Blocks); !strings.Contains(got, "no account there") {
		t.Errorf("list of an unknown person should say 'no account there':\n%s", got)
	}
}

func TestRevokeButtonEndsOneSessionAndIsVerified(t *testing.T) {
	w := startWarden(t, nil)
	env := w.slack.SlashCommand(bob.ID, "C0INCIDENT", "mine")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r, err := w.slack.AwaitResponse(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	value := firstButtonValue(t, r.Blocks, "ses.revoke")
	parts := strings.Split(value, "|")
	if len(parts) != 3 || parts[0] != bob.ID {
		t.Fatalf("revoke button value = %q, want subject|provider|id", value)
	}
	id := parts[2]

	// erin forges bob's value into a Revoke button of her own: refused.
	erinEnv := w.slack.SlashCommand(erin.ID, "C0INCIDENT", "mine")
	if _, err := w.slack.AwaitResponse(ctx, erinEnv); err != nil {
		t.Fatal(err)
	}
	click, err := w.slack.ClickEphemeral(erin.ID, erinEnv, "ses.revoke", value)
	if err != nil {
		t.Fatal(err)
	}
	refusal := awaitNthResponse(t, w.slack, click, 1)
	if !strings.Contains(refusal.Text, "only revoke your own") {
		t.Errorf("forged click answered %q", refusal.Text)
	}

	click, err = w.slack.ClickEphemeral(bob.ID, env, "ses.revoke", value)
	if err != nil {
		t.Fatal(err)
	}
	if got := awaitNthResponse(t, w.slack, click, 1); !strings.Contains(got.Text, "Revoking that session") {
		t.Errorf("revoke click answered %q", got.Text)
	}
	// The run's progress message, in bob's DM, ends verified.
	progress := w.awaitDM(t, bob.ID, "succeeded")
	if got := visible(t, progress.Text, progress.Blocks); !strings.Contains(got, "verified gone") {
		t.Errorf("progress message does not say verified gone:\n%s", got)
	}
	after := w.command(t, bob.ID, "mine")
	if strings.Contains(visible(t, after.Text, after.Blocks), id) {
		t.Errorf("revoked session %s still listed", id)
	}

	// The same click again: the session is gone, nothing changes.
	click, err = w.slack.ClickEphemeral(bob.ID, env, "ses.revoke", value)
	if err != nil {
		t.Fatal(err)
	}
	again := awaitNthResponse(t, w.slack, click, 1)
	if !strings.Contains(again.Text, "no longer there") {
		t.Errorf("second click answered %q", again.Text)
	}
	w.shutdown(t)
	revokes, refused := 0, 0
	for _, rec := range auditOf(t, w.data, bob.ID) {
		if rec.Action == "session.verify" && rec.Outcome == "verified" {
			revokes++
		}
		if rec.Action == "session.revoke" && rec.Outcome == "refused" && rec.Actor == erin.ID {
			refused++
		}
	}
	if revokes != 1 || refused != 1 {
		t.Errorf("audited revocations = %d, refusals = %d; want 1 and 1", revokes, refused)
	}
}

func TestUserAgentMarkupIsEscaped(t *testing.T) {
	// A hostile user agent at the provider must not ping the channel.
	data := filepath.Join(t.TempDir(), "warden.db")
	addDemoSession(t, data, "erin.sales@example.com", sessions.Session{
		ID: "hostile-1", Kind: sessions.KindSession, Active: true,
		UserAgent: "Mozilla/5.0 <!channel> <@U0ALICE> & friends", IP: "198.51.100.66",
	})
	w := startWarden(t, map[string]string{"WARDEN_DATA": data})
	r := w.command(t, erin.ID, "mine")
	raw := visible(t, r.Text, r.Blocks)
	if strings.Contains(raw, "<!channel>") || strings.Contains(raw, "<@U0ALICE>") {
		t.Errorf("user agent markup reached Slack unescaped:\n%s", raw)
	}
	if !strings.Contains(raw, "&lt;!channel&gt; &lt;@U0ALICE&gt; &amp; friends") {
		t.Errorf("escaped user agent not shown:\n%s", raw)
	}
}

// addDemoSession adds a session to the demo provider's inventory in the data
// file at path, as a new device appearing at the provider would.
func addDemoSession(t *testing.T, path, email string, s sessions.Session) {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := demo.New(demo.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddSession(t.Context(), email, s); err != nil {
		t.Fatal(err)
	}
}

func firstButtonValue(t *testing.T, blocks json.RawMessage, actionID string) string {
	t.Helper()
	var bs []struct {
		Accessory *struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"accessory"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(blocks, &bs); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Accessory != nil && b.Accessory.ActionID == actionID {
			return b.Accessory.Value
		}
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Value
			}
		}
	}
	t.Fatalf("no %s button in %s", actionID, blocks)
	return ""
}

func awaitNthResponse(t *testing.T, s *slackfake.Slack, env string, n int) slackfake.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Await(ctx, func() bool { return len(s.Responses(env)) >= n }); err != nil {
		t.Fatalf("no response %d to %s: %v", n, env, err)
	}
	return s.Responses(env)[n-1]
}

// auditOf reads the audit records about subject from a stopped warden's file.
func auditOf(t *testing.T, path, subject string) []storage.Record {
	t.Helper()
	db, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.AuditBySubject(t.Context(), subject, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestSlowProviderIsShownInlineAndHidesNothing(t *testing.T) {
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	t.Cleanup(stuck.Close)
	w := startWarden(t, map[string]string{
		"WARDEN_PROVIDERS": "demo,kratos", "KRATOS_ADMIN_URL": stuck.URL, "WARDEN_PROVIDER_TIMEOUT": "1s",
	})
	r := w.command(t, bob.ID, "mine")
	got := visible(t, r.Text, r.Blocks)
	if !strings.Contains(got, "Ory Kratos*: timed out after 1s") {
		t.Errorf("the stuck provider is not reported inline:\n%s", got)
	}
	if !strings.Contains(got, "demo:ds-bob-linux-firefox") {
		t.Errorf("the stuck provider hid the demo provider's sessions:\n%s", got)
	}
}
