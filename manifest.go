package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// botScopes are exactly the scopes Warden's Web API calls need.
var botScopes = []string{
	"commands",         // the /sessions slash command
	"chat:write",       // chat.postMessage, chat.update: run progress, approvals, alerts
	"im:write",         // conversations.open: DMs to users and approvers
	"users:read",       // users.info
	"users:read.email", // users.info profile.email, users.lookupByEmail
	"usergroups:read",  // usergroups.users.list: responder and approver groups
	// conversations.history, only to find a message Warden itself posted
	// just before a crash (by its metadata), so it is edited, not posted twice.
	"im:history",       // in its DMs with people
	"channels:history", // in a public security or report channel
	"groups:history",   // in a private one
}

// manifest is the Slack app manifest (https://api.slack.com/reference/manifests).
func manifest() map[string]any {
	return map[string]any{
		"display_information": map[string]any{
			"name":             "Warden",
			"description":      "Find and end account sessions during an incident.",
			"background_color": "#1d2330",
		},
		"features": map[string]any{
			"bot_user": map[string]any{"display_name": "Warden", "always_online": true},
			"slash_commands": []any{map[string]any{
				"command":       "/sessions",
				"description":   "List and revoke sessions across identity providers",
				"usage_hint":    "help | mine | list @user | revoke @user all | offboard @user | status <run> | audit @user | report",
				"should_escape": true,
			}},
		},
		"oauth_config": map[string]any{
			"scopes": map[string]any{"bot": botScopes},
		},
		"settings": map[string]any{
			"interactivity":          map[string]any{"is_enabled": true},
			"org_deploy_enabled":     false,
			"socket_mode_enabled":    true,
			"token_rotation_enabled": false,
		},
	}
}

func manifestCmd(stdout io.Writer) int {
	b, err := json.MarshalIndent(manifest(), "", "  ")
	if err != nil {
		return exitFailure
	}
	fmt.Fprintln(stdout, string(b))
	return exitOK
}
