package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
	"github.com/warden-sec/warden/watch"
)

// Devices is what commands needs from new-device detection (watch.Watcher).
type Devices interface {
	// Answered records a person's answer to "was this you?".
	Answered(ctx context.Context, runID, actor string, yes bool) error
	// Snapshot is what the last poll saw.
	Snapshot() watch.Snapshot
}

// reportWindow is how far back the report counts revocations.
const reportWindow = 7 * 24 * time.Hour

// listTop bounds each list in the report.
const listTop = 8

// report shows session hygiene to a responder.
func (s *Service) report(ctx context.Context, actor string) Reply {
	if r, ok := s.requireResponder(ctx, actor, VerbReport, ""); !ok {
		return r
	}
	r, err := s.Report(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "report", "err", err)
		return errorReply(kindInternal)
	}
	return r
}

// Report builds the hygiene report: stale sessions, unmanaged devices,
// people signed in from more than one country, open runs and approvals,
// revocations in the last 7 days and the median time from report to
// revocation.
func (s *Service) Report(ctx context.Context) (Reply, error) {
	now := s.cfg.Now()
	var snap watch.Snapshot
	if s.cfg.Devices != nil {
		snap = s.cfg.Devices.Snapshot()
	}
	type item struct {
		who string
		ss  sessions.Session
	}
	var stale, unmanaged []item
	var multi []string
	emails := make([]string, 0, len(snap.People))
	for e := range snap.People {
		emails = append(emails, e)
	}
	sort.Strings(emails)
	for _, e := range emails {
		countries := map[string]bool{}
		for _, ss := range snap.People[e] {
			if sessions.IsStale(ss, now, s.cfg.StaleAfter) {
				stale = append(stale, item{e, ss})
			}
			if sessions.IsUnmanaged(ss) {
				unmanaged = append(unmanaged, item{e, ss})
			}
			if c := strings.ToUpper(ss.Country); c != "" && !sessions.IsStale(ss, now, s.cfg.StaleAfter) {
				countries[c] = true
			}
		}
		if len(countries) > 1 {
			cs := make([]string, 0, len(countries))
			for c := range countries {
				cs = append(cs, c)
			}
			sort.Strings(cs)
			multi = append(multi, e+" ("+strings.Join(cs, ", ")+")")
		}
	}

	s.cfg.Metrics.SetHygiene(len(stale), len(unmanaged))

	var open []playbooks.Run
	if s.cfg.Engine != nil {
		var err error
		if open, err = s.cfg.Engine.List(ctx, true); err != nil {
			return Reply{}, fmt.Errorf("open runs: %w", err)
		}
	}
	approvals := 0
	for _, run := range open {
		for _, st := range run.Steps {
			if st.Status == playbooks.StepAwaitingApproval {
				approvals++
			}
		}
	}
	recs, err := s.cfg.Audit.AuditSince(ctx, now.Add(-reportWindow), 0)
	if err != nil {
		return Reply{}, fmt.Errorf("audit since: %w", err)
	}
	revocations, median := revocationStats(recs)

	r := Reply{Text: fmt.Sprintf("Session hygiene: %d stale, %d unmanaged, %d open runs, %d revocations in 7 days", len(stale), len(unmanaged), len(open), revocations)}
	asOf := "no poll has run yet"
	if !snap.At.IsZero() {
		asOf = "as of " + stamp(snap.At) + fmt.Sprintf(", %d people watched", len(snap.People))
	}
	r.Blocks = append(r.Blocks,
		Block{Kind: Section, Text: T(B("Session hygiene"), P(" — "+asOf))},
		Block{Kind: Section, Fields: []Text{
			T(B("Stale sessions"), P(fmt.Sprintf("\n%d (no activity for %d days)", len(stale), int(s.cfg.StaleAfter.Hours()/24)))),
			T(B("Unmanaged devices"), P(fmt.Sprintf("\n%d", len(unmanaged)))),
			T(B("Signed in from more than one country"), P(fmt.Sprintf("\n%d people", len(multi)))),
			T(B("Open runs"), P(fmt.Sprintf("\n%d, %d waiting for approval", len(open), approvals))),
			T(B("Revocations, last 7 days"), P(fmt.Sprintf("\n%d", revocations))),
			T(B("Median time from report to revocation"), P("\n"+median)),
		}},
	)
	sessionLine := func(it item) Text {
		return T(P(it.who+" — "), C(it.ss.Provider+":"+it.ss.ID), P(" "+deviceLabel(it.ss)+", last active "+ago(now, sessions.Activity(it.ss))))
	}
	r.Blocks = appendList(r.Blocks, "Stale sessions", stale, sessionLine)
	r.Blocks = appendList(r.Blocks, "Unmanaged devices", unmanaged, sessionLine)
	r.Blocks = appendList(r.Blocks, "More than one country", multi, func(m string) Text { return T(P(m)) })
	r.Blocks = appendList(r.Blocks, "Open runs", open, func(run playbooks.Run) Text {
		return T(C(run.ID), P(" "+run.Playbook+" for "), subjectOf(run), P(" — "+string(run.State)+", started "+ago(now, run.Created)))
	})
	if len(snap.Errors) > 0 {
		names := make([]string, 0, len(snap.Errors))
		for p := range snap.Errors {
			names = append(names, displayName(p))
		}
		sort.Strings(names)
		r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("Could not ask at the last poll: " + strings.Join(names, ", ")))})
	}
	return r, nil
}

