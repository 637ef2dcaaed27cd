package watch

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/demo"
	"github.com/warden-sec/warden/storage"
)

// notices records what the engine would tell people.
type notices struct {
	mu  sync.Mutex
	got []playbooks.Notice
}

func (n *notices) Notify(_ context.Context, _ playbooks.Run, nt playbooks.Notice) (playbooks.MessageRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, nt)
	return playbooks.MessageRef{Channel: "D1", TS: "1"}, nil
}

// directory knows bob and carol by Slack id.
type directory struct{}

func (directory) UserByEmail(_ context.Context, email string) (string, error) {
	switch email {
	case demo.BobEmail:
		return "U0BOB", nil
	case demo.CarolEmail:
		return "U0CAROL", nil
	}
	return "", storage.ErrNotFound
}
func (directory) UserEmail(context.Context, string) (string, error)      { return "", storage.ErrNotFound }
func (directory) GroupMembers(context.Context, string) ([]string, error) { return nil, nil }

// gauges records the last hygiene counts.
type gauges struct{ stale, unmanaged int }

func (g *gauges) SetHygiene(stale, unmanaged int) { g.stale, g.unmanaged = stale, unmanaged }

type fixture struct {
	gauges gauges
	db     *storage.DB
	demo   *demo.Provider
	engine *playbooks.Engine
	w      *Watcher
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "warden.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	if f.demo, err = demo.New(demo.Config{Store: db, Now: clock}); err != nil {
		t.Fatal(err)
	}
	inv, err := sessions.NewInventory(sessions.InventoryConfig{Providers: []sessions.Provider{f.demo}})
	if err != nil {
		t.Fatal(err)
	}
	if f.engine, err = playbooks.New(playbooks.Config{Store: db, Inventory: inv, Notifier: &notices{}, Directory: directory{}, Now: clock}); err != nil {
		t.Fatal(err)
	}
	if f.w, err = New(Config{Store: db, Inventory: inv, Engine: f.engine, Directory: directory{}, Now: clock, Hygiene: &f.gauges}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) runs(t *testing.T) []playbooks.Run {
	t.Helper()
	runs, err := f.engine.List(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func TestFirstPollLearnsSilentlyThenNewDeviceIsAsked(t *testing.T) {
	f := newFixture(t)
	if err := f.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if runs := f.runs(t); len(runs) != 0 {
		t.Fatalf("the first poll started %d runs; it must learn silently", len(runs))
	}
	if snap := f.w.Snapshot(); len(snap.People) != 5 {
		t.Errorf("snapshot has %d people, want the demo's 5", len(snap.People))
	}
	if f.gauges.stale != 1 || f.gauges.unmanaged != 2 {
		t.Errorf("hygiene gauges = %+v, want the demo's 1 stale session and 2 unmanaged devices", f.gauges)
	}
	// Nothing new: nothing asked.
	if err := f.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if runs := f.runs(t); len(runs) != 0 {
		t.Fatalf("a poll with no new device started %d runs", len(runs))
	}
	// bob's Chrome updates: same device.
	f.now = f.now.Add(time.Hour)
	if err := f.demo.AddSession(t.Context(), demo.BobEmail, sessions.Session{ID: "bob-edge-update", Kind: sessions.KindSession, Active: true,
		UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36 Edg/127.0.0.0",
		IP:        "192.0.2.11", Location: "Berlin, DE", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if runs := f.runs(t); len(runs) != 0 {
		t.Fatalf("a browser update was taken for a new device (%d runs)", len(runs))
	}
	// A new device: asked once, however many polls see it.
	if err := f.demo.AddSession(t.Context(), demo.BobEmail, sessions.Session{ID: "bob-new-mac", Kind: sessions.KindSession, Active: true,
		UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		IP:        "198.51.100.23", Location: "Lagos, NG", Country: "NG"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.w.Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	runs := f.runs(t)
	if len(runs) != 1 {
		t.Fatalf("%d runs for one new device, want 1", len(runs))
	}
	r := runs[0]
	if r.Playbook != playbooks.PlaybookNewDevice || r.Subject.SlackID != "U0BOB" || r.Evidence == nil ||
		r.Evidence.IP != "198.51.100.23" || !strings.Contains(r.Evidence.Device, "Safari") {
		t.Errorf("run = %+v, evidence %+v", r, r.Evidence)
	}
	if len(r.Targets) != 1 || r.Targets[0].SessionID != "bob-new-mac" {
		t.Errorf("targets = %+v", r.Targets)
	}
}

func TestRiskyChangeAfterNewDeviceMarksRun(t *testing.T) {
	f := newFixture(t)
	if err := f.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	login := sessions.LoginEvent{ID: "e1", Provider: "demo", Type: sessions.EventLogin, Email: demo.BobEmail, SessionID: "s-new",
		Time: f.now, IP: "198.51.100.9", UserAgent: "curl/8.0", Country: "NG"}
	if err := f.w.HandleEvent(t.Context(), login); err != nil {
		t.Fatal(err)
	}
	// A redelivered event changes nothing.
	if err := f.w.HandleEvent(t.Context(), login); err != nil {
		t.Fatal(err)
	}
	if runs := f.runs(t); len(runs) != 1 {
		t.Fatalf("%d runs after one login delivered twice, want 1", len(runs))
	}
	f.now = f.now.Add(20 * time.Minute)
	if err := f.w.HandleEvent(t.Context(), sessions.LoginEvent{ID: "e2", Provider: "demo", Type: sessions.EventMFAAdded, Email: demo.BobEmail, Time: f.now}); err != nil {
		t.Fatal(err)
	}
	runs := f.runs(t)
	if runs[0].Risk != playbooks.RiskHigh || !strings.Contains(runs[0].RiskWhy, "MFA factor") {
		t.Errorf("run risk = %q (%q), want high because of the MFA factor", runs[0].Risk, runs[0].RiskWhy)
	}
	// A risky change long after a device is not tied to it.
	f2 := newFixture(t)
	if err := f2.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	login.ID = "e3"
	login.Time = f2.now
	if err := f2.w.HandleEvent(t.Context(), login); err != nil {
		t.Fatal(err)
	}
	f2.now = f2.now.Add(3 * time.Hour)
	if err := f2.w.HandleEvent(t.Context(), sessions.LoginEvent{ID: "e4", Provider: "demo", Type: sessions.EventPasswordChanged, Email: demo.BobEmail, Time: f2.now}); err != nil {
		t.Fatal(err)
	}
	if runs := f2.runs(t); runs[0].Risk != "" {
		t.Errorf("a password change 3 h later marked the run %q", runs[0].Risk)
	}
}

func TestAnswerUpdatesTheDevice(t *testing.T) {
	f := newFixture(t)
	if err := f.w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	ev := sessions.LoginEvent{ID: "n1", Provider: "demo", Type: sessions.EventLogin, Email: demo.BobEmail, SessionID: "s1",
		Time: f.now, IP: "198.51.100.9", UserAgent: "curl/8.0", Country: "NG"}
	if err := f.w.HandleEvent(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	run := f.runs(t)[0]
	if err := f.w.Answered(t.Context(), run.ID, "U0BOB", false); err != nil {
		t.Fatal(err)
	}
	// Denied: the same device seen again is asked about again.
	ev.ID, ev.SessionID = "n2", "s2"
	if err := f.w.HandleEvent(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if runs := f.runs(t); len(runs) != 2 {
		t.Fatalf("%d runs; a device the person denied must be asked about again", len(runs))
	}
	recs, err := f.db.AuditBySubject(t.Context(), demo.BobEmail, 0)
	if err != nil {
		t.Fatal(err)
	}
	var denied bool
	for _, r := range recs {
		if r.Action == "device.deny" && r.Actor == "U0BOB" {
			denied = true
		}
	}
	if !denied {
		t.Errorf("the answer was not audited")
	}
}
