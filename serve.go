package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/bot"
	"github.com/warden-sec/warden/commands"
	"github.com/warden-sec/warden/playbooks"
	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/storage"
)

// handlerRef lets the bot and the command service, which need each other,
// be built one after the other. It is filled in before the bot runs.
type handlerRef struct{ *commands.Service }

// serveCmd runs the bot until ctx ends (a signal) or Slack refuses it.
func serveCmd(ctx context.Context, env envconfig.Lookuper, stderr io.Writer) int {
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

	providers, err := buildProviders(cfg, db, log)
	if err != nil {
		return configFail(stderr, err)
	}
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
	})
	if err != nil {
		return configFail(stderr, err)
	}
	svc, err := commands.New(commands.Config{
		Directory:  app,
		Audit:      db,
		Inventory:  inv,
		Engine:     engine,
		Responders: cfg.Responders,
		StaleAfter: cfg.StaleAfter,
		Logger:     log,
	})
	if err != nil {
		return configFail(stderr, err)
	}
	h.Service = svc

	srv, err := startHTTP(ctx, cfg.HTTPAddr, app, log)
	if err != nil {
		log.ErrorContext(ctx, "listen", "addr", cfg.HTTPAddr, "err", err)
		return exitFailure
	}
	log.InfoContext(ctx, "warden started", "version", version, "providers", cfg.Providers, "http", srv.Addr)

	// The engine resumes unfinished runs and serves their timers; it stops
	// with ctx and is waited for before the data file closes.
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(ctx) }()

	runErr := app.Run(ctx)
	stopEngine()
	if err := <-engineDone; err != nil {
		log.ErrorContext(ctx, "playbook engine", "err", err)
	}

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

// startHTTP serves /healthz and /readyz.
func startHTTP(ctx context.Context, addr string, app *bot.App, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !app.Connected() {
			http.Error(w, "slack not connected", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
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
