package commands

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-sec/warden/internal/metricstest"
	"github.com/warden-sec/warden/storage"
)

// metricsDir is a Directory that knows nobody's groups.
type metricsDir struct{}

func (metricsDir) UserEmail(context.Context, string) (string, error) {
	return "someone@example.com", nil
}
func (metricsDir) UserByEmail(context.Context, string) (string, error) { return "", errors.New("none") }
func (metricsDir) GroupMembers(context.Context, string) ([]string, error) {
	return nil, nil
}

// Every answered command is counted once under its verb and outcome:
// help is ok, gibberish a usage error, a non-responder's list refused, and
// a status Warden cannot answer an error.
func TestMetricsCountCommandsByVerbAndOutcome(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "warden.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Directory: metricsDir{}, Audit: db, Responders: []string{"U0RESP"}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"help", "help", "frobnicate now", "list <@U0BOB|bob>", "status 0b7e2c1a-run"} {
		svc.Command(t.Context(), Request{Actor: "U0EVE", Channel: "C1", Text: text})
	}
	for _, tc := range []struct {
		verb, outcome string
		want          float64
	}{
		{VerbHelp, OutcomeOK, 2},
		{verbInvalid, OutcomeUsageError, 1},
		{VerbList, OutcomeRefused, 1},
		{VerbList, OutcomeOK, 0},
		{VerbStatus, OutcomeError, 1},
	} {
		if got := metricstest.Value(t, reg, "warden_commands_total", "verb", tc.verb, "outcome", tc.outcome); got != tc.want {
			t.Errorf("commands{verb=%s,outcome=%s} = %v, want %v", tc.verb, tc.outcome, got, tc.want)
		}
	}
	for _, ls := range metricstest.Series(t, reg, "warden_commands_total") {
		for k, v := range ls {
			if v == "U0EVE" || v == "U0BOB" || k == "user" {
				t.Errorf("a user id is a label: %v", ls)
			}
		}
	}
}

func TestCommandOutcome(t *testing.T) {
	for _, tc := range []struct {
		name  string
		perr  error
		reply Reply
		want  string
	}{
		{"answer", nil, Reply{Text: "3 records across 2 providers"}, OutcomeOK},
		{"blocks only", nil, Reply{Blocks: []Block{{Kind: Divider}}}, OutcomeOK},
		{"parse error", errors.New("usage: /sessions list @user"), Reply{Text: "usage"}, OutcomeUsageError},
		{"not a responder", nil, errorReply(kindNotResponder), OutcomeRefused},
		{"not yours", nil, errorReply(kindNotYours), OutcomeRefused},
		{"no such run", nil, errorReply(kindNoSuchRun), OutcomeUsageError},
		{"internal", nil, errorReply(kindInternal), OutcomeError},
	} {
		if got := commandOutcome(tc.perr, tc.reply); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// SetHygiene sets both gauges; a nil Metrics ignores every call.
func TestSetHygiene(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetHygiene(4, 2)
	m.SetHygiene(3, 1)
	if s, u := metricstest.Value(t, reg, "warden_hygiene_stale_sessions"), metricstest.Value(t, reg, "warden_hygiene_unmanaged_devices"); s != 3 || u != 1 {
		t.Errorf("stale %v unmanaged %v, want the last report's 3 and 1", s, u)
	}
	var none *Metrics
	none.SetHygiene(1, 1)
	none.command(VerbHelp, nil, Reply{})
}
