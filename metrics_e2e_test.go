package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sec/warden/storage"
)

// httpGet fetches path from warden's HTTP server.
func (w *warden) httpGet(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.httpAddr(t)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// scrapeMetrics parses Prometheus' text format into series → value, each series
// written name{a="x",b="y"} with its labels sorted.
func scrapeMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// metricSeries writes name{labels} the way scrapeMetrics keys it.
func metricSeries(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + `="` + labels[k] + `"`
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// A person runs /sessions help and /sessions mine; /metrics then shows the
// commands by verb and outcome, the slash-command envelopes and their acks,
// the demo provider's calls and the Go runtime, and /readyz and /healthz
// answer 200 while Warden is connected.
func TestMetricsEndpoint(t *testing.T) {
	w := startWarden(t, nil)
	w.command(t, bob.ID, "help")
	w.command(t, bob.ID, "mine")

	code, body := w.httpGet(t, "/readyz")
	if code != http.StatusOK {
		t.Errorf("/readyz = %d %q while connected, want 200", code, body)
	}
	if code, _ := w.httpGet(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
	code, body = w.httpGet(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	got := scrapeMetrics(t, body)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{metricSeries("warden_commands_total", map[string]string{"verb": "help", "outcome": "ok"}), 1},
		{metricSeries("warden_commands_total", map[string]string{"verb": "mine", "outcome": "ok"}), 1},
		{metricSeries("warden_slack_envelopes_total", map[string]string{"type": "slash_commands"}), 2},
		{metricSeries("warden_slack_ack_duration_seconds_count", map[string]string{"type": "slash_commands"}), 2},
		{metricSeries("warden_provider_calls_total", map[string]string{"provider": "demo", "op": "find_user", "outcome": "ok"}), 1},
		{metricSeries("warden_provider_calls_total", map[string]string{"provider": "demo", "op": "list_sessions", "outcome": "ok"}), 1},
		{metricSeries("warden_slack_connected", nil), 1},
		{metricSeries("warden_playbook_pending_approvals", nil), 0},
	} {
		if v, ok := got[tc.series]; !ok || v != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.series, v, ok, tc.want)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("/metrics lacks the Go runtime collector (go_goroutines)")
	}
	for _, secret := range []string{bob.ID, bob.Email} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics mentions %q: user ids and emails must never be labels", secret)
		}
	}
}

// /readyz is 503 with a reason while Slack is not connected or the data
// file cannot be read, and 200 when both are fine.
func TestReadyzReasons(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "warden.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := storage.Open(filepath.Join(t.TempDir(), "closed.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name      string
		connected bool
		db        *storage.DB
		code      int
		body      string
	}{
		{"ready", true, db, http.StatusOK, "ready"},
		{"slack down", false, db, http.StatusServiceUnavailable, "slack not connected"},
		{"data file closed", true, closed, http.StatusServiceUnavailable, "data file not readable"},
	} {
		h := readyHandler(connectedFunc(func() bool { return tc.connected }), tc.db)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, rec.Code, rec.Body.String(), tc.code, tc.body)
		}
	}
}

type connectedFunc func() bool

func (f connectedFunc) Connected() bool { return f() }