// appendList adds a titled bulleted section of at most listTop items, ending
// with "…and N more"; nothing when items is empty.
func appendList[E any](blocks []Block, title string, items []E, line func(E) Text) []Block {
	if len(items) == 0 {
		return blocks
	}
	t := T(B(title))
	for i, it := range items {
		if i == listTop {
			t = append(t, P(fmt.Sprintf("\n…and %d more", len(items)-i)))
			break
		}
		t = append(append(t, P("\n• ")), line(it)...)
	}
	return append(blocks, Block{Kind: Section, Text: t})
}

// revocationStats counts sessions revoked in recs and the median time from
// the report (the person's "not me", else the run's start) to the first
// revocation of the same run.
func revocationStats(recs []storage.Record) (int, string) {
	reported := map[string]time.Time{}
	first := map[string]time.Time{}
	n := 0
	for _, rec := range recs {
		switch {
		case rec.Action == "run.start", rec.Action == "confirm.no":
			if rec.RunID != "" && (rec.Action == "confirm.no" || reported[rec.RunID].IsZero()) {
				reported[rec.RunID] = rec.Time
			}
		case rec.Action == "session.revoke" && rec.Outcome == string(playbooks.ResultRevoked):
			n++
			if _, ok := first[rec.RunID]; !ok && rec.RunID != "" {
				first[rec.RunID] = rec.Time
			}
		}
	}
	var ds []time.Duration
	for id, end := range first {
		if start, ok := reported[id]; ok && !end.Before(start) {
			ds = append(ds, end.Sub(start))
		}
	}
	if len(ds) == 0 {
		return n, "—"
	}
	slices.Sort(ds)
	m := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		m = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return n, humanDuration(m)
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "under a second"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	default:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
}

// Weekly is a time in the week, in UTC: when the report is posted.
type Weekly struct {
	Day          time.Weekday
	Hour, Minute int
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// ParseWeekly reads "mon 09:00" (UTC).
func ParseWeekly(s string) (Weekly, error) {
	day, hm, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), " ")
	wd, known := weekdays[day]
	if !ok || !known {
		return Weekly{}, errors.New("want a weekday and a UTC time, like \"mon 09:00\"")
	}
	t, err := time.Parse("15:04", strings.TrimSpace(hm))
	if err != nil {
		return Weekly{}, errors.New("want a weekday and a UTC time, like \"mon 09:00\"")
	}
	return Weekly{Day: wd, Hour: t.Hour(), Minute: t.Minute()}, nil
}

// Next returns the first time after t that matches w.
func (w Weekly) Next(t time.Time) time.Time {
	t = t.UTC()
	n := time.Date(t.Year(), t.Month(), t.Day(), w.Hour, w.Minute, 0, 0, time.UTC)
	n = n.AddDate(0, 0, (int(w.Day)-int(n.Weekday())+7)%7)
	if !n.After(t) {
		n = n.AddDate(0, 0, 7)
	}
	return n
}

// PostReports posts the report to channel at every w until ctx ends.
func (s *Service) PostReports(ctx context.Context, m Messenger, channel string, w Weekly) error {
	for {
		now := s.cfg.Now()
		timer := time.NewTimer(w.Next(now).Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		r, err := s.Report(ctx)
		if err != nil {
			s.log.ErrorContext(ctx, "weekly report", "err", err)
			continue
		}
		r.InChannel = true
		if _, err := m.Post(ctx, channel, r); err != nil {
			s.log.ErrorContext(ctx, "post weekly report", "err", err)
		}
	}
}
