package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/commands"
)

// secret is a string that never prints itself, so a token that slips into a
// log call or a %v shows as [redacted].
type secret string

func (s secret) String() string               { return redacted(s) }
func (s secret) GoString() string             { return redacted(s) }
func (s secret) MarshalText() ([]byte, error) { return []byte(redacted(s)), nil }
func (s secret) value() string                { return string(s) }

func redacted(s secret) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// config is every setting Warden reads from its environment. Only main reads
// the environment; packages receive their own Config structs.
type config struct {
	SlackBotToken   secret        `env:"SLACK_BOT_TOKEN"`
	SlackAppToken   secret        `env:"SLACK_APP_TOKEN"`
	SlackAPIURL     string        `env:"SLACK_API_URL, default=https://slack.com/api/"`
	Data            string        `env:"WARDEN_DATA, default=warden.db"`
	HTTPAddr        string        `env:"WARDEN_HTTP_ADDR, default=127.0.0.1:8080"`
	Responders      []string      `env:"WARDEN_RESPONDERS"`
	Approvers       []string      `env:"WARDEN_APPROVERS"`
	SecurityChannel string        `env:"WARDEN_SECURITY_CHANNEL"`
	Providers       []string      `env:"WARDEN_PROVIDERS, default=demo"`
	Playbooks       string        `env:"WARDEN_PLAYBOOKS"`
	PollInterval    time.Duration `env:"WARDEN_POLL_INTERVAL, default=5m"`
	StaleAfter      time.Duration `env:"WARDEN_STALE_AFTER, default=720h"`
	ProviderTimeout time.Duration `env:"WARDEN_PROVIDER_TIMEOUT, default=5s"`
	LogFormat       string        `env:"WARDEN_LOG_FORMAT, default=json"`
	LogLevel        string        `env:"WARDEN_LOG_LEVEL, default=info"`
	Watch           []string      `env:"WARDEN_WATCH"`
	ReportChannel   string        `env:"WARDEN_REPORT_CHANNEL"`
	ReportAt        string        `env:"WARDEN_REPORT_AT, default=mon 09:00"`
	reportAt        commands.Weekly

	WebhookSecret    secret `env:"WARDEN_WEBHOOK_SECRET"`
	OktaHookSecret   secret `env:"OKTA_EVENT_HOOK_SECRET"`
	Auth0StreamToken secret `env:"AUTH0_LOG_STREAM_TOKEN"`

	Okta struct {
		OrgURL   string `env:"OKTA_ORG_URL"`
		APIToken secret `env:"OKTA_API_TOKEN"`
	}
	Auth0 struct {
		URL          string `env:"AUTH0_URL"`
		ClientID     string `env:"AUTH0_CLIENT_ID"`
		ClientSecret secret `env:"AUTH0_CLIENT_SECRET"`
	}
	Kratos struct {
		AdminURL string `env:"KRATOS_ADMIN_URL"`
		Token    secret `env:"KRATOS_ADMIN_TOKEN"`
	}
	Keycloak struct {
		URL          string `env:"KEYCLOAK_URL"`
		Realm        string `env:"KEYCLOAK_REALM"`
		ClientID     string `env:"KEYCLOAK_CLIENT_ID"`
		ClientSecret secret `env:"KEYCLOAK_CLIENT_SECRET"`
	}
	SlackAdmin struct {
		Token  secret `env:"SLACK_ADMIN_TOKEN"`
		APIURL string `env:"SLACK_ADMIN_API_URL"` // default: SLACK_API_URL
	}
	Google struct {
		Credentials secret `env:"GOOGLE_CREDENTIALS"` // service-account JSON; usually GOOGLE_CREDENTIALS_FILE
		AdminEmail  string `env:"GOOGLE_ADMIN_EMAIL"`
		APIURL      string `env:"GOOGLE_API_URL"`
		TokenURL    string `env:"GOOGLE_TOKEN_URL"`
	}
	Entra struct {
		TenantID     string `env:"ENTRA_TENANT_ID"`
		ClientID     string `env:"ENTRA_CLIENT_ID"`
		ClientSecret secret `env:"ENTRA_CLIENT_SECRET"`
		GraphURL     string `env:"ENTRA_GRAPH_URL"`
		TokenURL     string `env:"ENTRA_TOKEN_URL"`
	}
}

// configError names the variable at fault. Its message never contains the
// variable's value.
type configError struct {
	Var, Problem string
}

func (e *configError) Error() string { return e.Var + ": " + e.Problem }

// fileLookuper reads NAME, or else the file named by NAME_FILE.
type fileLookuper struct {
	env envconfig.Lookuper
	err error
}

func (l *fileLookuper) Lookup(key string) (string, bool) {
	if v, ok := l.env.Lookup(key); ok {
		return v, true
	}
	path, ok := l.env.Lookup(key + "_FILE")
	if !ok || path == "" {
		return "", false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if l.err == nil {
			l.err = &configError{Var: key + "_FILE", Problem: "cannot read the file it names"}
		}
		return "", false
	}
	return strings.TrimRight(string(b), "\r\n"), true
}

// loadConfig reads the environment through lookup. serve says whether the
// Slack tokens are required.
func loadConfig(ctx context.Context, lookup envconfig.Lookuper) (config, error) {
	var c config
	fl := &fileLookuper{env: lookup}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: fl}); err != nil {
		if fl.err != nil {
			return config{}, fl.err
		}
		return config{}, envError(err)
	}
	if fl.err != nil {
		return config{}, fl.err
	}
	return c, c.validate()
}

