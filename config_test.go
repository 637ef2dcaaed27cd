package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(t.Context(), envconfig.MapLookuper(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "warden.db" || c.HTTPAddr != "127.0.0.1:8080" || c.SlackAPIURL != "https://slack.com/api/" {
		t.Errorf("defaults = %q %q %q", c.Data, c.HTTPAddr, c.SlackAPIURL)
	}
	if len(c.Providers) != 1 || c.Providers[0] != "demo" {
		t.Errorf("providers default = %v, want [demo]", c.Providers)
	}
	if len(c.Responders) != 0 {
		t.Errorf("responders default = %v, want nobody", c.Responders)
	}
}

func TestConfigErrorsNameTheVariableNotTheValue(t *testing.T) {
	const tok = "xoxp-123456789-SECRETSECRET"
	tests := []struct {
		env     map[string]string
		wantVar string
	}{
		{map[string]string{"WARDEN_POLL_INTERVAL": "soon"}, "WARDEN_POLL_INTERVAL"},
		{map[string]string{"WARDEN_POLL_INTERVAL": "1s"}, "WARDEN_POLL_INTERVAL"},
		{map[string]string{"WARDEN_RESPONDERS": "U0ALICE,bob"}, "WARDEN_RESPONDERS"},
		{map[string]string{"WARDEN_PROVIDERS": "demo,okta,myspace"}, "WARDEN_PROVIDERS"},
		{map[string]string{"SLACK_API_URL": "https://slack.com/api"}, "SLACK_API_URL"},
		{map[string]string{"WARDEN_SECURITY_CHANNEL": "#security"}, "WARDEN_SECURITY_CHANNEL"},
		{map[string]string{"WARDEN_LOG_FORMAT": "xml"}, "WARDEN_LOG_FORMAT"},
		{map[string]string{"SLACK_BOT_TOKEN": tok, "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN"},
		{map[string]string{"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN"},
		{map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": tok}, "SLACK_APP_TOKEN"},
		{map[string]string{"SLACK_BOT_TOKEN_FILE": "/nonexistent/secret"}, "SLACK_BOT_TOKEN_FILE"},
		{withTokens(map[string]string{"WARDEN_PROVIDERS": "okta"}), "OKTA_ORG_URL"},
		{withTokens(map[string]string{"WARDEN_PROVIDERS": "okta", "OKTA_ORG_URL": "https://acme.okta.com"}), "OKTA_API_TOKEN"},
		{withTokens(map[string]string{"WARDEN_PROVIDERS": "kratos", "KRATOS_ADMIN_URL": "ftp://x"}), "KRATOS_ADMIN_URL"},
		{withTokens(map[string]string{"WARDEN_PROVIDERS": "demo,entra", "ENTRA_TENANT_ID": "t", "ENTRA_CLIENT_ID": "c"}), "ENTRA_CLIENT_SECRET"},
		{withTokens(map[string]string{"WARDEN_PROVIDERS": "google", "GOOGLE_CREDENTIALS": "not json " + tok, "GOOGLE_ADMIN_EMAIL": "a@example.com"}), "GOOGLE_CREDENTIALS"},
		{withTokens(map[string]string{"WARDEN_PROVIDERS": "slack", "SLACK_ADMIN_TOKEN": "xoxb-" + tok}), "SLACK_ADMIN_TOKEN"},
	}
	for _, tt := range tests {
		if _, ok := tt.env["WARDEN_DATA"]; !ok {
			tt.env["WARDEN_DATA"] = filepath.Join(t.TempDir(), "warden.db")
		}
		var stderr bytes.Buffer
		code := run(t.Context(), []string{"serve"}, envconfig.MapLookuper(tt.env), &bytes.Buffer{}, &stderr)
		if code != exitConfig {
			t.Errorf("env %v: exit %d, want %d; stderr %q", tt.env, code, exitConfig, stderr.String())
			continue
		}
		out := stderr.String()
		if strings.Count(out, "\n") != 1 || !strings.Contains(out, tt.wantVar) {
			t.Errorf("env %v: stderr %q, want one line naming %s", tt.env, out, tt.wantVar)
		}
		for k, v := range tt.env {
			if k != "WARDEN_DATA" && len(v) > 6 && strings.Contains(out, v) {
				t.Errorf("env %v: stderr %q repeats a value", tt.env, out)
			}
		}
	}
}

func withTokens(env map[string]string) map[string]string {
	env["SLACK_BOT_TOKEN"] = "xoxb-test"
	env["SLACK_APP_TOKEN"] = "xapp-test"
	return env
}

func TestConfigSecretFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot-token")
	if err := os.WriteFile(path, []byte("xoxb-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(t.Context(), envconfig.MapLookuper(map[string]string{"SLACK_BOT_TOKEN_FILE": path}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackBotToken.value() != "xoxb-from-file" {
		t.Errorf("token from file = %q", c.SlackBotToken.value())
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := secret("xoxb-very-secret")
	var b bytes.Buffer
	logger := newLogger(&b, "json", "info")
	logger.Info("config", "token", s)
	for _, out := range []string{b.String(), s.String(), s.GoString()} {
		if strings.Contains(out, "very-secret") {
			t.Errorf("secret printed: %q", out)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"frobnicate"}, envconfig.MapLookuper(nil), &out, &errOut); code != exitUsage {
		t.Errorf("unknown command exit = %d, want %d", code, exitUsage)
	}
	out.Reset()
	if code := run(t.Context(), []string{"version"}, envconfig.MapLookuper(nil), &out, &errOut); code != exitOK || !strings.HasPrefix(out.String(), "warden ") {
		t.Errorf("version: exit %d, out %q", code, out.String())
	}
}
