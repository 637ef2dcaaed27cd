package commands

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/warden-sec/warden/storage"
)

func TestWeeklyNext(t *testing.T) {
	w, err := ParseWeekly("Mon 09:00")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ now, want string }{
		{"2026-12-04T16:00:00Z", "2026-12-07T09:00:00Z"}, // Friday → next Monday
		{"2026-12-07T08:59:00Z", "2026-12-07T09:00:00Z"}, // Monday before the time
		{"2026-12-07T09:00:00Z", "2026-12-14T09:00:00Z"}, // exactly then → a week later
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		if got := w.Next(now).Format(time.RFC3339); got != tc.want {
			t.Errorf("Next(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
	for _, bad := range []string{"", "monday 9", "mon 25:00", "9:00 mon", "xyz 09:00"} {
		if _, err := ParseWeekly(bad); err == nil {
			t.Errorf("ParseWeekly(%q) accepted", bad)
		}
	}
}

// posts records what would be posted to Slack.
type posts struct {
	mu  sync.Mutex
	got []Reply
	at  []time.Time
}

func (p *posts) Post(_ context.Context, _ string, r Reply) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, r)
	p.at = append(p.at, time.Now())
	return "1", nil
}
func (p *posts) Update(context.Context, string, string, Reply) error { return nil }
func (p *posts) DM(context.Context, string, Reply) (string, string, error) {
	return "", "", nil
}
func (p *posts) Find(context.Context, string, Meta) (string, string, error) { return "", "", nil }

func TestReportIsPostedWeekly(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "warden.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	synctest.Test(t, func(t *testing.T) {
		svc, err := New(Config{Directory: metricsDir{}, Audit: db})
		if err != nil {
			t.Fatal(err)
		}
		w, _ := ParseWeekly("mon 09:00")
		p := &posts{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- svc.PostReports(ctx, p, "C0REPORTS", w) }()
		first := w.Next(time.Now())
		time.Sleep(time.Until(first.Add(14 * 24 * time.Hour)))
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(p.got) != 3 {
			t.Fatalf("%d reports posted over two weeks and a bit, want 3", len(p.got))
		}
		for i, at := range p.at {
			if want := first.Add(time.Duration(i) * 7 * 24 * time.Hour); !at.Equal(want) {
				t.Errorf("report %d posted at %s, want %s", i, at, want)
			}
			if !strings.Contains(p.got[i].Text, "Session hygiene") || !p.got[i].InChannel {
				t.Errorf("report %d = %q (in channel %v)", i, p.got[i].Text, p.got[i].InChannel)
			}
		}
	})
}
