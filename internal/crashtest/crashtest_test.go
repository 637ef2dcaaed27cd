package crashtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/warden-sec/warden/internal/crashtest"
	"github.com/warden-sec/warden/internal/slackfake"
	"github.com/warden-sec/warden/sessions/kratos"
)

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"

// The fake must speak what Warden's real Kratos connector sends and reads,
// keep revocations, and count effective ones apart from idempotent repeats.
func TestKratosFakeServesTheConnector(t *testing.T) {
	k := crashtest.NewKratos(t)
	bob := k.AddIdentity("Bob.Engineer@example.com")
	b1 := k.AddSession(bob, firefox, "198.51.100.7")
	b2 := k.AddSession(bob, firefox, "198.51.100.8")
	erin := k.AddIdentity("erin@example.com")
	e1 := k.AddSession(erin, firefox, "198.51.100.9")

	p, err := kratos.New(kratos.Config{AdminURL: k.URL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	u, err := p.FindUser(ctx, "bob.engineer@example.com")
	if err != nil || u.ID != bob {
		t.Fatalf("FindUser = %+v, %v; want identity %s", u, err, bob)
	}
	ss, err := p.ListSessions(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ss {
		if s.Active && s.IP != "" && s.Device.Browser != "" {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	if want := k.Live(bob); !slices.Equal(ids, want) {
		t.Errorf("listed active sessions with devices %v, want %v", ids, want)
	}

	// Revoke one, twice: one effective change, one no-op.
	for range 2 {
		if err := p.RevokeSession(ctx, u, b1); err != nil {
			t.Fatal(err)
		}
	}
	if got := k.Changes(b1); got != 1 {
		t.Errorf("session changed %d times, want 1", got)
	}
	// Revoke all, twice: the second finds nothing.
	for range 2 {
		if err := p.RevokeAll(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if eff, noop := k.RevokeAlls(bob); eff != 1 || noop != 1 {
		t.Errorf("revoke-all effective %d, no-op %d; want 1, 1", eff, noop)
	}
	if k.Changes(b2) != 1 || len(k.Live(bob)) != 0 {
		t.Errorf("bob still has live sessions %v", k.Live(bob))
	}
	if got := k.Live(erin); !slices.Equal(got, []string{e1}) || k.Changes(e1) != 0 {
		t.Errorf("erin's sessions were touched: %v", got)
	}
	all, users, err := p.ListAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ID != e1 || users[0].ID != erin {
		t.Errorf("org-wide listing = %+v, want only erin's session", all)
	}
}

func TestKratosHookDropsOrRunsAtEachPoint(t *testing.T) {
	k := crashtest.NewKratos(t)
	bob := k.AddIdentity("bob@example.com")
	k.AddSession(bob, firefox, "198.51.100.7")
	path := "/admin/identities/" + bob + "/sessions"
	isDelete := func(r crashtest.Request) bool { return r.Method == http.MethodDelete && r.Path == path }
	del := func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, k.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return http.DefaultClient.Do(req)
	}

	// Dropped: no answer, no effect.
	fired := k.Hook(crashtest.Hook{Match: isDelete, Before: func() bool { return true }})
	if resp, err := del(); err == nil {
		resp.Body.Close()
		t.Errorf("a dropped request was answered %s", resp.Status)
	}
	<-fired
	if len(k.Live(bob)) != 1 {
		t.Fatalf("a dropped DELETE changed the provider")
	}

	// Run in order: before, after the change, after the answer.
	var mu sync.Mutex
	var seen []string
	note := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
	fired = k.Hook(crashtest.Hook{
		Match:      isDelete,
		Before:     func() bool { note("before:" + strconv.Itoa(len(k.Live(bob)))); return false },
		AfterApply: func() { note("applied:" + strconv.Itoa(len(k.Live(bob)))) },
		AfterWrite: func() { note("written") },
	})
	resp, err := del()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-fired
	if want := []string{"before:1", "applied:0", "written"}; !slices.Equal(seen, want) {
		t.Errorf("hook points ran as %v, want %v", seen, want)
	}
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE answered %s, want 204", resp.Status)
	}
	// One-shot: the next request is not hooked.
	if resp, err := del(); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if eff, noop := k.RevokeAlls(bob); eff != 1 || noop != 1 {
		t.Errorf("effective %d, no-op %d; want 1, 1", eff, noop)
	}
}

func TestSlackProxyForwardsAndHooks(t *testing.T) {
	s := slackfake.New(t, slackfake.Options{})
	s.AddUser(slackfake.User{ID: "U0BOB", Name: "bob", Email: "bob@example.com"})
	p := crashtest.NewSlackProxy(t, s.APIURL())
	post := func(text string) (map[string]any, error) {
		form := url.Values{"channel": {"C0ROOM"}, "text": {text}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.APIURL()+"chat.postMessage", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+slackfake.BotToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		return out, json.NewDecoder(resp.Body).Decode(&out)
	}
	inRoom := func(r crashtest.Request) bool {
		return r.Path == "chat.postMessage" && r.Params.Get("channel") == "C0ROOM"
	}

	// Dropped before Slack sees it.
	fired := p.Hook(crashtest.Hook{Match: inRoom, Before: func() bool { return true }})
	if _, err := post("dropped"); err == nil {
		t.Errorf("a dropped call was answered")
	}
	<-fired
	if n := len(s.Messages("C0ROOM")); n != 0 {
		t.Fatalf("a dropped post reached Slack (%d messages)", n)
	}

	// After Slack applied it, before the app reads the answer.
	var postedFirst bool
	fired = p.Hook(crashtest.Hook{Match: inRoom, AfterApply: func() { postedFirst = len(s.Messages("C0ROOM")) == 1 }})
	out, err := post("hello")
	if err != nil {
		t.Fatal(err)
	}
	<-fired
	if out["ok"] != true || out["ts"] == "" || !postedFirst {
		t.Errorf("answer %v, posted before the answer: %v", out, postedFirst)
	}
}