// envError turns a go-envconfig error into one line naming the variable,
// without the value (which may be a secret).
func envError(err error) error {
	field, _, _ := strings.Cut(err.Error(), ":")
	if name := envName(reflect.TypeFor[config](), field); name != "" {
		return &configError{Var: name, Problem: "invalid value"}
	}
	return errors.New("invalid value in the environment")
}

// envName finds the variable behind a struct field name in go-envconfig's
// error messages.
func envName(t reflect.Type, field string) string {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type.Name() == "" {
			if n := envName(f.Type, field); n != "" {
				return n
			}
			continue
		}
		if f.Name == field {
			key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			return key
		}
	}
	return ""
}

var (
	slackIDRe  = regexp.MustCompile(`^[UWS][A-Z0-9]{2,20}$`)
	channelRe  = regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`)
	providerRe = map[string]bool{"demo": true, "okta": true, "google": true, "entra": true, "slack": true, "auth0": true, "kratos": true, "keycloak": true}
)

func (c *config) validate() error {
	if err := checkURL("SLACK_API_URL", c.SlackAPIURL); err != nil {
		return err
	}
	if !strings.HasSuffix(c.SlackAPIURL, "/") {
		return &configError{"SLACK_API_URL", "must end in /"}
	}
	if c.Data == "" {
		return &configError{"WARDEN_DATA", "must name a file"}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return &configError{"WARDEN_HTTP_ADDR", "must be host:port"}
	}
	for _, id := range c.Responders {
		if !slackIDRe.MatchString(id) {
			return &configError{"WARDEN_RESPONDERS", "must be Slack user ids (U…) or user-group ids (S…), comma-separated"}
		}
	}
	for _, id := range c.Approvers {
		if !slackIDRe.MatchString(id) {
			return &configError{"WARDEN_APPROVERS", "must be Slack user ids (U…) or user-group ids (S…), comma-separated"}
		}
	}
	if c.SecurityChannel != "" && !channelRe.MatchString(c.SecurityChannel) {
		return &configError{"WARDEN_SECURITY_CHANNEL", "must be a channel id (C…)"}
	}
	if len(c.Providers) == 0 {
		return &configError{"WARDEN_PROVIDERS", "must name at least one provider"}
	}
	seen := map[string]bool{}
	for i, p := range c.Providers {
		p = strings.ToLower(strings.TrimSpace(p))
		c.Providers[i] = p
		if !providerRe[p] {
			return &configError{"WARDEN_PROVIDERS", "unknown provider; choose from demo, okta, google, entra, slack, auth0, kratos, keycloak"}
		}
		if seen[p] {
			return &configError{"WARDEN_PROVIDERS", "names a provider twice"}
		}
		seen[p] = true
	}
	if c.PollInterval < time.Minute {
		return &configError{"WARDEN_POLL_INTERVAL", "must be at least 1m"}
	}
	if c.StaleAfter < time.Hour {
		return &configError{"WARDEN_STALE_AFTER", "must be at least 1h"}
	}
	if c.ProviderTimeout <= 0 || c.ProviderTimeout > time.Minute {
		return &configError{"WARDEN_PROVIDER_TIMEOUT", "must be between 1ms and 1m"}
	}
	for _, w := range c.Watch {
		if !strings.Contains(w, "@") && !strings.HasPrefix(w, "S") {
			return &configError{"WARDEN_WATCH", "must be emails or user-group ids (S…), comma-separated"}
		}
	}
	if c.ReportChannel != "" && !channelRe.MatchString(c.ReportChannel) {
		return &configError{"WARDEN_REPORT_CHANNEL", "must be a channel id (C…)"}
	}
	at, err := commands.ParseWeekly(c.ReportAt)
	if err != nil {
		return &configError{"WARDEN_REPORT_AT", err.Error()}
	}
	c.reportAt = at
	for _, v := range []struct {
		name string
		s    secret
	}{{"WARDEN_WEBHOOK_SECRET", c.WebhookSecret}, {"OKTA_EVENT_HOOK_SECRET", c.OktaHookSecret}, {"AUTH0_LOG_STREAM_TOKEN", c.Auth0StreamToken}} {
		if v.s != "" && len(v.s.value()) < 16 {
			return &configError{v.name, "must be at least 16 characters"}
		}
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return &configError{"WARDEN_LOG_FORMAT", "must be json or text"}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &configError{"WARDEN_LOG_LEVEL", "must be debug, info, warn or error"}
	}
	return nil
}

// validateServe checks what only serve needs.
func (c *config) validateServe() error {
	if c.SlackBotToken == "" {
		return &configError{"SLACK_BOT_TOKEN", "is required (a bot token, xoxb-…)"}
	}
	if !strings.HasPrefix(c.SlackBotToken.value(), "xoxb-") {
		return &configError{"SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-"}
	}
	if c.SlackAppToken == "" {
		return &configError{"SLACK_APP_TOKEN", "is required (an app-level token, xapp-…, with connections:write)"}
	}
	if !strings.HasPrefix(c.SlackAppToken.value(), "xapp-") {
		return &configError{"SLACK_APP_TOKEN", "must be an app-level token starting with xapp-"}
	}
	return nil
}

func checkURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return &configError{name, "must be an http(s) URL"}
	}
	return nil
}

func required(name, v string) error {
	if v == "" {
		return &configError{name, fmt.Sprintf("is required when %s is enabled", providerOf(name))}
	}
	return nil
}

func providerOf(name string) string {
	p, _, _ := strings.Cut(name, "_")
	return strings.ToLower(p)
}
