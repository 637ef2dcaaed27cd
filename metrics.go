package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-sec/warden/bot"
	"github.com/warden-sec/warden/commands"
	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/httpclient"
	"github.com/warden-sec/warden/storage"
)

// telemetry is serve's one metrics registry and the metrics of each package
// that records some. Nothing is registered globally.
type telemetry struct {
	reg       *prometheus.Registry
	bot       *bot.Metrics
	commands  *commands.Metrics
	playbooks *playbooks.Metrics
	providers *sessions.Metrics
	http      *httpclient.Metrics
}

// newTelemetry builds the registry with the Go runtime and process
// collectors and every package's metrics.
func newTelemetry() (*telemetry, error) {
	t := &telemetry{reg: prometheus.NewRegistry()}
	if err := t.reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := t.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	var err error
	if t.bot, err = bot.NewMetrics(t.reg); err != nil {
		return nil, err
	}
	if t.commands, err = commands.NewMetrics(t.reg); err != nil {
		return nil, err
	}
	if t.playbooks, err = playbooks.NewMetrics(t.reg); err != nil {
		return nil, err
	}
	if t.providers, err = sessions.NewMetrics(t.reg); err != nil {
		return nil, err
	}
	if t.http, err = httpclient.NewMetrics(t.reg); err != nil {
		return nil, err
	}
	return t, nil
}

// providerHTTP is the http.Client connectors get (Config.HTTP): it carries
// the HTTP layer's metrics into every httpclient.Client built on it.
func (t *telemetry) providerHTTP() *http.Client { return t.http.HTTPClient(nil) }

// instrument wraps every provider so its calls are counted and timed.
func (t *telemetry) instrument(ps []sessions.Provider) []sessions.Provider {
	out := make([]sessions.Provider, len(ps))
	for i, p := range ps {
		out[i] = sessions.Instrument(p, t.providers)
	}
	return out
}

// handler serves the registry in Prometheus' text (or negotiated) format.
func (t *telemetry) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{
		ErrorLog:          slogPrinter{log},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          t.reg, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
	})
}

// slogPrinter adapts a slog.Logger to promhttp's Println logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }

// readyTimeout bounds the data-file check of one /readyz.
const readyTimeout = time.Second

// readyKey is a state key that never exists: reading it proves the data file
// is open and readable without touching real state.
const readyKey = "readyz-probe"

// readyHandler answers 200 when Slack is connected and the data file is
// open and readable, else 503 with the first reason.
func readyHandler(slack interface{ Connected() bool }, data interface {
	Get(ctx context.Context, b storage.Bucket, key string) (storage.Item, error)
}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slack.Connected() {
			http.Error(w, "slack not connected", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if _, err := data.Get(ctx, storage.Runs, readyKey); err != nil && !errors.Is(err, storage.ErrNotFound) {
			http.Error(w, "data file not readable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}
