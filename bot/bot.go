// Package bot is Warden's Slack transport and the only package that imports
// slack-go. It keeps a Socket Mode connection, acks every envelope at once,
// hands neutral requests to a bounded worker pool that calls the Handler,
// renders the neutral replies to Block Kit within Slack's limits, and paces
// what it posts per channel.
package bot

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/warden-sec/warden/commands"
)

// ErrFatal is wrapped by the error Run returns when Slack refuses Warden for
// good (invalid_auth, token_revoked, account_inactive, not_authed, or
// link_disabled): reconnecting cannot help, a person has to act.
var ErrFatal = errors.New("slack connection refused for good")

// Handler is what the bot needs from commands (commands.Service implements
// it). Each method gets a context with a deadline and returns what to show.
type Handler interface {
	Command(ctx context.Context, r commands.Request) commands.Reply
	Action(ctx context.Context, a commands.Action) commands.Reply
	Submit(ctx context.Context, s commands.Submission) commands.SubmitResult
}

// Timeouts for the work each kind of interaction does.
const (
	commandTimeout = 2 * time.Minute         // Handler.Command and its reply
	actionTimeout  = 2 * time.Minute         // Handler.Action and its reply
	submitBudget   = 1500 * time.Millisecond // receipt → Handler.Submit done; the ack must beat Slack's 3 s
	noticeTimeout  = 10 * time.Second        // a busy or shutting-down notice
	maxGrace       = 8 * time.Second
)

// Config configures an App. The zero value of every field but the tokens is
// usable.
type Config struct {
	BotToken string // xoxb-…; never logged
	AppToken string // xapp-… (Socket Mode); never logged

	APIURL      string        // Web API base ending in "/"; default https://slack.com/api/
	Workers     int           // goroutines calling the Handler; default 8
	Queue       int           // requests waiting for a worker; default 256
	AckTimeout  time.Duration // longest wait to queue an ack; default 2s
	ChannelRate float64       // chat.postMessage/chat.update per channel per second; default 1 (burst 3)
	HTTPClient  *http.Client  // optional
	Logger      *slog.Logger  // default: discard
	Metrics     *Metrics      // nil: no metrics

	PingInterval  time.Duration // redial after this long without a PING from Slack; default 30s
	ShutdownGrace time.Duration // in-flight work allowed to finish after Run's ctx ends; default and max 8s
}

func (c *Config) validate() error {
	if c.BotToken == "" {
		return errors.New("bot token is required")
	}
	if !strings.HasPrefix(c.BotToken, "xoxb-") {
		return errors.New("bot token must start with xoxb-")
	}
	if c.AppToken == "" {
		return errors.New("app-level token is required")
	}
	if !strings.HasPrefix(c.AppToken, "xapp-") {
		return errors.New("app-level token must start with xapp-")
	}
	if c.APIURL == "" {
		c.APIURL = slack.APIURL
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("api url must be an absolute http(s) url")
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		return errors.New(`api url must end in "/"`)
	}
	if c.Workers < 0 || c.Queue < 0 || c.AckTimeout < 0 || c.ChannelRate < 0 || c.PingInterval < 0 || c.ShutdownGrace < 0 {
		return errors.New("workers, queue, timeouts and rate must not be negative")
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.Queue == 0 {
		c.Queue = 256
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 2 * time.Second
	}
	if c.ChannelRate == 0 {
		c.ChannelRate = 1
	}
	if c.PingInterval == 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.ShutdownGrace == 0 || c.ShutdownGrace > maxGrace {
		c.ShutdownGrace = maxGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 2 * c.Workers
		c.HTTPClient = &http.Client{Transport: t, Timeout: 30 * time.Second}
	}
	return nil
}

// App is the Slack transport. Create it with New, then call Run once.
type App struct {
	cfg     Config
	log     *slog.Logger
	h       Handler
	metrics *Metrics
	api     *slack.Client
	sm      *socketmode.Client
	link    *linkWatch

	pacer   *pacer
	emails  *ttlCache[string]
	byEmail *ttlCache[string]
	groups  *ttlCache[[]string]
	dms     *ttlCache[string]

	connected atomic.Bool
	started   atomic.Bool
}

// New checks cfg and builds an App. It does not connect: Run does.
func New(cfg Config, h Handler) (*App, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("bot config: %w", err)
	}
	if h == nil {
		return nil, errors.New("bot config: handler is required")
	}
	a := &App{
		cfg:     cfg,
		log:     cfg.Logger,
		h:       h,
		metrics: cfg.Metrics,
		link:    newLinkWatch(cfg.Logger),
		pacer:   newPacer(cfg.ChannelRate, channelBurst),
		emails:  newTTLCache[string](directoryTTL, directorySize),
		byEmail: newTTLCache[string](directoryTTL, directorySize),
		groups:  newTTLCache[[]string](directoryTTL, directorySize),
		dms:     newTTLCache[string](directoryTTL, directorySize),
	}
	a.api = slack.New(cfg.BotToken,
		slack.OptionAppLevelToken(cfg.AppToken),
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionHTTPClient(cfg.HTTPClient),
		slack.OptionLog(discardLog{}),
	)
	a.sm = a.socketClient(proxied(), nil)
	return a, nil
}

// socketClient builds the Socket Mode client. Normally it dials through
// socketDialer, whose sniffer spots link_disabled; behind an HTTPS proxy it
// keeps slack-go's dialer and turns on debug output for linkWatch instead
// (slower: see sniff.go).
func (a *App) socketClient(viaProxy bool, tlsConfig *tls.Config) *socketmode.Client {
	opts := []socketmode.Option{
		socketmode.OptionLog(a.link),
		socketmode.OptionPingInterval(a.cfg.PingInterval),
	}
	if viaProxy {
		a.log.Info("slack: HTTPS proxy configured; watching slack-go's debug log for link_disabled")
		opts = append(opts, socketmode.OptionDebug(true))
	} else {
		opts = append(opts, socketmode.OptionDialer(socketDialer(tlsConfig, a.link.report)))
	}
	return socketmode.New(a.api, opts...)
}

// proxied reports whether the environment routes Slack's socket host through
// an HTTPS proxy.
func proxied() bool {
	u, err := http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: "https", Host: "wss-primary.slack.com"}})
	return err == nil && u != nil
}

// Connected reports whether the Socket Mode connection is up (for /readyz).
func (a *App) Connected() bool { return a.connected.Load() }

type discardLog struct{}

func (discardLog) Output(int, string) error { return nil }
