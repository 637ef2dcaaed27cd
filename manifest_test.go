package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

func TestManifestDeclaresWhatWardenUses(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"manifest"}, envconfig.MapLookuper(nil), &out, &errOut); code != exitOK {
		t.Fatalf("manifest: exit %d %s", code, errOut.String())
	}
	var m struct {
		Features struct {
			SlashCommands []struct {
				Command      string `json:"command"`
				ShouldEscape bool   `json:"should_escape"`
			} `json:"slash_commands"`
		} `json:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `json:"bot"`
			} `json:"scopes"`
		} `json:"oauth_config"`
		Settings struct {
			SocketMode    bool `json:"socket_mode_enabled"`
			Interactivity struct {
				Enabled bool `json:"is_enabled"`
			} `json:"interactivity"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/sessions" || !m.Features.SlashCommands[0].ShouldEscape {
		t.Errorf("slash commands = %+v, want /sessions with escaping (mentions arrive as <@U…>)", m.Features.SlashCommands)
	}
	if !m.Settings.SocketMode || !m.Settings.Interactivity.Enabled {
		t.Errorf("socket mode %v, interactivity %v; want both on", m.Settings.SocketMode, m.Settings.Interactivity.Enabled)
	}
	for _, want := range []string{"commands", "chat:write", "im:write", "users:read", "users:read.email", "usergroups:read", "im:history", "channels:history", "groups:history"} {
		if !slices.Contains(m.OAuth.Scopes.Bot, want) {
			t.Errorf("bot scopes %v lack %s", m.OAuth.Scopes.Bot, want)
		}
	}
	if len(m.OAuth.Scopes.Bot) != 9 {
		t.Errorf("bot scopes %v: want exactly the nine Warden uses", m.OAuth.Scopes.Bot)
	}
}
