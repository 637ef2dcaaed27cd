package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/internal/slackfake"
	"github.com/warden-sec/warden/playground"
	"github.com/warden-sec/warden/sessions"
)

// defaultPlaygroundAddr is where `warden playground` serves its page.
const defaultPlaygroundAddr = "127.0.0.1:8088"

const playgroundUsage = `usage: warden playground [--addr HOST:PORT]

Runs Warden, an in-process Slack and the demo identity provider in one
process, and serves a web page to try them: http://127.0.0.1:8088/ unless
--addr or WARDEN_PLAYGROUND_ADDR says otherwise. The data file is a
temporary one unless WARDEN_DATA is set. Each step of "Play an incident"
waits WARDEN_PLAYGROUND_STEP_TIMEOUT (default 15s; the "was this you?"
step a poll interval more) before it fails.
`

// playgroundEnv is the environment serve runs with in the playground:
// Slack is the in-process one, the provider is the demo, the responders
// and the security channel are the playground's. WARDEN_DATA,
// WARDEN_PLAYBOOKS, WARDEN_POLL_INTERVAL and the log settings may come
// from the real environment.
func playgroundEnv(env envconfig.Lookuper, apiURL, data, httpAddr, webhookSecret string) envconfig.Lookuper {
	m := map[string]string{
		"WARDEN_POLL_INTERVAL": "1m", // the smallest serve accepts
		"WARDEN_LOG_FORMAT":    "text",
		"WARDEN_LOG_LEVEL":     "warn",
	}
	for _, k := range []string{"WARDEN_PLAYBOOKS", "WARDEN_POLL_INTERVAL", "WARDEN_STALE_AFTER", "WARDEN_LOG_FORMAT", "WARDEN_LOG_LEVEL"} {
		if v, ok := env.Lookup(k); ok && v != "" {
			m[k] = v
		}
	}
	for k, v := range map[string]string{
		"SLACK_BOT_TOKEN":         slackfake.BotToken,
		"SLACK_APP_TOKEN":         slackfake.AppToken,
		"SLACK_API_URL":           apiURL,
		"WARDEN_DATA":             data,
		"WARDEN_HTTP_ADDR":        httpAddr,
		"WARDEN_WEBHOOK_SECRET":   webhookSecret,
		"WARDEN_PROVIDERS":        "demo",
		"WARDEN_RESPONDERS":       playground.ResponderGroup,
		"WARDEN_SECURITY_CHANNEL": playground.DefaultSecurityChannel,
	} {
		m[k] = v
	}
	return envconfig.MapLookuper(m)
}

// playgroundConfig reads the scenario's deadlines: every step waits
// WARDEN_PLAYGROUND_STEP_TIMEOUT (default 15s) for what it expects, and the
// "was this you?" step one poll interval more, unless the timeout is set.
func playgroundConfig(env envconfig.Lookuper) (playground.Config, error) {
	var cfg playground.Config
	step, poll := 15*time.Second, time.Minute
	if v, ok := env.Lookup("WARDEN_POLL_INTERVAL"); ok && v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			poll = d
		}
	}
	cfg.StepTimeout, cfg.NewDeviceTimeout = step, poll+step
	if v, ok := env.Lookup("WARDEN_PLAYGROUND_STEP_TIMEOUT"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, &configError{"WARDEN_PLAYGROUND_STEP_TIMEOUT", "must be a positive duration such as 15s"}
		}
		cfg.StepTimeout, cfg.NewDeviceTimeout = d, d
	}
	return cfg, nil
}

// playgroundCmd runs `warden playground` until ctx ends.
func playgroundCmd(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("playground", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, playgroundUsage) }
	addr := fs.String("addr", "", "listen address (default $WARDEN_PLAYGROUND_ADDR or "+defaultPlaygroundAddr+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, playgroundUsage)
		return exitUsage
	}
	if *addr == "" {
		*addr = defaultPlaygroundAddr
		if v, ok := env.Lookup("WARDEN_PLAYGROUND_ADDR"); ok && v != "" {
			*addr = v
		}
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "warden: configuration: WARDEN_PLAYGROUND_ADDR (or --addr): must be host:port\n")
		return exitConfig
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(stderr, "warden: playground: listening on %s, which is not loopback: anyone who can reach it can act as any demo person\n", host)
	}

	data, _ := env.Lookup("WARDEN_DATA")
	keep := data != ""
	if !keep {
		dir, err := os.MkdirTemp("", "warden-playground-")
		if err != nil {
			fmt.Fprintf(stderr, "warden: playground: temporary folder: %v\n", err)
			return exitFailure
		}
		defer os.RemoveAll(dir)
		data = filepath.Join(dir, "warden.db")
	}

	pcfg, err := playgroundConfig(env)
	if err != nil {
		return configFail(stderr, err)
	}
	pcfg.Logger = newLogger(stderr, "text", "warn")
	// serve's own HTTP server (health, login webhooks) gets a free loopback
	// port, so the scenario can send it login events as a provider would.
	httpAddr, err := freeLoopbackAddr()
	if err != nil {
		fmt.Fprintf(stderr, "warden: playground: %v\n", err)
		return exitFailure
	}
	webhookSecret := rand.Text()
	pcfg.WebhookURL, pcfg.WebhookSecret = "http://"+httpAddr+"/webhooks/events", webhookSecret
	pg, err := playground.New(pcfg)
	if err != nil {
		fmt.Fprintf(stderr, "warden: playground: %v\n", err)
		return exitFailure
	}
	defer pg.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "warden: playground: listen on %s: %v\n", *addr, err)
		return exitFailure
	}
	srv := &http.Server{Handler: pg.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// serve hands over the providers it built, and the scenario drives the
	// demo one: the same provider, on the same data file.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	onProviders := func(ps []sessions.Provider) {
		for _, p := range ps {
			if inv, ok := p.(playground.Inventory); ok && p.Name() == "demo" {
				pg.SetInventory(inv)
			}
		}
	}
	code := make(chan int, 1)
	go func() {
		code <- serveWith(runCtx, playgroundEnv(env, pg.Slack().APIURL(), data, httpAddr, webhookSecret), stderr,
			serveOptions{onProviders: onProviders})
	}()

	fmt.Fprintf(stdout, "Warden playground: %s\n", pageURL(ln.Addr()))
	if keep {
		fmt.Fprintf(stdout, "data file: %s\n", data)
	}

	var exit int
	select {
	case exit = <-code:
		// serve returns on a signal, or by itself when it cannot run
		// (configuration, data file in use…), having said why.
		if exit == exitOK && ctx.Err() == nil {
			exit = exitFailure
		}
	case err := <-served:
		fmt.Fprintf(stderr, "warden: playground: http: %v\n", err)
		stop()
		<-code
		exit = exitFailure
	}
	pg.Close() // ends the event streams, so Shutdown need not wait for them
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return exit
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port free right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}

// pageURL is the address to open: a wildcard listen address is shown as
// 127.0.0.1.
func pageURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/"
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port)) + "/"
}
