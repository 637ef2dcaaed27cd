package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/bot"
	"github.com/warden-sec/warden/commands"
	"github.com/warden-sec/warden/intake"
	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
	"github.com/warden-sec/warden/watch"
)

// handlerRef lets the bot and the command service, which need each other,
// be built one after the other. It is filled in before the bot runs.
type handlerRef struct{ *commands.Service }

// serveCmd runs the bot until ctx ends (a signal) or Slack refuses it.
func serveCmd(ctx context.Context, env envconfig.Lookuper, stderr io.Writer) int {
	return serveWith(ctx, env, stderr, serveOptions{})
}

// serveOptions lets `warden playground` reach inside a running serve.
type serveOptions struct {
	// onProviders receives the providers serve built (unwrapped), before
	// the bot connects: the playground drives the same demo provider.
	onProviders func([]sessions.Provider)
}

func serveWith(ctx context.Context, env envconfig.Lookuper, stderr io.Writer, opts serveOptions) int {
	cfg, err := loadConfig(ctx, env)
	if err != nil {
		return configFail(stderr, err)
	}
	if err := cfg.validateServe(); err != nil {
		return configFail(stderr, err)
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	// The bot stops on a signal (ctx) or a fatal Slack error; the engine
	// must stop in both cases.
	ctx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()

	db, err := storage.Open(cfg.Data, storage.Options{Timeout: time.Second})
	if err != nil {
		log.ErrorContext(ctx, "open data file", "err", err)
		return exitFailure
	}
	defer db.Close()
	tel, err := newTelemetry() // metrics.go: one registry, served at /metrics
	if err != nil {
		log.ErrorContext(ctx, "metrics", "err", err)
		return exitFailure
	}

	providers, err := buildProviders(cfg, db, tel.providerHTTP(), log)
	if err != nil {
		return configFail(stderr, err)
	}
	if opts.onProviders != nil {
		opts.onProviders(providers)
	}
	providers = tel.instrument(providers)
	inv, err := sessions.NewInventory(sessions.InventoryConfig{Providers: providers, Timeout: cfg.ProviderTimeout, Logger: log})
	if err != nil {
		log.ErrorContext(ctx, "inventory", "err", err)
		return exitFailure
	}
	books := playbooks.Builtins()
	if cfg.Playbooks != "" {
		if books, err = playbooks.LoadFile(cfg.Playbooks); err != nil {
			fmt.Fprintf(stderr, "warden: configuration: WARDEN_PLAYBOOKS: %s\n", err)
			return exitConfig
		}
	}
	h := &handlerRef{}
	app, err := bot.New(bot.Config{
		BotToken: cfg.SlackBotToken.value(),
		AppToken: cfg.SlackAppToken.value(),
		APIURL:   cfg.SlackAPIURL,
		Logger:   log,
		Metrics:  tel.bot,
	}, h)
	if err != nil {
		return configFail(stderr, err)
	}
	engine, err := playbooks.New(playbooks.Config{
		Store:           db,
		Inventory:       inv,
		Notifier:        &commands.Notifier{Messenger: app},
		Directory:       app,
		Approvers:       cfg.Approvers,
		SecurityChannel: cfg.SecurityChannel,
		Playbooks:       books,
		Logger:          log,
		Metrics:         tel.playbooks,
	})
	if err != nil {
		return configFail(stderr, err)
	}
	watcher, err := watch.New(watch.Config{
		Store:      db,
		Inventory:  inv,
		Engine:     engine,
		Directory:  app,
		Watch:      cfg.Watch,
		Interval:   cfg.PollInterval,
		StaleAfter: cfg.StaleAfter,
		Hygiene:    tel.commands,
		Logger:     log,
	})
	if err != nil {
		return configFail(stderr, &configError{"WARDEN_WATCH", "must be emails or user-group ids (S…)"})
	}
	svc, err := commands.New(commands.Config{
		Directory:  app,
		Audit:      db,
		Inventory:  inv,
		Engine:     engine,
		Devices:    watcher,
		Responders: cfg.Responders,
		StaleAfter: cfg.StaleAfter,
		Logger:     log,
		Metrics:    tel.commands,
	})
	if err != nil {
		return configFail(stderr, err)
	}
	h.Service = svc
	hooks, err := webhooks(cfg, watcher, log)
	if err != nil {
		return configFail(stderr, err)
	}

	srv, err := startHTTP(ctx, cfg.HTTPAddr, app, log, hooks, db, tel)
	if err != nil {
		log.ErrorContext(ctx, "listen", "addr", cfg.HTTPAddr, "err", err)
		return exitFailure
	}
	log.InfoContext(ctx, "warden started", "version", version, "providers", cfg.Providers, "http", srv.Addr)

	// The engine (resuming unfinished runs and serving their timers), the
	// new-device watcher and the weekly report run beside the bot; they stop
	// with ctx and are waited for before the data file closes.
	var background sync.WaitGroup
	background.Go(func() {
		if err := engine.Run(ctx); err != nil {
			log.ErrorContext(ctx, "playbook engine", "err", err)
		}
	})
	background.Go(func() { _ = watcher.Run(ctx) })
	if cfg.ReportChannel != "" {
		background.Go(func() { _ = svc.PostReports(ctx, app, cfg.ReportChannel, cfg.reportAt) })
	}

	runErr := app.Run(ctx)
	stopEngine()
	background.Wait()

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	switch {
	case errors.Is(runErr, bot.ErrFatal):
		log.ErrorContext(ctx, "slack refused warden; fix the tokens or re-enable Socket Mode, then restart", "err", runErr)
		return exitSlackOff
	case runErr != nil:
		log.ErrorContext(ctx, "bot stopped", "err", runErr)
		return exitFailure
	}
	log.InfoContext(ctx, "warden stopped")
	return exitOK
}

// webhooks returns the login-event endpoints that are configured, or nil.
func webhooks(cfg config, sink intake.Sink, log *slog.Logger) (*intake.Handler, error) {
	if cfg.WebhookSecret == "" && cfg.OktaHookSecret == "" && cfg.Auth0StreamToken == "" {
		return nil, nil
	}
	h, err := intake.New(intake.Config{
		Sink:          sink,
		GenericSecret: cfg.WebhookSecret.value(),
		OktaSecret:    cfg.OktaHookSecret.value(),
		Auth0Token:    cfg.Auth0StreamToken.value(),
		Logger:        log,
	})
	if err != nil {
		return nil, &configError{"WARDEN_WEBHOOK_SECRET", "webhook secrets must be at least 16 characters"}
	}
	return h, nil
}

// startHTTP serves /healthz, /readyz (Slack connected and the data file
// readable), /metrics and the webhooks.
func startHTTP(ctx context.Context, addr string, app *bot.App, log *slog.Logger, hooks *intake.Handler, db *storage.DB, tel *telemetry) (*http.Server, error) {
	mux := http.NewServeMux()
	if hooks != nil {
		hooks.Register(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /readyz", readyHandler(app, db))
	mux.Handle("GET /metrics", tel.handler(log))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.ErrorContext(ctx, "http server", "err", err)
		}
	}()
	return srv, nil
}
