package sessions

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIsStale(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cases := []struct {
		name  string
		s     Session
		after time.Duration
		want  bool
	}{
		{"active yesterday", Session{Kind: KindSession, LastActive: now.Add(-day)}, 0, false},
		{"idle 45 days, default 30", Session{Kind: KindSession, LastActive: now.Add(-45 * day)}, 0, true},
		{"idle exactly 30 days", Session{Kind: KindSession, LastActive: now.Add(-30 * day)}, 0, true},
		{"idle 29 days", Session{Kind: KindSession, LastActive: now.Add(-29 * day)}, 0, false},
		{"recent activity beats old creation", Session{Kind: KindSession, Created: now.Add(-90 * day), LastActive: now.Add(-time.Hour)}, 0, false},
		{"no LastActive: Created counts", Session{Kind: KindToken, Created: now.Add(-60 * day)}, 0, true},
		{"device", Session{Kind: KindDevice, LastActive: now.Add(-31 * day)}, 0, true},
		{"custom threshold", Session{Kind: KindSession, LastActive: now.Add(-8 * day)}, 7 * day, true},
		{"custom threshold not reached", Session{Kind: KindSession, LastActive: now.Add(-6 * day)}, 7 * day, false},
		{"sign-in events are never stale", Session{Kind: KindSignIn, LastActive: now.Add(-90 * day)}, 0, false},
		{"no known time", Session{Kind: KindSession}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsStale(tc.s, now, tc.after); got != tc.want {
				t.Errorf("IsStale(%+v, after %v) = %v, want %v", tc.s, tc.after, got, tc.want)
			}
		})
	}
}

func TestIsUnmanaged(t *testing.T) {
	for m, want := range map[Managed]bool{ManagedNo: true, ManagedYes: false, ManagedUnknown: false} {
		if got := IsUnmanaged(Session{Managed: m}); got != want {
			t.Errorf("IsUnmanaged(Managed %q) = %v, want %v", m, got, want)
		}
	}
}

func TestSortByActivity(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ss := []Session{
		{ID: "no-time-1"},
		{ID: "old", LastActive: t0.Add(-48 * time.Hour)},
		{ID: "created-only", Created: t0.Add(-time.Hour)},
		{ID: "newest", Created: t0.Add(-72 * time.Hour), LastActive: t0},
		{ID: "tie-a", LastActive: t0.Add(-2 * time.Hour)},
		{ID: "no-time-2"},
		{ID: "tie-b", LastActive: t0.Add(-2 * time.Hour)},
	}
	SortByActivity(ss)
	var got []string
	for _, s := range ss {
		got = append(got, s.ID)
	}
	want := []string{"newest", "created-only", "tie-a", "tie-b", "old", "no-time-1", "no-time-2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SortByActivity order (-want +got):\n%s", diff)
	}
}
