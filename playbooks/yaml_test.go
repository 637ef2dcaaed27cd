package playbooks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeGoodFile(t *testing.T) {
	f, err := os.Open("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Decode(f)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := map[string]Playbook{
		"contractor-offboarding": {
			Name:        "contractor-offboarding",
			Description: "Security approves, then every session and token is revoked.",
			Steps: []StepSpec{
				{Kind: KindApproval, Name: "security approval", Approvers: []string{"manager", "group:S0SECURITY", "user:U0CISO"},
					Quorum: 2, EscalateAfter: Duration(2 * time.Hour), ExpireAfter: Duration(72 * time.Hour),
					Message: "Contractor offboarding needs two approvals."},
				{Kind: KindRevokeSessions, Scope: ScopeAll, Timeout: Duration(90 * time.Second)},
				{Kind: KindRevokeTokens},
				{Kind: KindNotifyUser, Message: "Your contract has ended; your access was removed."},
				{Kind: KindNotifyChannel, Channel: "C0OFFBOARD"},
			},
		},
		"new-device": {
			Name:        "new-device",
			Description: "Ask the user about a new device; revoke it unless they confirm.",
			Steps: []StepSpec{
				{Kind: KindConfirmUser, Message: "Was this you?", Timeout: Duration(30 * time.Minute), ExpireAfter: Duration(4 * time.Hour)},
				{Kind: KindWait, Wait: Duration(time.Minute)},
				{Kind: KindRevokeSessions, Scope: ScopeListed},
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	for _, p := range got {
		if err := p.Validate(); err != nil {
			t.Errorf("decoded playbook does not validate: %v", err)
		}
	}
}

// Every error names its line, and the message says what is allowed.
func TestDecodeErrorsWithLineNumbers(t *testing.T) {
	const stepKeysMsg = "(want approvers, channel, escalate_after, expire_after, kind, message, name, quorum, scope, timeout, wait)"
	const kindsMsg = "(want one of approval, confirm_with_user, notify_channel, notify_user, revoke_sessions, revoke_tokens, wait)"
	tests := []struct {
		file string
		want []string
	}{
		{"bad-unknown-key.yaml", []string{
			`line 5: unknown key "scop" in a step ` + stepKeysMsg,
			`line 7: unknown key "mesage" in a step ` + stepKeysMsg,
			`line 8: unknown key "trigger" in a playbook (want description, name, steps)`,
		}},
		{"bad-values.yaml", []string{
			`line 5: approver "group:eng": a group is a Slack user group id (group:S…)`,
			`line 5: unknown approver "boss" (want manager, group:S… or user:U…)`,
			`line 6: quorum must be at least 1, got 0`,
			`line 7: escalate_after: invalid duration "4 hours" (want e.g. 30m, 4h, 3d)`,
			`line 9: unknown step kind "revoke_session" ` + kindsMsg,
			`line 11: unknown scope "everything" (want all, listed or device)`,
			`line 13: scope does not apply to a notify_user step`,
			`line 15: wait: invalid duration "-5m": negative`,
		}},
		{"bad-structure.yaml", []string{
			`line 2: playbook name "Bad Name": want lowercase letters, digits, - and _`,
			`line 3: playbook "Bad Name" has no steps`,
			`line 4: playbook has no name`,
			`line 10: playbook "twice" is defined twice (first at line 7)`,
			`line 12: step has no kind ` + kindsMsg,
		}},
		{"bad-order.yaml", []string{
			`line 6: expire_after (4h) must be longer than escalate_after (72h)`,
			`line 9: expire_after (1h) must be longer than timeout (1h)`,
			`line 11: channel "#security" is not a Slack channel id (C… or G…)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadFile(filepath.Join("testdata", tt.file))
			if !errors.Is(err, ErrInvalidPlaybook) {
				t.Fatalf("LoadFile error = %v, want ErrInvalidPlaybook", err)
			}
			prefix := "load playbooks " + filepath.Join("testdata", tt.file) + ": invalid playbook: "
			msg, ok := strings.CutPrefix(err.Error(), prefix)
			if !ok {
				t.Fatalf("error %q does not start with %q", err, prefix)
			}
			if diff := cmp.Diff(tt.want, strings.Split(msg, "\n")); diff != "" {
				t.Errorf("error lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeInline(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // "" = no error
		count    int
	}{
		{"empty file", "", "", 0},
		{"comment only", "# nothing yet\n", "", 0},
		{"syntax error", "playbooks:\n- name: a\n  description: x: y\n", "invalid playbook: line 3: mapping values are not allowed in this context", 0},
		{"two documents", "playbooks: []\n---\nplaybooks: []\n", "invalid playbook: line 2: only one YAML document is allowed", 0},
		{"top level is a list", "- name: x\n", "invalid playbook: line 1: the playbooks file must be a mapping, got a list", 0},
		{"playbooks not a list", "playbooks:\n  revoke: {}\n", "invalid playbook: line 2: playbooks must be a list, got a mapping", 0},
		{"quorum not a number", "playbooks:\n- name: a\n  steps:\n  - kind: approval\n    quorum: two\n", `invalid playbook: line 5: quorum must be a whole number, got "two"`, 0},
		{"duration without unit", "playbooks:\n- name: a\n  steps:\n  - kind: wait\n    wait: 30\n", `invalid playbook: line 5: wait: invalid duration "30" (want e.g. 30m, 4h, 3d)`, 0},
		{"duplicate key", "playbooks:\n- name: a\n  steps:\n  - kind: wait\n    wait: 1m\n    wait: 2m\n", `invalid playbook: line 6: key "wait" appears twice in a step (first at line 5)`, 0},
		{"approvers not a list", "playbooks:\n- name: a\n  steps:\n  - kind: approval\n    approvers: manager\n", `invalid playbook: line 5: approvers must be a list, got a scalar`, 0},
		{"days and anchors", "playbooks:\n- name: a\n  steps:\n  - &w {kind: wait, wait: 2d}\n  - *w\n", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(strings.NewReader(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if len(got) != tt.count {
					t.Fatalf("got %d playbooks, want %d", len(got), tt.count)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Decode error = %v\nwant %s", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidPlaybook) {
				t.Errorf("error does not wrap ErrInvalidPlaybook")
			}
		})
	}
}

// A file adds playbooks and replaces built-ins by name; the others stay.
func TestLoadFileOverridesBuiltins(t *testing.T) {
	got, err := LoadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{PlaybookRevoke, PlaybookUnknownDevice, PlaybookOffboarding, PlaybookLostDevice, "new-device"} {
		if _, ok := got[name]; !ok {
			t.Errorf("playbook %q missing after load", name)
		}
	}
	if q := got[PlaybookOffboarding].Steps[0].Quorum; q != 2 {
		t.Errorf("contractor-offboarding quorum = %d, want the file's 2", q)
	}
	if diff := cmp.Diff(Builtins()[PlaybookRevoke], got[PlaybookRevoke]); diff != "" {
		t.Errorf("built-in revoke changed:\n%s", diff)
	}
	if _, err := LoadFile("testdata/missing.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error %v, want ErrNotExist", err)
	}
}

func TestBuiltinsAreValid(t *testing.T) {
	b := Builtins()
	for _, name := range []string{PlaybookRevoke, PlaybookUnknownDevice, PlaybookOffboarding, PlaybookLostDevice, PlaybookNewDevice, PlaybookSlackSession} {
		if _, ok := b[name]; !ok {
			t.Errorf("built-in %s is missing", name)
		}
	}
	if len(b) != 6 {
		t.Errorf("%d built-ins, want 6", len(b))
	}
	for name, p := range b {
		if err := p.Validate(); err != nil {
			t.Errorf("built-in %s: %v", name, err)
		}
	}
	off := b[PlaybookOffboarding].Steps[0]
	if off.Kind != KindApproval || off.EscalateAfter.D() != 4*time.Hour || off.ExpireAfter.D() != 72*time.Hour ||
		off.Quorum != 1 || off.Approvers[0] != ApproverManager {
		t.Errorf("contractor-offboarding approval = %+v", off)
	}
}

func TestValidateWithoutYAML(t *testing.T) {
	p := Playbook{Name: "x", Steps: []StepSpec{{Kind: KindApproval, Quorum: -1}, {Kind: KindWait}}}
	err := p.Validate()
	want := "invalid playbook: playbook \"x\" step 1: quorum must be at least 1, got -1\nplaybook \"x\" step 2: a wait step needs a positive wait"
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30m", 30 * time.Minute, false},
		{"2h", 2 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"3d", 72 * time.Hour, false},
		{"0s", 0, false},
		{"-1h", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"forever", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got.D() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	if s := Duration(72 * time.Hour).String(); s != "72h" {
		t.Errorf("String = %q, want 72h", s)
	}
}
